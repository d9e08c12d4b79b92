"""`nbops serve`: the service of a build, run by uvicorn in the foreground."""

from __future__ import annotations

import errno
import json
import os
import socket
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbops.deploy.workers import FOREGROUND_FACTORY
from nbops.errors import ServeError

MANIFEST = "nbops.json"
APP = "service.main:app"
# prometheus-client's switch: each worker writes its metrics there, /metrics adds them up.
METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR"
# Seconds SIGTERM waits for requests in flight before uvicorn cancels them: a batch is stopped
# between two requests, so the process exits within about this, not when a long batch ends.
DRAIN_SECONDS = 3


@dataclass(frozen=True)
class BatchSettings:
    """What `--max-batch-size` and `--max-latency-ms` give the service's micro-batching; None
    leaves the service's setting (its env var, else its default)."""

    max_batch_size: int | None = None
    max_latency_ms: float | None = None

    def environment(self) -> dict[str, str]:
        given: dict[str, float | None] = {
            "NBOPS_MAX_BATCH_SIZE": self.max_batch_size,
            "NBOPS_MAX_LATENCY_MS": self.max_latency_ms,
        }
        return {name: str(value) for name, value in given.items() if value is not None}


def check_build_dir(path: Path) -> dict[str, Any]:
    """The build's manifest, once the folder is known to hold a build with a service."""
    where = str(path)
    if not path.is_dir():
        raise ServeError(
            "is not a folder.", where=where, fix="Give the folder `nbops build` wrote."
        )
    if not (path / MANIFEST).is_file():
        raise ServeError(
            f"has no {MANIFEST}, so it is not an nbops build.",
            where=where,
            fix="Build the notebook first: `nbops build NOTEBOOK`, then serve build/<name>.",
        )
    if not (path / "service" / "main.py").is_file():
        raise ServeError(
            "has no service/: the notebook has no serve cell, or was built by an older nbops.",
            where=where,
            fix="Tag a cell defining the function to serve with `serve`, then build again.",
        )
    try:
        manifest: dict[str, Any] = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ServeError(
            f"its {MANIFEST} cannot be read ({error}).", where=where, fix="Build again."
        ) from None
    return manifest


def serve(
    build_dir: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    batching: BatchSettings | None = None,
    announce: Callable[[str], None] = print,
) -> None:
    """Run the build's service until interrupted; its logs are JSON lines on stderr.

    SIGTERM or Ctrl-C stops taking connections, lets requests in flight finish for up to
    DRAIN_SECONDS, then cancels what is left and exits.
    """
    import uvicorn

    root = build_dir.resolve()
    manifest = check_build_dir(root)
    check_port(host, port, build_dir)
    url = f"http://{_url_host(host)}:{port}"
    build = manifest.get("build_id", "?")
    announce(
        f"serving {manifest.get('name', root.name)} (build {build}) at {url}/  docs: {url}/docs"
    )
    with _shared_metrics(workers), _environment((batching or BatchSettings()).environment()):
        uvicorn.run(
            # Several workers load the app through a factory that ends each one if this
            # process dies, even by SIGKILL; uvicorn's own workers would live on.
            FOREGROUND_FACTORY if workers > 1 else APP,
            factory=workers > 1,
            host=host,
            port=port,
            workers=workers,
            app_dir=str(root),
            # The service logs JSON lines itself, each request once with its id.
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=DRAIN_SECONDS,
        )


def check_port(host: str, port: int, build_dir: Path) -> None:
    """Refuse a port another program listens on at once, before the artifacts load: uvicorn
    would find out only then, and exit with a line of JSON."""
    if port == 0:  # any free port: the system picks one
        return
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as error:
        raise ServeError(
            f"cannot listen on {host!r}: {error.strerror}.",
            fix="Give --host an address of this machine, such as 127.0.0.1 or 0.0.0.0.",
        ) from None
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(address)
        except OSError as error:
            raise _unusable(host, port, build_dir, error) from None


def _unusable(host: str, port: int, build_dir: Path, error: OSError) -> ServeError:
    if error.errno == errno.EADDRINUSE:
        return ServeError(
            f"port {port} on {host} is taken by another program, so {build_dir} cannot be "
            "served there.",
            fix="Stop that program, or choose another port with --port.",
        )
    if error.errno == errno.EACCES:
        return ServeError(
            f"listening on port {port} needs privileges this user lacks.",
            fix="Choose a port above 1023 with --port.",
        )
    return ServeError(
        f"cannot listen on {host} port {port}: {error.strerror}.",
        fix="Give --host an address of this machine (127.0.0.1, 0.0.0.0) and a free --port.",
    )


def _url_host(host: str) -> str:
    """Where a browser reaches a server bound to `host`."""
    if host in ("0.0.0.0", "::", ""):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


@contextmanager
def _shared_metrics(workers: int) -> Iterator[None]:
    """With several workers, one folder their metrics are written to, so that /metrics, which
    any one worker answers, counts the requests of all of them."""
    if workers < 2 or os.environ.get(METRICS_DIR):
        yield
        return
    with tempfile.TemporaryDirectory(prefix="nbops-metrics-") as folder:
        os.environ[METRICS_DIR] = folder
        try:
            yield
        finally:
            os.environ.pop(METRICS_DIR, None)


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """The service's settings given on the command line, as the env vars it reads (its
    workers inherit them), put back as they were afterwards."""
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
