"""Real service processes for tests: `nbops serve` on a free loopback port, stopped afterwards."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

NBOPS = str(Path(sys.executable).parent / "nbops")
START_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Server:
    url: str
    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path

    def log(self) -> list[dict[str, Any]]:
        """The server's log so far: JSON lines on stderr."""
        return [json.loads(line) for line in self.stderr.read_text().splitlines() if line]

    def logged(self, **fields: Any) -> list[dict[str, Any]]:
        """The log lines with these fields, waiting a little for the first: a request is logged
        just after its answer is sent."""
        deadline = time.monotonic() + 5
        while True:
            found = [e for e in self.log() if all(e.get(k) == v for k, v in fields.items())]
            if found or time.monotonic() > deadline:
                return found
            time.sleep(0.02)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def build(notebook: Path, out: Path, home: Path, *params: str) -> Path:
    """`nbops build NOTEBOOK -o OUT -p ...`, as a user runs it."""
    arguments = [NBOPS, "build", str(notebook), "-o", str(out)]
    for param in params:
        arguments += ["-p", param]
    env = {**os.environ, "NBOPS_HOME": str(home)}
    done = subprocess.run(arguments, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return out


@contextmanager
def serving(build_dir: Path, logs: Path, **env: str) -> Iterator[Server]:
    """`nbops serve BUILD_DIR` on a free port until /healthz answers; stopped on the way out."""
    port = free_port()
    logs.mkdir(parents=True, exist_ok=True)
    stdout, stderr = logs / f"serve-{port}.out", logs / f"serve-{port}.err"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("NBOPS_")}
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(
            [NBOPS, "serve", str(build_dir), "--port", str(port)],
            stdout=out,
            stderr=err,
            env={**environment, **env, "PYTHONUNBUFFERED": "1"},
        )
    server = Server(f"http://127.0.0.1:{port}", process, stdout, stderr)
    try:
        _wait_alive(server)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_alive(server: Server) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise AssertionError(f"the server exited:\n{server.stderr.read_text()}")
        try:
            if httpx.get(f"{server.url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"no answer from {server.url}/healthz:\n{server.stderr.read_text()}")


def metric(text: str, name: str, **labels: str) -> float:
    """A sample's value from Prometheus text, 0 when absent."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0
