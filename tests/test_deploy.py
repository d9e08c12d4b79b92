"""The local deploy target, with real processes: promotion, automatic rollback, status, logs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from builders import notebook_json

from nbops.deploy.processes import free_port

pytestmark = pytest.mark.slow
NBOPS = str(Path(sys.executable).parent / "nbops")


def model_notebook(factor: int, *, broken: str = "") -> dict[str, Any]:
    body = (
        "    raise RuntimeError('broken on purpose')"
        if broken == "raises"
        else "    return x * scale"
    )
    return notebook_json(
        [
            (f"factor = {factor}  # how steep", ["parameters"]),
            ("values = [1, 2, 3]", ["step:load"]),
            ("scale = factor * max(values)", ["step:fit"]),
            ("assert scale > 0", ["test"]),
            (f"def predict(x: float) -> float:\n    '''Scale x.'''\n{body}", ["serve"]),
            "predict(3.0)",
        ]
    )


@dataclass
class Project:
    root: Path
    port: int
    env: dict[str, str] = field(default_factory=dict)

    def notebook(self, factor: int, broken: str = "") -> Path:
        path = self.root / "model.ipynb"
        path.write_text(json.dumps(model_notebook(factor, broken=broken)))
        return path

    def nbops(self, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [NBOPS, *args], cwd=self.root, env=self.env, capture_output=True, text=True, check=check
        )

    def deploy(self, factor: int, broken: str = "") -> tuple[int, dict[str, Any]]:
        done = self.nbops(
            "deploy",
            str(self.notebook(factor, broken)),
            "--port",
            str(self.port),
            "--format",
            "json",
        )
        return done.returncode, json.loads(done.stdout)

    def status(self) -> list[dict[str, Any]]:
        return json.loads(self.nbops("status", "--format", "json", check=True).stdout)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def predict(url: str, x: float) -> tuple[int, Any]:
    request = urllib.request.Request(
        f"{url}/predict",
        data=json.dumps({"x": x}).encode(),
        headers={"Content-Type": "application/json", "Connection": "close"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError as error:
        return 0, str(error)


def result_of(answer: Any) -> Any:
    return answer["result"] if isinstance(answer, dict) and "result" in answer else answer


class Poller(threading.Thread):
    """A client calling the stable URL back to back, recording failures and the longest gap."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.failures: list[tuple[int, Any]] = []
        self.answers: list[Any] = []
        self.longest_gap = 0.0
        self.halt = threading.Event()

    def run(self) -> None:
        last = time.perf_counter()
        while not self.halt.is_set():
            status, answer = predict(self.url, 3.0)
            now = time.perf_counter()
            if status == 200:
                self.longest_gap = max(self.longest_gap, now - last)
                self.answers.append(result_of(answer))
                last = now
            else:
                self.failures.append((status, answer))

    def stop(self) -> None:
        self.halt.set()
        self.join(timeout=15)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    root = tmp_path_factory.mktemp("deploy")
    env = {**os.environ, "NBOPS_HOME": str(root / ".nbops")}
    env.pop("NBOPS_API_KEY", None)
    project = Project(root, free_port(), env)
    yield project
    project.nbops("stop", "model")


def test_deploy_serves_the_model_on_the_stable_url(project: Project) -> None:
    code, deployment = project.deploy(2)
    assert code == 0, deployment
    assert deployment["status"] == "healthy"
    assert deployment["version"] == 1
    assert deployment["url"] == project.url
    assert predict(project.url, 3.0)[0] == 200
    assert result_of(predict(project.url, 3.0)[1]) == 18.0
    (row,) = project.status()
    assert (row["name"], row["status"], row["health"], row["version"]) == (
        "model",
        "healthy",
        "ok",
        1,
    )
    assert row["pid"] and row["url"] == project.url


def test_a_new_version_replaces_the_old_with_no_failed_request(project: Project) -> None:
    poller = Poller(project.url)
    poller.start()
    code, deployment = project.deploy(3)
    time.sleep(0.3)
    poller.stop()
    assert code == 0, deployment
    assert deployment["version"] == 2
    assert poller.failures == []
    assert 18.0 in poller.answers and poller.answers[-1] == 27.0
    print(f"longest gap between answers during promotion: {poller.longest_gap * 1000:.1f} ms")
    # The gap includes one request through the proxy; on a loaded 2-core machine that can near
    # a second, so the bound catches an outage, not jitter. The figure is printed above.
    assert poller.longest_gap < 2.5


@pytest.mark.parametrize("broken", ["raises", "artifact", "smoke"])
def test_a_broken_version_fails_and_the_old_one_keeps_serving(
    project: Project, broken: str
) -> None:
    poller = Poller(project.url)
    poller.start()
    if broken == "artifact":
        code, deployment = _deploy_with_tampered_artifact(project)
    elif broken == "smoke":
        code, deployment = _deploy_with_failing_smoke_request(project)
    else:
        code, deployment = project.deploy(4, broken="raises")
    poller.stop()
    assert code == 1
    assert deployment["status"] == "failed"
    if broken == "raises":  # the build's own service tests catch it before anything starts
        assert deployment["reason"].startswith(
            "model.ipynb cell 4 [serve]: the service's smoke tests failed: the example request "
            "of /predict (cell 5) was not answered 200, so the build was not replaced."
        )
        assert "broken on purpose" in deployment["log_tail"]
    elif broken == "artifact":
        assert "/readyz answered 503" in deployment["reason"]
        assert "fit.scale" in deployment["reason"]
    else:
        assert deployment["reason"].startswith("smoke request POST /predict")
        assert "answered 500" in deployment["reason"]
    assert poller.failures == []
    assert set(poller.answers) == {27.0}
    (row,) = project.status()
    assert (row["version"], row["status"]) == (2, "healthy")


def _deploy_with_failing_smoke_request(project: Project) -> tuple[int, dict[str, Any]]:
    """A build whose function raises only for the smoke request (its code edited after the
    build, for a value the build's own tests do not send)."""
    project.nbops("build", str(project.notebook(6)), "-o", "smokefail", check=True)
    endpoints = project.root / "smokefail" / "service" / "endpoints.py"
    code = endpoints.read_text()
    assert code.count("return x * scale") == 1
    failing = "if x == 3.0:\n        raise RuntimeError('served')\n    return x * scale"
    endpoints.write_text(code.replace("return x * scale", failing))
    done = project.nbops("deploy", "smokefail", "--name", "model", "--format", "json")
    return done.returncode, json.loads(done.stdout)


def _deploy_with_tampered_artifact(project: Project) -> tuple[int, dict[str, Any]]:
    project.nbops("build", str(project.notebook(5)), "-o", "tampered", check=True)
    manifest = json.loads((project.root / "tampered" / "nbops.json").read_text())
    entry = manifest["artifacts"]["fit.scale"]
    (project.root / "tampered" / entry["file"]).write_bytes(b"not the artifact")
    done = project.nbops("deploy", "tampered", "--name", "model", "--format", "json")
    return done.returncode, json.loads(done.stdout)


def test_rollback_serves_the_previous_version_again(project: Project) -> None:
    done = project.nbops("rollback", "model", "--format", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["version"] == 1
    assert result_of(predict(project.url, 3.0)[1]) == 18.0
    history = json.loads(project.nbops("history", "model", "--format", "json").stdout)
    assert [(h["version"], h["status"], h["current"]) for h in history] == [
        (1, "healthy", True),
        (2, "rolled-back", False),
        (3, "failed", False),
        (4, "failed", False),
        (5, "failed", False),
    ]


def test_logs_show_the_serving_versions_log(project: Project) -> None:
    done = project.nbops("logs", "model", "--format", "json")
    data = json.loads(done.stdout)
    assert (data["name"], data["version"]) == ("model", 1)
    assert data["lines"]


def test_two_deploys_of_one_name_at_once_do_not_corrupt_the_state(project: Project) -> None:
    notebook = str(project.notebook(2))
    argv = [NBOPS, "deploy", notebook, "--port", str(project.port), "--format", "json"]
    first = subprocess.Popen(
        argv,
        cwd=project.root,
        env=project.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(0.5)
    second = subprocess.run(argv, cwd=project.root, env=project.env, capture_output=True, text=True)
    out, _ = first.communicate(timeout=120)
    assert json.loads(out)["status"] == "healthy"
    assert second.returncode == 2
    assert "another deploy of 'model' is in progress" in second.stderr
    history = json.loads(project.nbops("history", "model", "--format", "json").stdout)
    assert [h["version"] for h in history] == [1, 2, 3, 4, 5, 6]
    assert sum(h["current"] for h in history) == 1


def test_a_killed_service_is_restarted_by_its_supervisor(project: Project) -> None:
    (row,) = project.status()
    os.kill(row["pid"], signal.SIGKILL)
    time.sleep(0.3)
    (after,) = project.status()
    assert after["health"] in ("down (restarting)", "ok")
    assert after["status"] == "healthy"
    deadline = time.monotonic() + 10
    while predict(project.url, 3.0)[0] != 200 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert result_of(predict(project.url, 3.0)[1]) == 18.0
    (restarted,) = project.status()
    assert (restarted["version"], restarted["health"]) == (row["version"], "ok")
    assert restarted["pid"] != row["pid"]
    assert restarted["proxy"] == "up"


def test_stop_never_kills_a_process_that_reused_a_recorded_pid(project: Project) -> None:
    import sqlite3

    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        db = sqlite3.connect(project.root / ".nbops" / "state.db")
        with db:  # an old version's row now names the stranger's pid (as after a pid reuse)
            db.execute(
                "UPDATE deployments SET pid = ? WHERE name = 'model' AND version = 2",
                (stranger.pid,),
            )
        db.close()
        assert project.nbops("stop", "model").returncode == 0
        project.deploy(2)
        assert project.nbops("stop", "model").returncode == 0
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()
    assert project.nbops("status", "model", "--format", "json").returncode == 0


def test_stop_stops_the_stable_url(project: Project) -> None:
    done = project.nbops("stop", "model", "--format", "json")
    assert done.returncode == 0
    assert json.loads(done.stdout)["name"] == "model"
    assert predict(project.url, 1.0)[0] == 0


def test_docker_target_without_an_engine_prints_the_commands(project: Project) -> None:
    done = project.nbops("deploy", "build/model", "--target", "docker")
    assert done.returncode == 1
    assert "not deployed:" in done.stderr
    assert "docker build -t model:" in done.stderr
