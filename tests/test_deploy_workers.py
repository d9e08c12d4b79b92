"""`nbops deploy --workers N`: N uvicorn workers behind a version's port, promoted only once all
N are ready, none left running when their manager is killed; and the k8s autoscaler."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml
from builders import notebook_json

from nbops.build.packaging import render_packaging
from nbops.deploy import processes
from nbops.deploy.processes import NotHealthy, free_port
from nbops.deploy.remote import docker_commands
from nbops.model.analysis import analyse
from nbops.model.notebook import notebook_from_dict
from nbops.run.pids import start_time

NBOPS = str(Path(sys.executable).parent / "nbops")
# Every worker but the first to load the model sleeps SLOW_LOAD_S while it loads, when
# SLOW_LOAD_DIR is set (not while the build checks the service); each writes down when it was done.
MODEL = '''
class Model:
    """Scales x; loading it is slow in every worker but the first."""

    def __init__(self, factor):
        self.factor = factor

    def __setstate__(self, state):
        import os, time
        self.__dict__.update(state)
        folder = os.environ.get("SLOW_LOAD_DIR")
        if folder:
            try:
                os.close(os.open(os.path.join(folder, "first"), os.O_CREAT | os.O_EXCL))
                delay = 0.0
            except FileExistsError:
                delay = float(os.environ.get("SLOW_LOAD_S", "0"))
            time.sleep(delay)
            with open(os.path.join(folder, f"loaded-{os.getpid()}"), "w") as done:
                done.write(repr(time.time()))

model = Model(3)
'''
# 20 ms of CPU a request, holding the GIL as a model does: a worker busy with it is slow to
# accept connections, which another worker then takes.
SERVE = '''import os
import time

def predict(x: float) -> dict[str, float]:
    """x scaled, and which worker process answered."""
    busy_until = time.perf_counter() + 0.02
    while time.perf_counter() < busy_until:
        pass
    return {"y": x * model.factor, "pid": float(os.getpid())}
'''


def workers_notebook() -> dict[str, Any]:
    return notebook_json([(MODEL, ["step:fit"]), (SERVE, ["serve"]), "predict(3.0)"])


@dataclass
class Project:
    root: Path
    port: int
    env: dict[str, str] = field(default_factory=dict)

    def nbops(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [NBOPS, *args],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )

    def status(self) -> dict[str, Any]:
        done = self.nbops("status", "slow", "--format", "json")
        assert done.returncode == 0, done.stderr
        (row,) = json.loads(done.stdout)
        return row  # type: ignore[no-any-return]

    def loads(self) -> list[float]:
        """When each worker finished loading the model, in order."""
        return sorted(float(p.read_text()) for p in self.slow.glob("loaded-*"))

    @property
    def slow(self) -> Path:
        return Path(self.env["SLOW_LOAD_DIR"])


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    root = tmp_path_factory.mktemp("workers")
    env = {**os.environ, "NBOPS_HOME": str(root / ".nbops")}
    env.pop("NBOPS_API_KEY", None)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    project = Project(root, free_port(), env)
    (root / "slow.ipynb").write_text(json.dumps(workers_notebook()))
    built = project.nbops("build", "slow.ipynb")
    assert built.returncode == 0, built.stdout + built.stderr
    yield project
    project.nbops("stop", "slow")


def fresh_slow_dir(project: Project, seconds: float) -> None:
    slow = project.root / "slow-load"
    shutil.rmtree(slow, ignore_errors=True)
    slow.mkdir()
    project.env.update(SLOW_LOAD_DIR=str(slow), SLOW_LOAD_S=str(seconds))


def predict(url: str, x: float) -> dict[str, float]:
    request = urllib.request.Request(
        f"{url}/predict",
        data=json.dumps({"x": x}).encode(),
        headers={"Content-Type": "application/json", "Connection": "close"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        answer: dict[str, float] = json.loads(response.read())
    return answer.get("result", answer)  # type: ignore[return-value]


def workers_of(pid: int) -> list[psutil.Process]:
    """uvicorn's worker processes under its manager (not multiprocessing's resource tracker)."""
    return [p for p in children_of(pid) if "spawn_main" in " ".join(p.cmdline())]


def children_of(pid: int) -> list[psutil.Process]:
    return psutil.Process(pid).children()


def gone(process: psutil.Process) -> bool:
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_until_gone(processes_: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not all(gone(p) for p in processes_):
        time.sleep(0.05)
    return [p for p in processes_ if not gone(p)]


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_a_version_is_promoted_only_once_every_worker_is_ready(project: Project) -> None:
    fresh_slow_dir(project, 4.0)
    done = project.nbops(
        "deploy", "build/slow", "--workers", "2", "--port", str(project.port), "--format", "json"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    deployment = json.loads(done.stdout)
    assert (deployment["status"], deployment["workers"]) == ("healthy", 2)
    first, last = project.loads()
    # One worker answered /readyz seconds before the other was ready: a single probe would
    # have promoted the version then.
    assert last - first > 3.0
    assert deployment["healthy_at"] > last
    assert "all 2 workers" in done.stderr


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_requests_are_answered_by_several_workers(project: Project) -> None:
    stable = f"http://127.0.0.1:{project.port}"
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda x: predict(stable, x), [float(x) for x in range(64)]))
    assert [a["y"] for a in answers] == [3.0 * x for x in range(64)]
    row = project.status()
    workers = {p.pid for p in workers_of(row["pid"])}
    answered = {int(a["pid"]) for a in answers}
    # The proxy keeps its connections to the version open, and which worker accepted each is
    # the kernel's choice: on a loaded machine one may have taken them all. New connections
    # straight to the version's port, a few rounds at most, reach the others.
    version = f"http://127.0.0.1:{row['port']}"
    for _ in range(10):
        if len(answered) > 1:
            break
        with ThreadPoolExecutor(8) as pool:
            more = list(pool.map(lambda x: predict(version, x), [float(x) for x in range(32)]))
        answered |= {int(a["pid"]) for a in more}
    assert len(answered) > 1
    assert answered <= workers


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_status_shows_the_workers(project: Project) -> None:
    assert project.status()["workers"] == 2
    done = project.nbops("status", "slow")
    header, line = done.stdout.splitlines()[:2]
    assert "workers" in header.split()
    assert line.split()[header.split().index("workers")] == "2"


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_workers_of_a_killed_manager_die_and_the_supervisor_starts_all_again(
    project: Project,
) -> None:
    fresh_slow_dir(project, 0.0)
    row = project.status()
    assert len(workers_of(row["pid"])) == 2
    children = children_of(row["pid"])
    os.kill(row["pid"], signal.SIGKILL)
    assert wait_until_gone(children, 5.0) == []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        again = project.status()
        if again["pid"] != row["pid"] and again["health"] == "ok" and len(project.loads()) == 2:
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"the supervisor did not start v{row['version']} again: {again}")
    assert len(workers_of(again["pid"])) == 2
    assert predict(f"http://127.0.0.1:{project.port}", 2.0)["y"] == 6.0


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_a_deploy_and_a_rollback_stop_every_worker_of_the_version_they_replace(
    project: Project,
) -> None:
    fresh_slow_dir(project, 0.0)
    before = project.status()
    replaced = [psutil.Process(before["pid"]), *children_of(before["pid"])]
    done = project.nbops("deploy", "build/slow", "--workers", "3", "--watch", "0")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"v{before['version'] + 1} (3 workers)" in done.stdout
    assert wait_until_gone(replaced, 5.0) == []
    new = project.status()
    assert (new["workers"], len(workers_of(new["pid"]))) == (3, 3)

    replaced = [psutil.Process(new["pid"]), *children_of(new["pid"])]
    done = project.nbops("rollback", "slow", "--format", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    back = json.loads(done.stdout)
    assert (back["version"], back["workers"]) == (before["version"], 2)
    assert wait_until_gone(replaced, 5.0) == []
    assert len(workers_of(project.status()["pid"])) == 2


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_stop_leaves_no_worker_running(project: Project) -> None:
    row = project.status()
    manager = psutil.Process(row["pid"])
    assert len(workers_of(row["pid"])) == 2
    children = children_of(row["pid"])
    assert project.nbops("stop", "slow").returncode == 0
    assert wait_until_gone([manager, *children], 5.0) == []


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_the_workers_of_nbops_serve_end_with_it_even_killed(project: Project) -> None:
    port = free_port()
    env = {k: v for k, v in project.env.items() if not k.startswith("SLOW_LOAD")}
    argv = [NBOPS, "serve", "build/slow", "--workers", "2", "--port", str(port)]
    # A session of its own stands for the user's shell: nothing else in it may be killed.
    with subprocess.Popen(
        argv,
        cwd=project.root,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    ) as served:
        try:
            deadline = time.monotonic() + 60
            while len(workers_of(served.pid)) < 2 or not answers(port):
                assert time.monotonic() < deadline and served.poll() is None
                time.sleep(0.1)
            workers = workers_of(served.pid)
            os.kill(served.pid, signal.SIGKILL)
            served.wait(10)
            assert wait_until_gone(workers, 5.0) == []
        finally:
            if not gone_group(served.pid):  # whatever the test left
                os.killpg(served.pid, signal.SIGKILL)


def answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def gone_group(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_workers_not_all_ready_in_time_fail_naming_the_version_and_the_log(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    fresh_slow_dir(project, 60.0)
    for name in ("SLOW_LOAD_DIR", "SLOW_LOAD_S"):
        monkeypatch.setenv(name, project.env[name])
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    version = project.root / "version"
    shutil.copytree(project.root / "build" / "slow", version)
    port = free_port()
    service = processes.start_service(version, port, version / "service.log", workers=2)
    try:
        with pytest.raises(NotHealthy) as failure:
            processes.wait_ready(
                service,
                f"http://127.0.0.1:{port}",
                timeout=10,
                workers=2,
                version_dir=version,
                what="slow v7",
            )
        assert failure.value.reason == (
            f"slow v7: only 1 of its 2 workers were ready after 10 s; see {version}/service.log"
        )
        assert len(workers_of(service.pid)) == 2
        children = children_of(service.pid)
    finally:  # the slow worker sleeps through SIGTERM: SIGKILL soon
        processes.stop(service.pid, start_time(service.pid), timeout=2.0)
    assert wait_until_gone(children, 5.0) == []


def test_docker_runs_as_many_uvicorn_workers_as_asked() -> None:
    [_, _, run] = docker_commands(Path("build/nb"), "nb", "nb:1", 8000, workers=3)
    assert run[-1] == "nb:1"
    assert {"WEB_CONCURRENCY=3", "PROMETHEUS_MULTIPROC_DIR=/tmp"} <= set(run)
    [_, _, one] = docker_commands(Path("build/nb"), "nb", "nb:1", 8000)
    assert not any("WEB_CONCURRENCY" in part for part in one)


def test_workers_with_the_k8s_target_are_a_usage_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [NBOPS, "deploy", str(tmp_path), "--target", "k8s", "--workers", "2"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 2
    assert "HorizontalPodAutoscaler in k8s/hpa.yaml scales the pods" in done.stderr


# the k8s manifests


def manifests(tmp_path: Path) -> dict[str, Path]:
    from nbops.build.packaging import current_environment

    pipeline = analyse(notebook_from_dict(workers_notebook(), "slow.ipynb"))
    files = render_packaging(pipeline, current_environment(), {"build_id": "4f2a9c01d3b87e65"})
    written = {}
    for path, text in files.items():
        if path.startswith("k8s/"):
            written[path] = tmp_path / path
            written[path].parent.mkdir(parents=True, exist_ok=True)
            written[path].write_text(text)
    return written


def test_an_autoscaler_owns_the_deployments_replicas_by_cpu(tmp_path: Path) -> None:
    files = manifests(tmp_path)
    hpa = yaml.safe_load(files["k8s/hpa.yaml"].read_text())
    deployment = yaml.safe_load(files["k8s/deployment.yaml"].read_text())
    assert (hpa["apiVersion"], hpa["kind"]) == ("autoscaling/v2", "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 10)
    assert hpa["spec"]["metrics"] == [
        {
            "type": "Resource",
            "resource": {
                "name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 70},
            },
        }
    ]
    assert hpa["metadata"]["labels"] == deployment["metadata"]["labels"]
    assert "replicas" not in deployment["spec"]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert container["resources"]["requests"]["cpu"] == "500m"


def offline() -> list[str]:
    """A prefix that runs a command with no network at all, where unshare can make one."""
    for prefix in (["unshare", "-n"], ["unshare", "-rn"]):
        if (
            shutil.which("unshare")
            and subprocess.run([*prefix, "true"], check=False).returncode == 0
        ):
            return prefix
    return []


def test_the_k8s_manifests_validate_against_the_kubernetes_schemas(tmp_path: Path) -> None:
    files = manifests(tmp_path)
    assert sorted(files) == ["k8s/deployment.yaml", "k8s/hpa.yaml", "k8s/service.yaml"]
    validate = str(Path(sys.executable).parent / "kubernetes-validate")
    done = subprocess.run(
        [*offline(), validate, "--strict", *map(str, files.values())],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("INFO") == 3, done.stdout
