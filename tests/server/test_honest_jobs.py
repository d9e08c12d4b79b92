"""Sidebar jobs whose notebook code ends or blocks its process: through the REST API, real
processes. The Jupyter server answers afterwards, and every job and record ends honestly."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from test_server import Fetch, finished, get, post, refused, write
from traitlets.config import Config

from nbops.deploy import local as deploy
from nbops.deploy import records
from nbops.lab.server.jobs import shutdown_all
from nbops.run.executors import default_jobs
from nbops.run.home import Home
from nbops.run.pids import pid_alive

pytestmark = pytest.mark.slow
WORKER = "nbops.run.executors.worker"  # a step worker's command line names its module

SERVE = (
    "def predict(x: float) -> float:\n    '''Scale x.'''\n    return x * scale",
    ["serve"],
)


def pipeline(body: str, step: str = "boom") -> list[Any]:
    return [("scale = 2", ["step:load"]), (body, [f"step:{step}"]), SERVE]


@pytest.fixture
def jp_server_config() -> Config:
    return Config({"ServerApp": {"jpserver_extensions": {"nbops": True}}})


@pytest.fixture
def root(jp_root_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.delenv("NBOPS_HOME", raising=False)
    monkeypatch.chdir(jp_root_dir)
    write(jp_root_dir / "model.ipynb", [("values = [1, 2]", ["step:load"]), SERVE[0]])
    yield jp_root_dir
    shutdown_all(timeout=10)  # no job's process outlives its test
    home = Home(jp_root_dir / ".nbops")
    for row in deploy.status(home=home):
        if row["status"] == "healthy":
            deploy.stop(row["name"], home=home)


async def started(fetch: Fetch, route: str, body: dict[str, Any]) -> str:
    response = await fetch("nbops", "api", route, method="POST", body=json.dumps(body))
    assert response.code == 202
    job_id: str = json.loads(response.body)["job_id"]
    return job_id


async def reaches(fetch: Fetch, job_id: str, step: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job: dict[str, Any] = await get(fetch, f"jobs/{job_id}")
        if job["step"] and job["step"]["name"] == step and job["step"]["state"] == "running":
            return job
        assert job["state"] == "running", job
        await asyncio.sleep(0.1)
    raise AssertionError(f"job {job_id} did not reach step {step!r}")


async def at_stage(fetch: Fetch, job_id: str, stage: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job: dict[str, Any] = await get(fetch, f"jobs/{job_id}")
        if [(s["name"], s["state"]) for s in job["stages"]][-1:] == [(stage, "running")]:
            return
        assert job["state"] == "running", job
        await asyncio.sleep(0.1)
    raise AssertionError(f"job {job_id} did not reach stage {stage!r}")


def versions(root: Path, name: str) -> list[tuple[int, str, str | None, int | None]]:
    rows = records.history(Home(root / ".nbops").db(), name)
    return [(row.version, row.status, row.reason, row.pid) for row in rows]


def runs(root: Path, notebook: str) -> list[tuple[str, str | None]]:
    db = Home(root / ".nbops").db()
    found = db.runs(str((root / notebook).resolve()))
    return [(run.status, (run.error or {}).get("message")) for run in found]


async def test_a_step_calling_os_exit_fails_naming_its_cell_and_the_server_goes_on(
    jp_fetch: Fetch, root: Path
):
    write(root / "dies.ipynb", pipeline("import os\nos._exit(3)"))

    job = await finished(jp_fetch, await started(jp_fetch, "deployments", {"path": "dies.ipynb"}))

    message = job["error"]
    assert job["state"] == "failed"
    assert message == (
        "dies.ipynb cell 1 [step:boom]: the step's process exited with code 3. "
        "A step must not end its process: remove the os._exit()/exit call from the cell."
    ), message
    assert job["step"] == {"index": 2, "total": 2, "name": "boom", "state": "failed"}
    assert job["running_steps"] == []
    assert versions(root, "dies") == [(1, "failed", message, None)]
    assert runs(root, "dies.ipynb") == [("failed", message)]
    assert (await get(jp_fetch, "jobs"))[0]["job_id"] == job["job_id"]  # the server answers


async def test_a_deploy_raising_system_exit_fails_naming_the_cell(jp_fetch: Fetch, root: Path):
    write(root / "exits.ipynb", pipeline("import sys\nsys.exit(3)"))

    job = await finished(jp_fetch, await started(jp_fetch, "deployments", {"path": "exits.ipynb"}))

    message = job["error"]
    assert job["state"] == "failed"
    assert message.startswith(  # the step fails in its worker; the job's process goes on
        "exits.ipynb cell 1 [step:boom] line 2: the cell called sys.exit(3). Fix the cell"
    ), message
    assert "Fix the cell and run again: steps before it are cached. (log: " in message
    assert [(s["name"], s["state"]) for s in job["stages"]] == [("building", "failed")]
    assert "    sys.exit(3)" in job["log"]
    assert versions(root, "exits") == [(1, "failed", message, None)]
    assert runs(root, "exits.ipynb") == [("failed", message)]


async def test_an_endless_deploy_is_cancelled_while_another_notebook_runs(
    jp_fetch: Fetch, root: Path
):
    write(root / "spins.ipynb", pipeline("while True:\n    pass", step="spin"))
    spinning = await started(jp_fetch, "deployments", {"path": "spins.ipynb"})
    await reaches(jp_fetch, spinning, "spin")

    other = await finished(jp_fetch, await started(jp_fetch, "runs", {"path": "model.ipynb"}))
    assert other["state"] == "succeeded", other  # one stuck job does not block the others

    queued = await started(jp_fetch, "runs", {"path": "spins.ipynb"})
    assert (await get(jp_fetch, f"jobs/{queued}"))["stages"][0]["message"] == (
        f"waiting for the deploy of spins.ipynb (job {spinning}) to finish"
    )
    answer = await post(jp_fetch, f"jobs/{spinning}/cancel", {})
    assert (answer["job_id"], answer["state"]) == (spinning, "running")  # ends in a moment
    cancelled = await finished(jp_fetch, spinning)
    await post(jp_fetch, f"jobs/{queued}/cancel", {})
    never_ran = await finished(jp_fetch, queued)

    assert (cancelled["state"], cancelled["error"]) == (
        "cancelled",
        "cancelled while step 'spin' ran.",
    )
    assert (never_ran["state"], never_ran["error"]) == (
        "cancelled",
        "cancelled while it waited its turn.",
    )
    assert versions(root, "spins") == [(1, "failed", "cancelled while step 'spin' ran.", None)]
    assert runs(root, "spins.ipynb") == [("interrupted", "cancelled while step 'spin' ran.")]
    code, reply = await refused(
        jp_fetch("nbops", "api", "jobs", spinning, "cancel", method="POST", body="{}")
    )
    assert (code, reply["error"]) == (409, "JobEnded")
    code, reply = await refused(
        jp_fetch("nbops", "api", "jobs", "nope", "cancel", method="POST", body="{}")
    )
    assert (code, reply["error"]) == (404, "JobNotFound")


async def test_a_cancel_while_the_new_version_starts_stops_its_service(jp_fetch: Fetch, root: Path):
    # The service sleeps as it starts (its cwd is the deployment's snapshot), never ready.
    slow = "import os, time\nif '.nbops' in os.getcwd():\n    time.sleep(120)\n" + SERVE[0]
    write(root / "slow.ipynb", [("scale = 2", ["step:load"]), (slow, ["serve"])])
    job_id = await started(jp_fetch, "deployments", {"path": "slow.ipynb"})
    await at_stage(jp_fetch, job_id, "ready")
    [(_, status, _, service)] = versions(root, "slow")
    assert status == "starting" and pid_alive(service)

    await post(jp_fetch, f"jobs/{job_id}/cancel", {})
    job = await finished(jp_fetch, job_id)

    reason = "cancelled at stage 'ready'."
    assert (job["state"], job["error"]) == ("cancelled", reason)
    assert versions(root, "slow") == [(1, "failed", reason, None)]
    assert not pid_alive(service)
    assert "slow v1 recorded as failed (was starting)" in job["log"]


def processes_started_since(before: set[psutil.Process]) -> set[psutil.Process]:
    """This process's descendants (the server runs in it) that were not there before: a job's
    child and its step workers, while the child is alive to be their parent."""
    now = set(psutil.Process().children(recursive=True))
    return {p for p in now - before if p.is_running()}


def still_running(processes: set[psutil.Process], within: float) -> list[psutil.Process]:
    """Those of `processes` still running after `within` seconds; a zombie (ended, its exit
    not yet collected by whoever adopted it) runs nothing."""

    def runs(process: psutil.Process) -> bool:
        try:
            return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    deadline = time.monotonic() + within
    while (alive := [p for p in processes if runs(p)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return alive


async def test_a_cancelled_run_ends_at_once_and_leaves_no_process_behind(
    jp_fetch: Fetch, root: Path
):
    write(root / "loops.ipynb", pipeline("while scale:\n    pass", step="spin"))  # after load
    before = set(psutil.Process().children(recursive=True))
    job_id = await started(jp_fetch, "runs", {"path": "loops.ipynb"})
    await reaches(jp_fetch, job_id, "spin")
    ours = processes_started_since(before)
    workers = [p for p in ours if WORKER in " ".join(p.cmdline())]
    assert workers, [p.cmdline() for p in ours]  # the step runs in a worker of the job's child

    asked = time.monotonic()
    await post(jp_fetch, f"jobs/{job_id}/cancel", {})
    job = await finished(jp_fetch, job_id, timeout=10)
    took = time.monotonic() - asked

    assert (job["state"], job["error"]) == ("cancelled", "cancelled while step 'spin' ran.")
    assert took < 2, f"cancelled after {took:.2f} s"
    assert job["running_steps"] == []
    assert job["step"] == {"index": 2, "total": 2, "name": "spin", "state": "cancelled"}
    alive = still_running(ours, within=1.0)
    assert alive == [], [(p.pid, p.name()) for p in alive]


@pytest.mark.skipif(default_jobs() < 2, reason="two steps at once need two cores")
async def test_a_run_shows_its_branches_running_side_by_side(jp_fetch: Fetch, root: Path):
    branch = "import time\ntime.sleep(1.5)\n{name} = values[0] + 1"
    write(
        root / "branches.ipynb",
        [
            ("values = [1, 2]", ["step:load"]),
            (branch.format(name="left"), ["step:b1"]),
            (branch.format(name="right"), ["step:b2"]),
        ],
    )
    job_id = await started(jp_fetch, "runs", {"path": "branches.ipynb"})

    seen: list[list[tuple[int, int, str, str]]] = []
    while (job := await get(jp_fetch, f"jobs/{job_id}"))["state"] == "running":
        seen.append(
            sorted((s["index"], s["total"], s["name"], s["state"]) for s in job["running_steps"])
        )
        await asyncio.sleep(0.1)

    assert job["state"] == "succeeded", job
    both = [(2, 3, "b1", "running"), (3, 3, "b2", "running")]
    assert both in seen, seen
    assert [(s["name"], s["state"]) for s in job["stages"]] == [
        ("load", "succeeded"),
        ("b1", "succeeded"),
        ("b2", "succeeded"),
    ]
    assert job["running_steps"] == []
