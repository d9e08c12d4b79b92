"""The job registry behind the REST API and the widgets, and where the server keeps its state."""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path

import pytest

from nbops.errors import NbopsError
from nbops.lab.server.jobs import Job, JobNotFound, JobRegistry, Outcome
from nbops.lab.server.paths import home_for_notebook, running_server_root, server_home
from nbops.run.home import Home
from nbops.run.state import StepRecord


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


def test_jobs_run_one_at_a_time_and_a_waiting_one_says_so() -> None:
    registry = JobRegistry()
    release = threading.Event()
    first = registry.submit("run", "a", lambda job: Outcome(release.wait(10), None))
    second = registry.submit("run", "b", lambda job: Outcome(True, {"ran": "b"}))

    assert second.snapshot()["stages"][0]["name"] == "queued"
    assert not second.wait(0.2)  # the first still holds the only worker
    release.set()
    assert first.wait(10) and second.wait(10)
    assert second.snapshot()["stages"][0]["state"] == "succeeded"
    assert [job.id for job in registry.jobs()] == [second.id, first.id]
    registry.shutdown(wait=True)


def test_whatever_the_work_raises_the_job_ends_failed(caplog: pytest.LogCaptureFixture) -> None:
    registry = JobRegistry()

    def user_error(job: Job) -> Outcome:
        raise NbopsError("no run to build from.", fix="Run it first.")

    def bug(job: Job) -> Outcome:
        raise KeyError("oops")

    def exits(job: Job) -> Outcome:
        sys.exit(3)  # a cell may do this

    jobs = [registry.submit("deploy", "nb", work) for work in (user_error, bug, exits)]
    for job in jobs:
        assert job.wait(10)
    errors = [job.snapshot()["error"] for job in jobs]

    assert errors[0] == "no run to build from. Run it first."
    assert errors[1].startswith("nbops failed unexpectedly (KeyError: 'oops')")
    assert errors[2].startswith("nbops failed unexpectedly (SystemExit: 3)")
    assert {job.snapshot()["state"] for job in jobs} == {"failed"}
    assert "Traceback" in caplog.text
    registry.shutdown(wait=True)


def test_the_registry_forgets_the_oldest_finished_jobs_first() -> None:
    registry = JobRegistry(keep=2)
    jobs = [registry.submit("run", str(n), lambda job: Outcome(True, None)) for n in range(4)]
    for job in jobs:
        job.wait(10)
    registry.submit("run", "last", lambda job: Outcome(True, None)).wait(10)

    assert [job.target for job in registry.jobs()] == ["last", "3"]
    with pytest.raises(JobNotFound, match="no job"):
        registry.get(jobs[0].id)
    registry.shutdown(wait=True)


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
