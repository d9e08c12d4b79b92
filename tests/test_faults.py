"""Fault injection on real deployments: processes killed at each stage of a deploy, the proxy and
the serving version killed, the deploy command interrupted; and the proxy's input limits.

Every row watches the stable URL with a client calling it back to back and asserts: at most one
version serves afterwards; `nbops status` says what is true within 5 s; a killed proxy or serving
version answers again within 10 s by itself; client requests fail only in that restart window;
and `nbops stop` leaves no process of the deployment. The deploy is held for a moment at the stage
under test by NBOPS_TEST_PAUSE_AT (read only there), so that a kill sent from here lands in it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from test_deploy import NBOPS, Poller, Project, model_notebook, predict

from nbops.deploy.processes import free_port

pytestmark = pytest.mark.slow
NAME = "model"
RESTART_S = 10.0
STATUS_S = 5.0


class Faults(Project):
    def deploy_build(self, **env: str) -> subprocess.Popen[str]:
        argv = [NBOPS, "deploy", "fbuild", "--name", NAME, "--port", str(self.port)]
        return subprocess.Popen(
            [*argv, "--format", "json"],
            cwd=self.root,
            env={**self.env, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def db(self) -> sqlite3.Connection:
        conn = sqlite3.connect(f"file:{self.root / '.nbops' / 'state.db'}?mode=ro", uri=True)
        conn.row_factory = sqlite3.Row
        return conn

    def rows(self) -> list[sqlite3.Row]:
        with self.db() as conn:
            return conn.execute(
                "SELECT * FROM deployments WHERE name = ? ORDER BY version", (NAME,)
            ).fetchall()

    def proxy_pid(self, column: str = "proxy_pid") -> int:
        with self.db() as conn:
            row = conn.execute(f"SELECT {column} FROM endpoints WHERE name = ?", (NAME,)).fetchone()
        return int(row[column])

    def processes(self, marker: str = "") -> list[int]:
        """Processes of this project's deployment (supervisor, proxy, versions) running now."""
        home = str(self.root / ".nbops")
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if home in cmdline and marker in cmdline and state != "Z":
                found.append(int(entry.name))
        return found


@pytest.fixture(scope="module")
def faults(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Faults]:
    root = tmp_path_factory.mktemp("faults")
    env = {**os.environ, "NBOPS_HOME": str(root / ".nbops")}
    env.pop("NBOPS_API_KEY", None)
    env.pop("NBOPS_TEST_PAUSE_AT", None)
    project = Faults(root, free_port(), env)
    (root / "model.ipynb").write_text(json.dumps(model_notebook(2)))
    project.nbops("build", "model.ipynb", "-o", "fbuild", check=True)
    yield project
    project.nbops("stop", NAME)


@pytest.fixture
def serving(faults: Faults) -> Iterator[Faults]:
    """One healthy version behind the proxy; afterwards `nbops stop` leaves no process."""
    deploy = faults.deploy_build()
    out, err = deploy.communicate(timeout=120)
    assert json.loads(out)["status"] == "healthy", err
    yield faults
    assert faults.nbops("stop", NAME).returncode == 0
    assert faults.processes() == []


def wait_answering(project: Faults, since: float, timeout: float = RESTART_S) -> float:
    """When the stable URL answers 200 again; fails `timeout` s after `since`."""
    while time.monotonic() - since < timeout:
        if predict(project.url, 3.0)[0] == 200:
            return time.monotonic()
        time.sleep(0.05)
    pytest.fail(f"the stable URL did not answer within {timeout:g} s")


def assert_status_is_true(project: Faults) -> None:
    """Within 5 s `nbops status` says what a client sees: health ok and proxy up exactly when
    the stable URL answers."""
    deadline = time.monotonic() + STATUS_S
    while True:
        (row,) = json.loads(project.nbops("status", NAME, "--format", "json", check=True).stdout)
        answers = predict(project.url, 3.0)[0] == 200
        said = row["status"] == "healthy" and row["health"] == "ok" and row["proxy"] == "up"
        if said == answers or time.monotonic() > deadline:
            assert said == answers, row
            return
        time.sleep(0.2)


def assert_one_version_serves(project: Faults) -> None:
    assert len(project.processes("uvicorn")) <= 1
    live = [r for r in project.rows() if r["status"] in ("healthy", "starting", "building")]
    assert [r["current"] for r in live] == [1], [dict(r) for r in project.rows()]


def failures_outside(poller: Poller, start: float, end: float) -> list[Any]:
    """Failed requests outside the restart window; the figures are printed for the record."""
    print(
        f"answered again {end - start:.2f} s after the kill; "
        f"{len(poller.timed_failures)} failed, {len(poller.answers)} answered"
    )
    return [f for at, f in poller.timed_failures if not start <= at <= end + 0.5]


class TimedPoller(Poller):
    """The test_deploy client, noting when each failure happened."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.timed_failures: list[tuple[float, Any]] = []

    def run(self) -> None:
        while not self.halt.is_set():
            status, answer = predict(self.url, 3.0)
            if status == 200:
                self.answers.append(answer)
            else:
                self.timed_failures.append((time.monotonic(), (status, answer)))
                time.sleep(0.01)


def stage_lines(deploy: subprocess.Popen[str], stage: str) -> str:
    """Read the deploy's stage lines (stderr) until `stage` is announced; that line."""
    assert deploy.stderr is not None
    for line in deploy.stderr:
        if line.startswith(f"{stage}:"):
            return line
    pytest.fail(f"the deploy ended before stage {stage!r}")


def newest(project: Faults) -> sqlite3.Row:
    return project.rows()[-1]


def wait_for(condition: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.mark.parametrize("stage", ["starting", "ready", "smoke", "promoting"])
def test_new_version_killed_before_promotion(serving: Faults, stage: str) -> None:
    poller = TimedPoller(serving.url)
    poller.start()
    deploy = serving.deploy_build(NBOPS_TEST_PAUSE_AT=f"{stage}:1.5")
    stage_lines(deploy, stage)
    os.kill(newest(serving)["pid"], signal.SIGKILL)
    out, _ = deploy.communicate(timeout=120)
    poller.stop()
    assert json.loads(out)["status"] == "failed"
    assert poller.timed_failures == []
    assert_one_version_serves(serving)
    assert_status_is_true(serving)


def test_new_version_killed_just_after_promotion(serving: Faults) -> None:
    before = newest(serving)["version"]
    poller = TimedPoller(serving.url)
    poller.start()
    deploy = serving.deploy_build(NBOPS_TEST_PAUSE_AT="promoted:1.5")
    wait_for(lambda: newest(serving)["version"] > before and newest(serving)["current"] == 1)
    killed = time.monotonic()
    os.kill(newest(serving)["pid"], signal.SIGKILL)
    out, _ = deploy.communicate(timeout=120)
    recovered = wait_answering(serving, killed)
    poller.stop()
    result = json.loads(out)
    # Either it is switched back (the old one serves) or its supervisor restarted it in time.
    assert result["status"] in ("failed", "healthy")
    assert failures_outside(poller, killed, recovered) == []
    assert_one_version_serves(serving)
    assert_status_is_true(serving)


@pytest.mark.parametrize("during_deploy", [False, True], ids=["idle", "during-deploy"])
def test_killed_proxy_comes_back_by_itself(serving: Faults, during_deploy: bool) -> None:
    before = newest(serving)["version"]
    poller = TimedPoller(serving.url)
    poller.start()
    deploy = serving.deploy_build(NBOPS_TEST_PAUSE_AT="promoted:1.0") if during_deploy else None
    if deploy is not None:
        wait_for(lambda: newest(serving)["version"] > before and newest(serving)["current"] == 1)
    killed = time.monotonic()
    os.kill(serving.proxy_pid(), signal.SIGKILL)
    recovered = wait_answering(serving, killed)
    if deploy is not None:
        out, err = deploy.communicate(timeout=120)
        assert json.loads(out)["status"] == "healthy", err
    time.sleep(0.3)
    poller.stop()
    assert failures_outside(poller, killed, recovered) == []
    assert_one_version_serves(serving)
    assert_status_is_true(serving)


def test_killed_serving_version_comes_back_by_itself(serving: Faults) -> None:
    row = newest(serving)
    poller = TimedPoller(serving.url)
    poller.start()
    killed = time.monotonic()
    os.kill(row["pid"], signal.SIGKILL)
    recovered = wait_answering(serving, killed)
    time.sleep(0.3)
    poller.stop()
    assert failures_outside(poller, killed, recovered) == []
    assert newest(serving)["pid"] != row["pid"]
    assert_one_version_serves(serving)
    assert_status_is_true(serving)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_interrupted_deploy_leaves_nothing_half_started(serving: Faults, sig: int) -> None:
    poller = TimedPoller(serving.url)
    poller.start()
    deploy = serving.deploy_build(NBOPS_TEST_PAUSE_AT="smoke:3")
    stage_lines(deploy, "smoke")
    pid = newest(serving)["pid"]
    deploy.send_signal(sig)
    deploy.communicate(timeout=60)
    if sig == signal.SIGKILL:  # nobody was left to clean up: the next command does
        serving.nbops("status", check=True)
    poller.stop()
    assert poller.timed_failures == []
    assert newest(serving)["status"] == "failed"
    assert pid not in serving.processes()
    assert_one_version_serves(serving)
    assert_status_is_true(serving)


def test_a_killed_supervisor_is_reported_and_the_next_deploy_starts_one(serving: Faults) -> None:
    proxy = serving.proxy_pid()
    os.kill(serving.proxy_pid("supervisor_pid"), signal.SIGKILL)
    (status,) = json.loads(serving.nbops("status", NAME, "--format", "json", check=True).stdout)
    assert (status["health"], status["proxy"], status["supervisor"]) == ("ok", "up", "down")
    poller = TimedPoller(serving.url)
    poller.start()
    out, err = serving.deploy_build().communicate(timeout=120)
    poller.stop()
    assert json.loads(out)["status"] == "healthy", err
    assert poller.timed_failures == []
    assert serving.proxy_pid() == proxy  # adopted by the new supervisor, not restarted
    (status,) = json.loads(serving.nbops("status", NAME, "--format", "json", check=True).stdout)
    assert (status["health"], status["proxy"], status["supervisor"]) == ("ok", "up", "up")
    assert_one_version_serves(serving)


def test_a_version_that_keeps_dying_is_reported_as_a_crash_loop(serving: Faults) -> None:
    row = newest(serving)
    (Path(row["build_dir"]) / "service" / "main.py").write_text("raise SystemExit(3)\n")
    os.kill(row["pid"], signal.SIGKILL)
    wait_for(lambda: newest(serving)["status"] == "failed", timeout=60)
    (status,) = json.loads(serving.nbops("status", NAME, "--format", "json", check=True).stdout)
    assert status["reason"] == (
        f"crash loop: v{row['version']} exited 5 times within 60 s; see `nbops logs`"
    )
    assert (status["proxy"], status["supervisor"]) == ("up", "up")
    assert predict(serving.url, 3.0)[0] == 503
    assert_status_is_true(serving)


# the proxy's input limits


def raw_request(port: int, head: bytes, body_chunks: Iterable[bytes] = ()) -> bytes:
    """Send a request byte for byte; the first line of the answer (the status line)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head)
        try:
            for chunk in body_chunks:
                sock.sendall(chunk)
        except OSError:
            pass  # the proxy answered and closed before the whole body was sent
        return sock.recv(65536).split(b"\r\n", 1)[0]


def rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("VmRSS:", 1)[1].split()[0])


def test_proxy_refuses_a_large_body_with_413_without_holding_it(serving: Faults) -> None:
    proxy = serving.proxy_pid()
    before = rss_kib(proxy)
    declared = b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    big = raw_request(serving.port, declared + b"Content-Length: 314572800\r\n\r\n")
    assert big.startswith(b"HTTP/1.1 413")

    def chunks() -> Iterator[bytes]:  # 300 MB, chunked: no length to judge it by up front
        block = b"x" * (1024 * 1024)
        for _ in range(300):
            yield b"%x\r\n%s\r\n" % (len(block), block)
        yield b"0\r\n\r\n"

    streamed = raw_request(serving.port, declared + b"Transfer-Encoding: chunked\r\n\r\n", chunks())
    assert streamed.startswith(b"HTTP/1.1 413")
    assert rss_kib(proxy) - before < 64 * 1024
    assert predict(serving.url, 3.0)[0] == 200


def test_proxy_passes_latin1_header_bytes(serving: Faults) -> None:
    body = b'{"x": 3.0}'
    head = (
        b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"X-Caller: caf\xe9 cr\xe8me\r\nConnection: close\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    status = raw_request(serving.port, head)
    assert status.startswith(b"HTTP/1.1 200"), status
