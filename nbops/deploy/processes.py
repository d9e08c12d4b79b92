"""Service processes of deployments: start detached, wait until ready, smoke-test, stop."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbops.deploy import workers as workers_app
from nbops.run.pids import same_process

READY_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class NotHealthy(Exception):
    """The new version did not start, become ready, or answer its smoke request."""

    reason: str


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def start_detached(
    argv: list[str], *, cwd: Path, log_path: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """A process in its own session, so it outlives the command that started it."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            argv,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )


def start_service(
    build_dir: Path, port: int, log_path: Path, workers: int = 1
) -> subprocess.Popen[bytes]:
    """The build's service on `port`; with several workers, uvicorn's manager process (the
    group leader, which `stop` signals with its workers) and a metrics folder of their own."""
    app, env = "service.main:app", {}
    if workers > 1:
        app = workers_app.FACTORY
        env[workers_app.METRICS_ENV] = str(workers_app.fresh_metrics_folder(build_dir))
    argv = [sys.executable, "-m", "uvicorn", app, "--app-dir", str(build_dir)]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
    argv += ["--timeout-graceful-shutdown", "3"]  # SIGTERM drains for 3 s, as `nbops serve`
    if workers > 1:
        argv += ["--factory", "--workers", str(workers)]
    return start_detached(argv, cwd=build_dir, log_path=log_path, env=env)


def start_proxy(name: str, port: int, db: Path, log_path: Path) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "nbops.deploy.proxy", name, "--port", str(port), "--db", str(db)]
    return start_detached(argv, cwd=db.parent, log_path=log_path)


def start_supervisor(name: str, port: int, db: Path, log_path: Path) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "nbops.deploy.supervisor", name, "--port", str(port)]
    argv += ["--db", str(db)]
    return start_detached(argv, cwd=db.parent, log_path=log_path)


def wait_ready(
    process: subprocess.Popen[bytes],
    url: str,
    timeout: float = READY_TIMEOUT_S,
    *,
    workers: int = 1,
    version_dir: Path | None = None,
    what: str = "the service",
) -> None:
    """Until `/readyz` answers 200 and, with several workers, every one of them is ready (its
    own readiness gauge, as `nbops.deploy.workers` reads it); a process that exits or a timeout
    is NotHealthy. `what` names the version in those messages."""
    several = workers > 1
    assert version_dir is not None or not several, "workers write their metrics in version_dir"
    log = (version_dir or Path()) / "service.log"
    deadline = time.monotonic() + timeout
    ready: set[int] = set()
    while time.monotonic() < deadline:
        code = process.poll()
        if code is not None:
            if several:
                raise NotHealthy(
                    f"{what} exited with code {code} when {len(ready)} of its {workers} "
                    f"workers were ready; see {log}"
                )
            raise NotHealthy(f"the service exited with code {code} before it was ready")
        if several:
            ready = workers_app.ready_workers(process.pid, workers_app.metrics_folder(log.parent))
        status, body = get(f"{url}/readyz")
        if status is not None and status != 200:
            # The service answers only once its start-up (loading and checking artifacts) is
            # over, so a first answer that is not 200 is final: no point waiting it out.
            raise NotHealthy(f"/readyz answered {status}: {body[:300]}")
        if status == 200 and (not several or len(ready) >= workers):
            return
        time.sleep(0.1)
    if several:
        raise NotHealthy(
            f"{what}: only {len(ready)} of its {workers} workers were ready after {timeout:g} s; "
            f"see {log}"
        )
    raise NotHealthy(f"not ready after {timeout:.0f} s (no answer from /readyz)")


def wait_listening(process: subprocess.Popen[bytes], url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise NotHealthy(f"the proxy exited with code {process.returncode}")
        if get(url)[0] is not None:
            return
        time.sleep(0.05)
    raise NotHealthy(f"the proxy did not listen within {timeout:.0f} s")


def smoke(
    url: str,
    route: str,
    body: dict[str, Any],
    api_key: str | None,
    *,
    expect: int = 200,
    why: str = "",
    fix: str = "",
) -> None:
    """POST the body to the route; an answer other than `expect` is NotHealthy, saying `why`
    that answer was expected and, when given, how to fix it."""
    status, text = post(f"{url}/{route}", body, api_key)
    if status != expect:
        request = f"smoke request POST /{route} {json.dumps(body)[:200]}"
        if status is None:  # no HTTP answer at all: `text` says why
            reason = f"{request} got no answer ({text or 'the connection failed'})"
        else:
            answer = f"answered {status}" + (f" ({why})" if why else "")
            reason = f"{request} {answer}: {text[:300]}" if text else f"{request} {answer}"
        raise NotHealthy(f"{reason}. {fix}" if fix else reason)


def get(url: str, api_key: str | None = None) -> tuple[int | None, str]:
    return _request(urllib.request.Request(url), api_key)


def post(url: str, body: Any, api_key: str | None = None) -> tuple[int | None, str]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    return _request(request, api_key)


def _request(request: urllib.request.Request, api_key: str | None) -> tuple[int | None, str]:
    if api_key:
        request.add_header("X-API-Key", api_key)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status), response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return int(error.code), error.read().decode(errors="replace")
    except urllib.error.URLError as error:
        return None, str(error.reason)
    except OSError as error:
        return None, str(error) or type(error).__name__


def stop(pid: int | None, started: int | None, timeout: float = 10.0) -> None:
    """SIGTERM the process's group (uvicorn finishes in-flight requests), then SIGKILL; only
    while (pid, start time) still names the process recorded, never a process that reused
    its pid."""
    if not same_process(pid, started):
        _reap(pid)
        return
    assert pid is not None
    _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(pid)
        if not same_process(pid, started):
            return
        time.sleep(0.05)
    if same_process(pid, started):
        _signal_group(pid, signal.SIGKILL)
    _reap(pid)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def _reap(pid: int | None) -> None:
    """Collect our own child's exit status, so it does not linger as a zombie."""
    if not pid:
        return
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def log_tail(path: Path, lines: int = 20) -> str:
    if not path.is_file():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
