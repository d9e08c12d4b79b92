"""Watched promotion, automatic rollback and canary traffic: the policy's judgement (pure), then
real services, the real proxy and its supervisor, and a client calling the stable URL."""

from __future__ import annotations

import collections
import hashlib
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
from nbops.deploy.watch import (
    Figures,
    Policy,
    drift_of,
    judge,
    parse_canary,
    parse_share,
    parse_watch,
)
from nbops.run.pids import pid_alive

NBOPS = str(Path(sys.executable).parent / "nbops")


# the policy, judged


def test_an_error_rate_above_the_policy_is_a_breach_naming_both_figures() -> None:
    breach = judge(Policy(), Figures(requests=100, errors=20, p99_ms=5.0), None)

    assert breach is not None and breach.what == "error-rate"
    assert breach.reason == (
        "error rate 20% (20 of 100 requests answered 5xx) > 2% (--max-error-rate)"
    )


def test_too_few_requests_are_not_judged() -> None:
    assert judge(Policy(), Figures(requests=10, errors=5), None) is None
    assert judge(Policy(min_requests=10), Figures(requests=10, errors=5), None) is not None


def test_the_p99_is_judged_against_the_previous_version_with_a_floor_for_fast_services() -> None:
    previous = Figures(requests=200, p99_ms=60.0)
    slow = judge(Policy(), Figures(requests=200, p99_ms=150.0), previous)
    jitter = judge(Policy(), Figures(requests=200, p99_ms=40.0), Figures(requests=200, p99_ms=6.0))

    assert slow is not None and slow.what == "p99"
    assert "150.0 ms is 2.5x the previous version's 60.0 ms > 2x" in slow.reason
    assert jitter is None  # 40 ms against 6 ms: both count as 50 ms
    assert judge(Policy(), Figures(requests=200, p99_ms=50.0), None) is None


def test_drift_above_the_policy_is_a_breach_naming_the_field() -> None:
    breach = judge(Policy(), Figures(drift=0.8, drift_field="monthly_charges"), None)

    assert breach is not None and breach.what == "drift"
    assert breach.reason.startswith("drift of monthly_charges 0.800")
    assert judge(Policy(max_drift=1.0), Figures(drift=0.8), None) is None


def test_the_largest_drift_of_any_route_input_or_output_is_the_versions() -> None:
    monitoring = {
        "routes": [
            {
                "inputs": [{"name": "a", "psi": 0.1}, {"name": "b", "psi": None}],
                "outputs": [{"name": "p", "psi": 0.3}],
            }
        ]
    }
    assert drift_of(monitoring) == (0.3, "p")
    assert drift_of({"routes": [{"inputs": [{"name": "a", "psi": None}]}]}) == (None, None)
    assert drift_of(None) == (None, None)


def test_shares_canaries_and_watches_as_people_write_them() -> None:
    assert parse_share("2%") == 0.02 and parse_share("0.5") == 0.5
    assert parse_canary("10%") == 10 and parse_canary("25") == 25
    assert parse_watch("5m") == 300 and parse_watch("0") == 0
    for bad, parse in [("150%", parse_share), ("x", parse_share), ("0%", parse_canary)]:
        with pytest.raises(ValueError):
            parse(bad)
    with pytest.raises(ValueError, match="whole percent"):
        parse_canary("12.5%")


def test_the_policy_round_trips_through_the_db_as_json() -> None:
    policy = Policy(watch_s=30, max_error_rate=0.05, canary=20)
    assert Policy.from_json(policy.to_json()) == policy


# real deployments

WATCHED = pytest.mark.slow


def flaky_notebook() -> dict[str, Any]:
    """A model whose function raises for every fifth x when `flaky` is set (x=3, the example
    call the smoke request sends, is answered)."""
    return notebook_json(
        [
            ("factor = 2\nflaky = False\npause = 0.0", ["parameters"]),
            ("scale = factor * 3", ["step:fit"]),
            ("import time", ["setup"]),
            (
                "def predict(x: float) -> float:\n"
                "    '''Scale x.'''\n"
                "    if flaky and int(x) % 5 == 0:\n"
                "        raise ValueError('flaky on purpose')\n"
                "    if pause:\n"
                "        time.sleep(pause)\n"
                "    return x * scale",
                ["serve"],
            ),
            "predict(3.0)",
        ]
    )


class Builds:
    """Builds of the test notebooks, made once per module and deployed by folder: the tests
    are about what happens after a build, and each build costs a run and its tests."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.env = {**os.environ, "NBOPS_HOME": str(root / ".nbops")}
        self.made: dict[str, Path] = {}

    def folder(self, notebook: dict[str, Any], parameters: list[str]) -> Path:
        text = json.dumps(notebook)
        key = hashlib.sha256((text + repr(parameters)).encode()).hexdigest()[:12]
        if key not in self.made:
            (self.root / "model.ipynb").write_text(text)
            out = self.root / key
            subprocess.run(
                [NBOPS, "build", "model.ipynb", "-o", str(out), *parameters],
                cwd=self.root,
                env=self.env,
                capture_output=True,
                check=True,
            )
            self.made[key] = out
        return self.made[key]


@dataclass
class Project:
    root: Path
    port: int
    builds: Builds
    env: dict[str, str] = field(default_factory=dict)
    notebook: dict[str, Any] = field(default_factory=flaky_notebook)

    def argv(self, *args: str) -> list[str]:
        """`nbops deploy BUILD --name model ...`: the build of the notebook with the `-p`s
        among `args`, the other arguments as given."""
        parameters = [a for i, a in enumerate(args) if a == "-p" or (i and args[i - 1] == "-p")]
        rest = [a for a in args if a not in parameters]
        build = self.builds.folder(self.notebook, parameters)
        return [NBOPS, "deploy", str(build), "--name", "model", "--port", str(self.port), *rest]

    def deploy(self, *args: str) -> dict[str, Any]:
        done = subprocess.run(
            [*self.argv(*args), "--format", "json"],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        data: dict[str, Any] = json.loads(done.stdout)
        return data

    def nbops(self, *args: str) -> str:
        return subprocess.run(
            [NBOPS, *args], cwd=self.root, env=self.env, capture_output=True, text=True, check=True
        ).stdout

    def history(self) -> dict[int, dict[str, Any]]:
        rows = json.loads(self.nbops("history", "model", "--format", "json"))
        return {row["version"]: row for row in rows}

    def wait_for(self, version: int, status: str, watch: str | None, within: float) -> float:
        """Seconds until the history shows `version` so."""
        started = time.monotonic()
        while time.monotonic() - started < within:
            row = self.history()[version]
            if row["status"] == status and (watch is None or row["watch"] == watch):
                return time.monotonic() - started
            time.sleep(0.2)
        raise AssertionError(f"v{version} is {self.history()[version]}, not {status}/{watch}")


@dataclass
class Answer:
    at: float
    status: int
    version: str | None
    x: int


class Client(threading.Thread):
    """Calls the stable URL back to back with x = 1, 2, ..., 100, 1, ... (one in five a
    multiple of 5), keeping each answer's status and the version that gave it."""

    def __init__(self, url: str, client_id: str | None = None, limit: int = 20_000) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.client_id = client_id
        self.limit = limit
        self.answers: list[Answer] = []
        self.halt = threading.Event()

    def run(self) -> None:
        n = 0
        while not self.halt.is_set() and n < self.limit:
            n += 1
            self.answers.append(self.call(n % 100 + 1))

    def call(self, x: int) -> Answer:
        headers = {"Content-Type": "application/json"}
        if self.client_id:
            headers["X-Client-ID"] = self.client_id
        request = urllib.request.Request(
            f"{self.url}/predict", data=json.dumps({"x": x}).encode(), headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                response.read()
                version = response.headers.get("X-Nbops-Version")
                return Answer(time.monotonic(), response.status, version, x)
        except urllib.error.HTTPError as error:
            version = error.headers.get("X-Nbops-Version")
            return Answer(time.monotonic(), error.code, version, x)
        except OSError:
            return Answer(time.monotonic(), 0, None, x)

    def stop(self) -> None:
        self.halt.set()
        self.join(timeout=15)

    def since(self, moment: float) -> list[Answer]:
        return [a for a in list(self.answers) if a.at >= moment]

    def wait_answers(self, count: int, within: float = 30.0) -> None:
        deadline = time.monotonic() + within
        while len(self.answers) < count and time.monotonic() < deadline:
            time.sleep(0.05)


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> Builds:
    return Builds(tmp_path_factory.mktemp("builds"))


@pytest.fixture
def project(tmp_path: Path, builds: Builds) -> Iterator[Project]:
    env = {**os.environ, "NBOPS_HOME": str(tmp_path / ".nbops")}
    env.pop("NBOPS_API_KEY", None)
    env.pop("NBOPS_WATCH", None)
    project = Project(tmp_path, free_port(), builds, env)
    yield project
    subprocess.run([NBOPS, "stop", "model"], cwd=tmp_path, env=env, capture_output=True)


def _url(project: Project) -> str:
    return f"http://127.0.0.1:{project.port}"


@WATCHED
def test_a_version_failing_a_fifth_of_requests_is_rolled_back_by_itself(project: Project) -> None:
    first = project.deploy("--watch", "0")
    assert first["watch"] is None and first["version"] == 1
    client = Client(_url(project))
    client.start()
    try:
        client.wait_answers(20)
        bad = project.deploy("-p", "flaky=True", "--watch", "60s")
        assert (bad["version"], bad["watch"]) == (2, "watching")
        project.wait_for(2, "rolled-back", None, within=30)
        back = time.monotonic()
        time.sleep(1.5)
    finally:
        client.stop()
    failures = [a for a in client.answers if a.status != 200]
    assert failures, "the bad version was never reached"
    assert {a.version for a in failures} == {"2"}
    assert all(a.x % 5 == 0 for a in failures)
    # From the first failure to the last: the breach was seen and acted on within 10 s.
    assert failures[-1].at - failures[0].at < 10.0
    after = client.since(back + 0.5)
    assert len(after) > 20
    assert all(a.status == 200 and a.version == "1" for a in after)

    history = project.history()
    assert history[1]["status"] == "healthy" and history[1]["current"]
    rolled = history[2]
    assert rolled["status"] == "rolled-back" and rolled["pid"] is None
    assert rolled["reason"].startswith("rolled back by its watch: error rate ")
    assert "> 2% (--max-error-rate); v1 serves again" in rolled["reason"]
    assert rolled["figures"]["breach"] == "error-rate"
    assert rolled["figures"]["requests"] >= 50 and rolled["figures"]["error_rate"] > 0.1
    (status,) = json.loads(project.nbops("status", "--format", "json"))
    assert status["version"] == 1 and status["rolled_back"]["version"] == 2
    text = project.nbops("status")
    assert "model v2: rolled back by its watch: error rate" in " ".join(text.split())


@WATCHED
def test_a_healthy_version_under_the_same_client_becomes_stable(project: Project) -> None:
    project.deploy("--watch", "0")
    client = Client(_url(project))
    client.start()
    try:
        client.wait_answers(20)
        project.deploy("-p", "factor=3", "--watch", "3s")
        standby = project.history()[1]
        assert standby["status"] == "standby" and pid_alive(standby["pid"])
        waited = project.wait_for(2, "healthy", "stable", within=20)
        time.sleep(0.5)
        settled = time.monotonic()
        time.sleep(1.0)
    finally:
        client.stop()
    assert waited < 8
    assert all(a.status == 200 for a in client.answers)
    assert {a.version for a in client.since(settled)} == {"2"}
    history = project.history()
    assert history[1]["status"] == "stopped" and history[1]["pid"] is None
    assert not pid_alive(standby["pid"])
    (status,) = json.loads(project.nbops("status", "--format", "json"))
    assert (status["version"], status["watch_summary"]) == (2, "stable")


@WATCHED
def test_a_breach_after_the_watch_marks_the_version_degraded_and_keeps_it(
    project: Project,
) -> None:
    project.deploy("--watch", "0")
    project.deploy("-p", "flaky=True", "--watch", "2s")  # no traffic while it is watched
    project.wait_for(2, "healthy", "stable", within=20)
    client = Client(_url(project), limit=400)
    client.run()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and project.history()[2]["watch"] != "degraded":
        time.sleep(0.2)
    row = project.history()[2]
    assert (row["status"], row["watch"], row["current"]) == ("healthy", "degraded", True)
    assert row["reason"].startswith("error rate ")
    assert {a.version for a in client.answers} == {"2"}
    (status,) = json.loads(project.nbops("status", "--format", "json"))
    assert status["watch_summary"].startswith("degraded: error rate ")
    assert status["version"] == 2


@WATCHED
def test_the_default_watch_is_three_minutes_with_the_previous_version_on_standby(
    project: Project,
) -> None:
    project.deploy()
    second = project.deploy("-p", "factor=3")
    assert second["watch"] == "watching"
    assert second["policy"]["watch_s"] == 180
    assert 170 < second["watch_until"] - time.time() <= 180
    assert project.history()[1]["status"] == "standby"
    (status,) = json.loads(project.nbops("status", "--format", "json"))
    assert status["standby"] == 1
    assert status["watch_summary"].startswith("watching (")
    assert status["watch_summary"].endswith("left; v1 on standby)")


@WATCHED
def test_killing_the_deploy_right_after_promotion_does_not_stop_the_watch(
    project: Project,
) -> None:
    project.deploy("--watch", "0")
    env = {**project.env, "NBOPS_TEST_PAUSE_AT": "promoted:60"}
    deploying = subprocess.Popen(
        project.argv("-p", "flaky=True", "--watch", "60s"),
        cwd=project.root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and _upstream(project).get("version") != 2:
            time.sleep(0.1)
        assert _upstream(project).get("version") == 2
        os.kill(deploying.pid, signal.SIGKILL)
        deploying.wait(timeout=10)
    finally:
        if deploying.poll() is None:
            deploying.kill()
    client = Client(_url(project), limit=3000)
    client.start()
    try:
        project.wait_for(2, "rolled-back", None, within=30)
        back = time.monotonic()
        time.sleep(1.0)
    finally:
        client.stop()
    assert all(a.status == 200 and a.version == "1" for a in client.since(back + 0.5))
    assert "error rate" in project.history()[2]["reason"]


def _upstream(project: Project) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(f"{_url(project)}/_nbops/upstream", timeout=5) as response:
            data: dict[str, Any] = json.loads(response.read())
            return data
    except OSError:
        return {}


@WATCHED
def test_a_canary_gets_its_share_during_the_watch_then_all_requests(project: Project) -> None:
    project.deploy("--watch", "0")
    canary = project.deploy("-p", "factor=3", "--watch", "10s", "--canary", "20%")
    assert canary["canary"] == 20
    client = Client(_url(project), limit=500)
    client.run()  # 500 requests, here, during the watch
    assert len(client.answers) == 500 and all(a.status == 200 for a in client.answers)
    share = collections.Counter(a.version for a in client.answers)["2"] / 500
    assert 0.15 <= share <= 0.25, share
    assert project.history()[2]["watch"] == "watching", "the watch ended before the 500"

    sticky = Client(_url(project), client_id="customer-42", limit=40)
    sticky.run()
    assert len({a.version for a in sticky.answers}) == 1

    project.wait_for(2, "healthy", "stable", within=30)
    after = Client(_url(project), limit=50)
    after.run()
    assert {a.version for a in after.answers} == {"2"}
    assert project.history()[1]["status"] == "stopped"


@WATCHED
def test_a_bad_canary_is_rolled_back_with_no_failure_on_the_rest(project: Project) -> None:
    project.deploy("--watch", "0")
    project.deploy("-p", "flaky=True", "--watch", "60s", "--canary", "20%")
    client = Client(_url(project))
    client.start()
    try:
        project.wait_for(2, "rolled-back", None, within=40)
        back = time.monotonic()
        time.sleep(1.0)
    finally:
        client.stop()
    on_stable = [a for a in client.answers if a.version == "1"]
    on_canary = [a for a in client.answers if a.version == "2"]
    assert on_canary and any(a.status == 500 for a in on_canary)
    assert on_stable and all(a.status == 200 for a in on_stable)
    assert all(a.status == 200 and a.version == "1" for a in client.since(back + 0.5))
    rolled = project.history()[2]
    assert rolled["figures"]["baseline"]["errors"] == 0  # the stable version, same traffic


@WATCHED
def test_a_slower_canary_is_rolled_back_on_its_p99_against_the_same_traffic(
    project: Project,
) -> None:
    project.deploy("--watch", "0")
    project.deploy("-p", "pause=0.15", "--watch", "60s", "--canary", "50%")
    client = Client(_url(project))
    client.start()
    try:
        project.wait_for(2, "rolled-back", None, within=60)
    finally:
        client.stop()
    rolled = project.history()[2]
    assert rolled["figures"]["breach"] == "p99"
    assert rolled["figures"]["p99_ms"] >= 150
    # The judgement the reason gives: the canary's p99 over twice the other's (floored at 50 ms).
    baseline = max(rolled["figures"]["baseline"]["p99_ms"], 50.0)
    assert rolled["figures"]["p99_ms"] > 2 * baseline
    assert "(--max-p99-ratio); v1 serves again" in rolled["reason"]
    assert all(a.status == 200 for a in client.answers)


def test_a_canary_without_a_watch_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "model.ipynb").write_text(json.dumps(flaky_notebook()))
    done = subprocess.run(
        [NBOPS, "deploy", "model.ipynb", "--watch", "0", "--canary", "10%"],
        cwd=tmp_path,
        env={**os.environ, "NBOPS_HOME": str(tmp_path / ".nbops")},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "a canary needs a watch" in done.stderr
    assert "Traceback" not in done.stderr


def referenced_notebook() -> dict[str, Any]:
    """A model whose serve cell names reference rows (x from 0 to 199), so its service
    measures drift."""
    return notebook_json(
        [
            ("rows = [{'x': float(i)} for i in range(200)]", ["step:load"]),
            (
                "def predict(x: float) -> float:\n    '''Double x.'''\n    return x * 2",
                ["serve:predict", "reference=rows"],
            ),
            ("predict(3.0)", ["example"]),
        ]
    )


def _send(project: Project, xs: range) -> None:
    for x in xs:
        request = urllib.request.Request(
            f"{_url(project)}/predict",
            data=json.dumps({"x": float(x)}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200


@WATCHED
def test_drift_in_a_watched_version_rolls_it_back_and_monitor_shows_it(
    project: Project,
) -> None:
    project.notebook = referenced_notebook()
    project.deploy("--watch", "0")
    _send(project, range(0, 200, 2))  # like the reference: 100 requests
    snapshot = json.loads(project.nbops("monitor", "model", "--format", "json"))
    (route,) = snapshot["monitoring"]["routes"]
    assert route["flagged"] == [] and route["drift"] < 0.25
    assert snapshot["deployment"]["version"] == 1

    project.deploy("--watch", "60s")
    _send(project, range(1000, 1150))  # far outside the reference's range
    project.wait_for(2, "rolled-back", None, within=20)

    rolled = project.history()[2]
    assert rolled["figures"]["breach"] == "drift"
    assert rolled["reason"].startswith("rolled back by its watch: drift of x ")
    assert "(PSI against the build's reference) > 0.25 (--max-drift); v1 serves" in rolled["reason"]
    _send(project, range(1000, 1120))  # now to v1, which drifts as much: stable, so degraded
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and project.history()[1]["watch"] != "degraded":
        time.sleep(0.2)
    assert project.history()[1]["watch"] == "degraded"
    text = " ".join(project.nbops("monitor", "model", "--once").split())
    assert "x " in text and "drifted" in text
    assert "v2: rolled back by its watch: drift of x" in text, text
