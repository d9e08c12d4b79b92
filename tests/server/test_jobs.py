"""The job registry behind the REST API and the widgets, and where the server keeps its state."""

from __future__ import annotations

import json
import os
import time
from functools import partial
from pathlib import Path

import pytest
import works

from nbops.deploy import records
from nbops.deploy.records import Deployment
from nbops.lab.server.jobs import Job, JobEnded, JobNotFound, JobRegistry, Outcome
from nbops.lab.server.journal import Entry, Journal
from nbops.lab.server.paths import home_for_notebook, running_server_root, server_home
from nbops.lab.server.reconcile import Footprint
from nbops.run.home import Home
from nbops.run.state import RunRecord, StepRecord


def test_a_deploy_job_records_stages_steps_and_its_outcome() -> None:
    job = Job("deploy", "nb.ipynb", ["load", "fit"])
    job.on_stage("building", "running and building nb.ipynb")
    job.on_step("load", "start", StepRecord("load", "not-run"))
    assert job.snapshot()["step"] == {"index": 1, "total": 2, "name": "load", "state": "running"}
    job.on_step("load", "end", StepRecord("load", "ran", duration_s=0.5))
    job.on_stage("starting", "starting v1 on port 1234")
    job.on_stage("failed", "/readyz answered 503")
    job.finish(Outcome(False, {"status": "failed"}, "/readyz answered 503"))

    snapshot = job.snapshot()
    assert [(s["name"], s["state"], s["message"]) for s in snapshot["stages"]] == [
        ("building", "succeeded", "running and building nb.ipynb"),
        ("starting", "failed", "/readyz answered 503"),
    ]
    assert snapshot["step"] == {"index": 1, "total": 2, "name": "load", "state": "ran"}
    assert snapshot["log"] == [
        "building: running and building nb.ipynb",
        "step load: running",
        "step load: ran in 0.50 s",
        "starting: starting v1 on port 1234",
        "failed: /readyz answered 503",
        "error: /readyz answered 503",
    ]
    assert (snapshot["state"], snapshot["result"], snapshot["error"]) == (
        "failed",
        {"status": "failed"},
        "/readyz answered 503",
    )
    assert all(s["ended_at"] is not None for s in snapshot["stages"])


def test_a_run_jobs_stages_are_its_steps() -> None:
    job = Job("run", "nb.ipynb", ["load", "fit"])
    for name, status in (("load", "cached"), ("fit", "failed")):
        job.on_step(name, "start", StepRecord(name, "not-run"))
        job.on_step(name, "end", StepRecord(name, status))

    assert [(s["name"], s["state"], s["message"]) for s in job.snapshot()["stages"]] == [
        ("load", "succeeded", "cached"),
        ("fit", "failed", "failed"),
    ]


def test_steps_running_side_by_side_are_all_shown_and_end_by_name() -> None:
    job = Job("run", "nb.ipynb", ["load", "b1", "b2", "join"])
    job.on_step("load", "start", StepRecord("load", "not-run"))
    job.on_step("load", "end", StepRecord("load", "ran", duration_s=0.25))
    job.on_step("b1", "start", StepRecord("b1", "not-run"))
    job.on_step("b2", "start", StepRecord("b2", "not-run"))

    snapshot = job.snapshot()
    assert [(s["index"], s["total"], s["name"], s["state"]) for s in snapshot["running_steps"]] == [
        (2, 4, "b1", "running"),
        (3, 4, "b2", "running"),
    ]
    assert all(isinstance(s["started_at"], float) for s in snapshot["running_steps"])
    assert snapshot["step"] == {"index": 3, "total": 4, "name": "b2", "state": "running"}
    assert job.where() == "while steps 'b1' and 'b2' ran"

    job.on_step("b2", "end", StepRecord("b2", "timed-out", duration_s=1.5))
    assert [s["name"] for s in job.snapshot()["running_steps"]] == ["b1"]
    assert job.snapshot()["step"] == {"index": 2, "total": 4, "name": "b1", "state": "running"}
    assert job.where() == "while step 'b1' ran"
    job.finish(Outcome(False, None, "cancelled while step 'b1' ran.", state="cancelled"))

    snapshot = job.snapshot()
    assert [(s["name"], s["state"], s["message"]) for s in snapshot["stages"]] == [
        ("load", "succeeded", "ran in 0.25 s"),
        ("b1", "failed", "running"),
        ("b2", "failed", "timed out after 1.50 s"),
    ]
    assert snapshot["running_steps"] == []
    # None runs any more: `step` is the one started last.
    assert snapshot["step"] == {"index": 3, "total": 4, "name": "b2", "state": "timed-out"}
    assert "step b2: timed out after 1.50 s" in snapshot["log"]


def test_a_cache_hit_starts_and_ends_at_once() -> None:
    job = Job("run", "nb.ipynb", ["load", "fit"])
    job.on_step("load", "start", StepRecord("load", "cached"))
    job.on_step("load", "end", StepRecord("load", "cached"))

    snapshot = job.snapshot()
    assert snapshot["running_steps"] == []
    assert [(s["name"], s["state"], s["message"]) for s in snapshot["stages"]] == [
        ("load", "succeeded", "cached")
    ]
    assert snapshot["log"] == ["step load: cached"]


def test_a_job_runs_in_a_child_process_and_relays_its_progress() -> None:
    registry = JobRegistry()
    job = registry.submit("run", "a", works.succeeds)

    assert job.wait(30)
    snapshot = job.snapshot()
    assert snapshot["state"] == "succeeded"
    assert snapshot["result"]["pid"] != os.getpid()
    assert [(s["name"], s["state"]) for s in snapshot["stages"]] == [("working", "succeeded")]
    assert snapshot["log"] == ["working: doing it", "done it"]


def test_jobs_sharing_a_key_wait_and_others_run_meanwhile(tmp_path: Path) -> None:
    registry = JobRegistry()
    release = tmp_path / "release"
    first = registry.submit("run", "a", partial(works.waits_for, release), keys=["notebook:a"])
    second = registry.submit("run", "a", works.succeeds, keys=["notebook:a"])
    other = registry.submit("run", "b", works.succeeds, keys=["notebook:b"])

    assert other.wait(30), "a job of another notebook must not wait"
    assert second.snapshot()["stages"][0] == {
        **second.snapshot()["stages"][0],
        "name": "queued",
        "state": "running",
        "message": f"waiting for the run of a (job {first.id}) to finish",
    }
    assert not second.done
    release.touch()
    assert first.wait(30) and second.wait(30)
    assert [s["name"] for s in second.snapshot()["stages"]] == ["queued", "working"]
    assert {job.snapshot()["state"] for job in (first, second, other)} == {"succeeded"}
    assert [job.id for job in registry.jobs()] == [other.id, second.id, first.id]


def test_whatever_the_work_does_the_job_ends_and_says_why() -> None:
    registry = JobRegistry()
    ends = (works.user_error, works.bug, works.exits, works.interrupts, works.dies)
    jobs = [registry.submit("deploy", "nb", work) for work in ends]
    for job in jobs:
        assert job.wait(30)
    errors = [job.snapshot()["error"] for job in jobs]

    assert errors[0] == "no run to build from. Run it first."
    assert errors[1] == (
        "nbops failed unexpectedly (KeyError: 'oops'); the Jupyter server's log has the traceback."
    )
    assert errors[2] == (
        "the job: the notebook's code raised SystemExit(3), which ends a process; the job "
        "stopped there. Raise an exception instead of calling sys.exit()."
    )
    assert errors[3] == (
        "the job: the notebook's code raised KeyboardInterrupt; the job stopped there."
    )
    assert errors[4] == (
        "the job's process exited with code 1 at stage 'dying', before the job finished: the "
        "notebook's code called os._exit() or crashed. The Jupyter server is unaffected."
    )
    assert {job.snapshot()["state"] for job in jobs} == {"failed"}
    assert any("KeyError: 'oops'" in line for line in jobs[1].snapshot()["log"])


def test_a_cancelled_job_ends_its_process_and_a_waiting_one_never_starts() -> None:
    registry = JobRegistry(grace_s=0.5)
    spinning = registry.submit("run", "a", works.spins, keys=["notebook:a"])
    waiting = registry.submit("run", "a", works.succeeds, keys=["notebook:a"])
    stubborn = registry.submit("run", "b", works.ignores_sigterm)
    wait_for_stage(spinning, "spinning")
    wait_for_stage(stubborn, "stubborn")

    registry.cancel(waiting.id)
    assert waiting.done and waiting.snapshot()["state"] == "cancelled"
    assert waiting.snapshot()["error"] == "cancelled while it waited its turn."
    registry.cancel(spinning.id)
    registry.cancel(stubborn.id)
    registry.cancel(stubborn.id)  # a second cancel while it stops changes nothing
    assert spinning.wait(10) and stubborn.wait(10)  # SIGKILL after the grace period

    assert spinning.snapshot()["state"] == "cancelled"
    assert spinning.snapshot()["error"] == "cancelled at stage 'spinning'."
    assert spinning.snapshot()["stages"][-1]["state"] == "failed"
    assert stubborn.snapshot()["error"] == "cancelled at stage 'stubborn'."
    with pytest.raises(JobEnded) as ended:
        registry.cancel(spinning.id)
    assert ended.value.render() == (
        f"job {spinning.id} (the run of a (job {spinning.id})) has already ended: it cancelled. "
        "Only a running or queued job can be cancelled."
    )


def test_the_registry_forgets_the_oldest_finished_jobs_first() -> None:
    registry = JobRegistry(keep=2)
    jobs = [registry.submit("run", str(n), works.succeeds) for n in range(4)]
    for job in jobs:
        job.wait(30)
    registry.submit("run", "last", works.succeeds).wait(30)

    assert [job.target for job in registry.jobs()] == ["last", "3"]
    with pytest.raises(JobNotFound, match="no job"):
        registry.get(jobs[0].id)


def test_a_job_a_stopped_server_left_running_is_marked_interrupted(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "jobs")
    done = JobRegistry(journal=journal).submit("run", "b", works.succeeds)
    assert done.wait(30)
    cut_off = Job("run", "a", ["load", "fit"])
    cut_off.on_step("fit", "start", StepRecord("fit", "not-run"))
    journal.save(Entry(cut_off.snapshot(), None, None, None))  # its server was killed
    deadline = time.monotonic() + 10
    while {e.snapshot["state"] for e in journal.entries()} != {"running", "succeeded"}:
        assert time.monotonic() < deadline
        time.sleep(0.02)

    recovered = {job.id: job.snapshot() for job in JobRegistry(journal=journal).recover()}

    assert recovered[done.id] == done.snapshot()
    assert recovered[cut_off.id]["state"] == "interrupted"
    assert recovered[cut_off.id]["error"] == "the Jupyter server stopped while step 'fit' ran."
    assert recovered[cut_off.id]["step"] == {
        "index": 2, "total": 2, "name": "fit", "state": "interrupted"
    }  # fmt: skip
    assert {e.snapshot["state"] for e in journal.entries()} == {"interrupted", "succeeded"}


def test_what_a_cut_off_job_left_unfinished_is_ended_when_the_server_starts_again(
    tmp_path: Path,
) -> None:
    home = Home(tmp_path / ".nbops")
    db = home.db()
    dead = 2**22 + 1
    notebook = str(tmp_path / "nb.ipynb")
    db.save_run(RunRecord("r1", notebook, "sha", "running", time.time(), pid=dead))
    now = time.time()
    records.insert(
        db,
        Deployment("nb", 1, "building", "", "", "sha", None, None, None, None, None, None,
                   "me via jupyter", now, now),
    )  # fmt: skip
    cut_off = Job("deploy", "nb.ipynb", ["load"])
    cut_off.on_stage("building", "running and building nb.ipynb")
    journal = Journal(home.root / "jobs")
    footprint = Footprint(str(home.root), notebook, ("nb",))
    journal.save(Entry(cut_off.snapshot(), footprint, dead, now - 1))

    [job] = JobRegistry(journal=journal).recover()

    reason = "the Jupyter server stopped at stage 'building'."
    assert (job.snapshot()["state"], job.snapshot()["error"]) == ("interrupted", reason)
    assert [(r.status, r.error) for r in db.runs(notebook)] == [
        ("interrupted", {"message": reason, "details": None})
    ]
    assert [(d.status, d.reason) for d in records.history(db, "nb")] == [("failed", reason)]
    assert "nb v1 recorded as failed (was building)" in job.snapshot()["log"]


def wait_for_stage(job: Job, name: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not any(s["name"] == name for s in job.snapshot()["stages"]):
        assert time.monotonic() < deadline, job.snapshot()
        time.sleep(0.02)


# where the state db is


def test_the_server_keeps_its_state_under_its_root_unless_told(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NBOPS_HOME", raising=False)
    assert server_home(tmp_path) == Home(tmp_path.resolve() / ".nbops")
    monkeypatch.setenv("NBOPS_HOME", "state")
    assert server_home(tmp_path) == Home(tmp_path.resolve() / "state")
    monkeypatch.setenv("NBOPS_HOME", str(tmp_path / "elsewhere"))
    assert server_home(tmp_path / "root") == Home(tmp_path.resolve() / "elsewhere")


def test_a_kernel_uses_the_home_of_the_server_serving_its_notebook(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(runtime))
    monkeypatch.delenv("NBOPS_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    notebook = tmp_path / "root" / "sub" / "nb.ipynb"
    notebook.parent.mkdir(parents=True)
    notebook.touch()

    assert running_server_root(notebook) is None
    assert home_for_notebook(notebook) == Home.default()

    servers = {"outer": tmp_path, "inner": tmp_path / "root", "dead": tmp_path / "root" / "sub"}
    for name, root in servers.items():
        pid = os.getpid() if name != "dead" else 2**22 + 1
        info = {"root_dir": str(root), "pid": pid, "url": "http://127.0.0.1:1/"}
        (runtime / f"jpserver-{name}.json").write_text(json.dumps(info))
    (runtime / "jpserver-broken.json").write_text("{")

    assert running_server_root(notebook) == (tmp_path / "root").resolve()
    assert home_for_notebook(notebook) == Home((tmp_path / "root" / ".nbops").resolve())
