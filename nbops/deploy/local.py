"""The local deploy target: health-gated promotion behind a stable port, rollback, stop, status.

Every version runs as its own uvicorn process on an internal port, from a snapshot of its build
under `.nbops/deployments/<name>/v<N>/` (so a later build never changes what is deployed). A
small proxy (nbops.deploy.proxy) owns the stable port and forwards to the version the state db marks
current. A new version is promoted only once it is ready and has answered a smoke request; the
old one is stopped only after the proxy has switched. So a bad version never replaces a good
one, and clients of the stable URL see no gap.
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbops.deploy import processes, records
from nbops.deploy.processes import NotHealthy
from nbops.deploy.records import Deployment
from nbops.errors import NbopsError
from nbops.model.pipeline import Pipeline
from nbops.run.home import Home
from nbops.run.pids import pid_alive
from nbops.run.runner import Listener

DEFAULT_PORT = 8000
# What the build's smoke tests send a route without an example request: a field no function
# takes, which a served route refuses with 422 before calling the function.
UNKNOWN_FIELD = {"no such argument": 1}
OPERATIONAL_ROUTES = frozenset({"/healthz", "/readyz", "/metrics", "/version", "/docs", ""})
SWITCH_TIMEOUT_S = 10.0

# Told each stage as it starts: "snapshot", "starting", "ready", "smoke", "promoting", ...
StageListener = Callable[[str, str], None]


class DeployError(NbopsError):
    """A deployment cannot even be attempted: no build, no service, a port taken."""


class RollbackError(NbopsError):
    """No version to roll back to, or the one named does not exist."""


@dataclass(frozen=True)
class Target:
    """Where the stable URL lives."""

    host: str = "127.0.0.1"
    port: int | None = None


def started_by(via: str = "cli") -> str:
    return f"{getpass.getuser()}@{socket.gethostname()} via {via}"


def deploy(
    build_dir: Path,
    *,
    name: str | None = None,
    port: int | None = None,
    home: Home | None = None,
    via: str = "cli",
    on_stage: StageListener | None = None,
) -> Deployment:
    """Start a build as a new version of `name`; promote it only if it proves healthy."""
    home = home or Home.default()
    manifest = read_manifest(build_dir)
    name = name or manifest["name"]
    db = home.db()
    with records.deploy_lock(db, name):
        stable_port = _stable_port(db, name, port)
        version = _new_version(
            db, name, manifest["notebook"]["sha256"], stable_port, via, "starting"
        )
        return _deploy_build(home, name, version, build_dir, stable_port, on_stage)


def deploy_notebook(
    pipeline: Pipeline,
    *,
    parameters: dict[str, Any] | None = None,
    name: str | None = None,
    port: int | None = None,
    home: Home | None = None,
    via: str = "cli",
    on_stage: StageListener | None = None,
    listener: Listener | None = None,
    out: Path | None = None,
) -> Deployment:
    """Build the notebook (cached) as a new version, recorded as `building` from the start,
    so a build that fails shows in the history like any failed version."""
    from nbops.build import builder as building
    from nbops.errors import StepFailed

    home = home or Home.default()
    name = name or pipeline.notebook.name
    stage = on_stage or (lambda *_: None)
    db = home.db()
    with records.deploy_lock(db, name):
        stable_port = _stable_port(db, name, port)
        version = _new_version(db, name, pipeline.notebook.sha256, stable_port, via, "building")
        stage("building", f"running and building {pipeline.notebook.display_name}")
        out = out or building.default_build_dir(pipeline)
        try:
            building.build(pipeline, out=out, parameters=parameters, home=home, listener=listener)
        except (StepFailed, building.BuildFailed) as failure:
            tail = "\n".join(failure.details.splitlines()[-20:]) if failure.details else None
            records.update(
                db, name, version, status="failed", reason=failure.render(), log_tail=tail
            )
            stage("failed", failure.render())
            return _get(db, name, version)
        return _deploy_build(home, name, version, out, stable_port, on_stage)


def _new_version(
    db: Any, name: str, notebook_sha256: str, stable_port: int, via: str, status: str
) -> int:
    version = records.next_version(db, name)
    now = time.time()
    records.insert(
        db,
        Deployment(
            name=name,
            version=version,
            status=status,
            build_dir="",
            build_id="",
            notebook_sha256=notebook_sha256,
            run_id=None,
            port=None,
            pid=None,
            url=f"http://127.0.0.1:{stable_port}",
            reason=None,
            log_tail=None,
            started_by=started_by(via),
            created_at=now,
            updated_at=now,
        ),
    )
    return version


def _deploy_build(
    home: Home,
    name: str,
    version: int,
    build_dir: Path,
    stable_port: int,
    on_stage: StageListener | None,
) -> Deployment:
    stage = on_stage or (lambda *_: None)
    manifest = read_manifest(build_dir)
    stage("snapshot", f"copying the build as {name} v{version}")
    snapshot = _snapshot(build_dir, home, name, version)
    records.update(
        home.db(),
        name,
        version,
        status="starting",
        build_dir=str(snapshot),
        build_id=manifest["build_id"],
        notebook_sha256=manifest["notebook"]["sha256"],
        run_id=manifest.get("run_id"),
    )
    return _bring_up(home, name, version, stable_port, stage, replaced_status="stopped")


def rollback(
    name: str,
    *,
    to: int | None = None,
    home: Home | None = None,
    via: str = "cli",
    on_stage: StageListener | None = None,
) -> Deployment:
    """Serve an earlier version again, health-gated like a deploy."""
    home = home or Home.default()
    db = home.db()
    stage = on_stage or (lambda *_: None)
    with records.deploy_lock(db, name):
        target = _rollback_target(db, name, to)
        endpoint = records.endpoint(db, name)
        stable_port = endpoint[0] if endpoint else _stable_port(db, name, None)
        records.update(db, name, target.version, status="starting", reason=None, log_tail=None)
        return _bring_up(home, name, target.version, stable_port, stage, "rolled-back")


def _bring_up(
    home: Home,
    name: str,
    version: int,
    stable_port: int,
    stage: StageListener,
    replaced_status: str,
) -> Deployment:
    db = home.db()
    row = records.get(db, name, version)
    assert row is not None
    snapshot = Path(row.build_dir)
    port = processes.free_port()
    stage("starting", f"starting v{version} on port {port}")
    process = processes.start_service(snapshot, port, snapshot / "service.log")
    records.update(db, name, version, pid=process.pid, port=port)
    url = f"http://127.0.0.1:{port}"
    try:
        stage("ready", "waiting for /readyz")
        processes.wait_ready(process, url)
        _smoke(snapshot, url, stage)
    except NotHealthy as failure:
        processes.stop(process.pid)
        records.update(
            db,
            name,
            version,
            status="failed",
            reason=failure.reason,
            log_tail=processes.log_tail(snapshot / "service.log"),
            pid=None,
        )
        stage("failed", failure.reason)
        return _get(db, name, version)
    previous = records.current(db, name)
    stage("promoting", f"switching {name} to v{version}")
    _ensure_proxy(home, name, stable_port)
    records.promote(db, name, version)
    _wait_for_switch(stable_port, version)
    if previous is not None and previous.version != version:
        processes.stop(previous.pid)
        records.update(db, name, previous.version, status=replaced_status, pid=None)
    stage("healthy", f"{name} v{version} serves http://127.0.0.1:{stable_port}")
    return _get(db, name, version)


def _get(db: Any, name: str, version: int) -> Deployment:
    row = records.get(db, name, version)
    assert row is not None
    return row


def read_manifest(build_dir: Path) -> dict[str, Any]:
    manifest = build_dir / "nbops.json"
    if not manifest.is_file():
        raise DeployError(
            f"{build_dir} is not an nbops build (it has no nbops.json).",
            fix="Run `nbops build NOTEBOOK` first, or deploy the notebook itself.",
        )
    if not (build_dir / "service").is_dir():
        raise DeployError(
            f"{build_dir} has no service/ (the notebook has no serve cell, or the build is old).",
            fix="Tag the function to serve with 'serve' and build again.",
        )
    data: dict[str, Any] = json.loads(manifest.read_text())
    return data


def _snapshot(build_dir: Path, home: Home, name: str, version: int) -> Path:
    target = home.root / "deployments" / name / f"v{version}"
    if target.exists():
        shutil.rmtree(target)
    ignore = shutil.ignore_patterns("__pycache__", "tests", "report.html")
    shutil.copytree(build_dir, target, ignore=ignore)
    return target


def _stable_port(db: Any, name: str, requested: int | None) -> int:
    """The name's port: as asked, else as before, else 8000 when free, else any free one."""
    known = records.endpoint(db, name)
    moving = requested is not None and known is not None and known[0] != requested
    if moving and known is not None and pid_alive(known[1]):
        raise DeployError(
            f"{name!r} already serves on port {known[0]}.",
            fix=f"Deploy without --port, or `nbops stop {name}` first.",
        )
    port = requested or (known[0] if known else None)
    if port is None:
        port = DEFAULT_PORT if not processes.port_in_use(DEFAULT_PORT) else processes.free_port()
    ours = known is not None and known[0] == port and pid_alive(known[1])
    if not ours and processes.port_in_use(port):
        raise DeployError(
            f"port {port} is taken by another program.", fix="Choose another with --port."
        )
    return port


def _ensure_proxy(home: Home, name: str, port: int) -> None:
    db = home.db()
    known = records.endpoint(db, name)
    if known is not None and known[0] == port and pid_alive(known[1]):
        return
    log = home.root / "deployments" / name / "proxy.log"
    proxy = processes.start_proxy(name, port, db.path, log)
    records.set_endpoint(db, name, port, proxy.pid)
    processes.wait_listening(proxy, f"http://127.0.0.1:{port}/_nbops/upstream")


def _wait_for_switch(port: int, version: int) -> None:
    """Until the proxy forwards to `version`: only then may the old one stop."""
    deadline = time.monotonic() + SWITCH_TIMEOUT_S
    while time.monotonic() < deadline:
        status, body = processes.get(f"http://127.0.0.1:{port}/_nbops/upstream")
        if status == 200 and json.loads(body).get("version") == version:
            return
        time.sleep(0.02)
    raise DeployError(f"the proxy on port {port} did not switch to v{version} in time.")


def _smoke(snapshot: Path, url: str, stage: StageListener) -> None:
    """Send each route what the build's smoke tests sent it: its example request, else a field
    its function does not take (a 422 shows the route is served and checks its requests)."""
    endpoints = read_manifest(snapshot).get("endpoints", [])
    stage("smoke", "; ".join(_smoke_plan(endpoint) for endpoint in endpoints))
    api_key = os.environ.get("NBOPS_API_KEY")
    for endpoint in endpoints:
        route, example = endpoint["route"], endpoint.get("example")
        if example is not None:
            cell = _cell(endpoint)
            why = f"the example call of cell {cell}" if cell is not None else ""
            processes.smoke(url, route, example, api_key, why=why)
        else:
            processes.smoke(
                url,
                route,
                UNKNOWN_FIELD,
                api_key,
                expect=422,
                why="not 422, for a field its function does not take",
                fix=_add_an_example(endpoint),
            )


def _smoke_plan(endpoint: dict[str, Any]) -> str:
    route = endpoint["route"]
    if endpoint.get("example") is None:
        return f"/{route} has no example request, so only its schema is checked. " + (
            _add_an_example(endpoint)
        )
    cell = _cell(endpoint)
    return f"POST /{route} with its example request" + (
        f" (cell {cell})" if cell is not None else ""
    )


def _cell(endpoint: dict[str, Any]) -> int | None:
    """The cell of the endpoint's example call; builds before nbops recorded it have none."""
    cell = endpoint.get("example_cell")
    return int(cell["index"]) if isinstance(cell, dict) else None


def _add_an_example(endpoint: dict[str, Any]) -> str:
    return (
        f"To send a real request, tag a cell 'example' that calls {endpoint['name']}(...) "
        "with literal arguments, then build and deploy again."
    )


def _rollback_target(db: Any, name: str, to: int | None) -> Deployment:
    versions = records.history(db, name)
    if not versions:
        raise RollbackError(f"nothing named {name!r} was ever deployed.", fix="`nbops status`.")
    current = records.current(db, name)
    if to is not None:
        match = next((d for d in versions if d.version == to), None)
        if match is None or match.healthy_at is None:
            known = ", ".join(f"v{d.version}" for d in versions if d.healthy_at)
            raise RollbackError(
                f"{name} v{to} was never healthy, or does not exist.",
                fix=f"Versions that served: {known or 'none'}.",
            )
        return match
    earlier = [
        d
        for d in versions
        if d.healthy_at is not None and (current is None or d.version < current.version)
    ]
    if not earlier:
        raise RollbackError(
            f"{name} has no earlier version that served.", fix="`nbops history NAME` lists them."
        )
    return earlier[-1]


def stop(name: str, *, home: Home | None = None) -> Deployment | None:
    """Stop the version serving `name` and its proxy."""
    home = home or Home.default()
    db = home.db()
    with records.deploy_lock(db, name):
        current = records.current(db, name)
        if current is None and records.endpoint(db, name) is None:
            raise RollbackError(f"nothing named {name!r} is deployed.", fix="`nbops status`.")
        if current is not None:
            processes.stop(current.pid)
            records.update(db, name, current.version, status="stopped", pid=None)
        endpoint = records.endpoint(db, name)
        if endpoint is not None:
            processes.stop(endpoint[1])
            records.set_endpoint(db, name, endpoint[0], None)
        return records.get(db, name, current.version) if current else None


def status(home: Home | None = None, name: str | None = None) -> list[dict[str, Any]]:
    """Each name's current (else newest) version, checked now: pid alive, /healthz, requests."""
    home = home or Home.default()
    db = home.db()
    rows = records.latest_per_name(db)
    return [_checked(db, row) for row in rows if name is None or row.name == name]


def _checked(db: Any, row: Deployment) -> dict[str, Any]:
    health = "-"
    requests: float | None = None
    if row.status == "healthy":
        if not pid_alive(row.pid):
            reason = f"the service process (pid {row.pid}) died"
            records.update(db, row.name, row.version, status="failed", reason=reason, pid=None)
            row = _get(db, row.name, row.version)
            health = "dead"
        else:
            code, _ = processes.get(f"http://127.0.0.1:{row.port}/healthz")
            health = "ok" if code == 200 else f"unhealthy ({code})"
            requests = _requests_served(row.port)
    data = row.as_dict()
    data.update(
        health=health,
        checked_at=time.time(),
        uptime_s=round(time.time() - row.healthy_at, 1)
        if row.healthy_at and row.status == "healthy"
        else None,
        requests=requests,
    )
    return data


def _requests_served(port: int | None) -> float | None:
    """The service's request count from its Prometheus /metrics, model routes only."""
    code, text = processes.get(f"http://127.0.0.1:{port}/metrics")
    if code != 200:
        return None
    total = 0.0
    for line in text.splitlines():
        if line.startswith("nbops_http_requests_total{"):
            route = line.split('route="', 1)[1].split('"', 1)[0] if 'route="' in line else ""
            if route not in OPERATIONAL_ROUTES:
                total += float(line.rsplit(" ", 1)[1])
    return total
