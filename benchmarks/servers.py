"""Servers under test: started on one CPU, ready once they answer, stopped whatever happens, and
the CPU time they (and their child processes) spend, read from /proc."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from measure import BenchmarkFailed

READY_TIMEOUT = 120.0  # seconds from start to first answer; the gateway trains the model first
# The environment's proxy settings must not apply: loopback traffic never leaves the host.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class ServerSpec:
    """How to start one server, where it answers once started, and the request it is sent
    (the same customer everywhere, in the body shape the server's API takes)."""

    name: str
    argv: tuple[str, ...]
    env: dict[str, str]
    port: int
    body: bytes
    route: str = "/predict"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.route}"


@dataclass(frozen=True)
class Server:
    name: str
    url: str
    pid: int
    started_in: float  # seconds from the process's start to its first answer
    body: bytes


@contextmanager
def serving(spec: ServerSpec, *, folder: Path, cpu: int | None) -> Iterator[Server]:
    """Start the server on `cpu` (its children inherit it), wait for its first answer to its
    request, and stop it when done, whatever happened meanwhile. Its output goes to a log in
    `folder`."""
    log = folder / f"{spec.name.replace(' ', '-')}.log"
    with log.open("wb") as output:
        started = time.perf_counter()
        process = subprocess.Popen(
            spec.argv,
            cwd=folder,
            env=spec.env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            preexec_fn=_on_cpu(cpu),
        )
        try:
            _wait_for_answer(spec, process, log)
            started_in = time.perf_counter() - started
            yield Server(spec.name, spec.url, process.pid, started_in, spec.body)
        finally:
            _stop(process)


def _on_cpu(cpu: int | None) -> Callable[[], None] | None:
    if cpu is None:
        return None
    return lambda: os.sched_setaffinity(0, {cpu})


def _wait_for_answer(spec: ServerSpec, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchmarkFailed(f"{spec.name} exited with {process.returncode}:\n{_tail(log)}")
        try:
            post(spec.url, spec.body, timeout=READY_TIMEOUT)
            return
        except urllib.error.HTTPError as error:
            # It is up, but refuses the request: waiting longer would not change that.
            detail = error.read()[:300].decode(errors="replace")
            raise BenchmarkFailed(f"{spec.name} answered {error.code}: {detail}") from error
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)
    raise BenchmarkFailed(f"{spec.name} did not answer in {READY_TIMEOUT:.0f} s:\n{_tail(log)}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, which uvicorn and the gateway (with its kernel) handle, then SIGKILL."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _tail(log: Path, lines: int = 15) -> str:
    return "\n".join(log.read_text(errors="replace").strip().splitlines()[-lines:])


def post(url: str, body: bytes, *, timeout: float) -> Any:
    """The JSON answer to one POST; an HTTP error status raises HTTPError (a URLError)."""
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    with _OPENER.open(request, timeout=timeout) as response:
        return json.loads(response.read())


def get(url: str, *, timeout: float) -> Any:
    """The JSON answer to one GET; an HTTP error status raises HTTPError (a URLError)."""
    return json.loads(get_text(url, timeout=timeout))


def get_text(url: str, *, timeout: float) -> str:
    """The body of the answer to one GET, as text (Prometheus's /metrics, for one)."""
    with _OPENER.open(url, timeout=timeout) as response:
        return str(response.read().decode())


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds spent so far by `pid` and the processes under it (the
    gateway's kernel is its child); NaN where there is no /proc.

    Unlike latency, CPU time per request hardly moves when other work shares the machine.
    """
    if not Path("/proc/self/stat").is_file():
        return float("nan")
    processes = _processes()
    tree = {pid}
    while below := {p for p, (ppid, _) in processes.items() if ppid in tree} - tree:
        tree |= below
    return sum(processes[p][1] for p in tree if p in processes)


def _processes() -> dict[int, tuple[int, float]]:
    """Every process's parent and CPU seconds, from /proc/<pid>/stat."""
    tick = os.sysconf("SC_CLK_TCK")
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # The command name, in parentheses, may hold spaces: split after its last ")".
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # it ended meanwhile
        found[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    return found
