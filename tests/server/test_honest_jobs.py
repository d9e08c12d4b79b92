"""Sidebar jobs whose notebook code ends or blocks its process: through the REST API, real
processes. The Jupyter server answers afterwards, and every job and record ends honestly."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_server import Fetch, finished, get, post, refused, write
from traitlets.config import Config

from nbops.deploy import local as deploy
from nbops.deploy import records
from nbops.lab.server.jobs import shutdown_all
from nbops.run.home import Home
from nbops.run.pids import pid_alive

pytestmark = pytest.mark.slow

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


async def test_a_deploy_calling_os_exit_fails_and_the_server_goes_on(jp_fetch: Fetch, root: Path):
    write(root / "dies.ipynb", pipeline("import os\nos._exit(1)"))

    job = await finished(jp_fetch, await started(jp_fetch, "deployments", {"path": "dies.ipynb"}))

    message = (
        "the job's process exited with code 1 while step 'boom' ran, before the job finished: "
        "the notebook's code called os._exit() or crashed. The Jupyter server is unaffected."
    )
    assert (job["state"], job["error"]) == ("failed", message)
    assert job["step"] == {"index": 2, "total": 2, "name": "boom", "state": "failed"}
    assert versions(root, "dies") == [(1, "failed", message, None)]
    assert runs(root, "dies.ipynb") == [("failed", message)]
    assert (await get(jp_fetch, "jobs"))[0]["job_id"] == job["job_id"]  # the server answers


async def test_a_deploy_raising_system_exit_fails_naming_the_cell(jp_fetch: Fetch, root: Path):
    write(root / "exits.ipynb", pipeline("import sys\nsys.exit(3)"))

    job = await finished(jp_fetch, await started(jp_fetch, "deployments", {"path": "exits.ipynb"}))

    message = (
        "exits.ipynb cell 1 line 2: the notebook's code raised SystemExit(3), which ends a "
        "process; the job stopped there. Raise an exception instead of calling sys.exit()."
    )
    assert (job["state"], job["error"]) == ("failed", message)
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
