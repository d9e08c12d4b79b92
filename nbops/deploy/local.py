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

from nbops.deploy import health, processes, records
from nbops.deploy.health import status
from nbops.deploy.processes import NotHealthy
from nbops.deploy.promotion import Gatekeeper, Verdict
from nbops.deploy.records import Deployment
from nbops.deploy.watch import WATCHING, Policy
from nbops.errors import NbopsError
from nbops.model.durations import format_duration
from nbops.model.pipeline import Pipeline
from nbops.run.executors import Executor
from nbops.run.home import Home
from nbops.run.pids import same_process, start_time
from nbops.run.runner import Listener

DEFAULT_PORT = 8000
# What the build's smoke tests send a route without an example request: a field no function
# takes, which a served route refuses with 422 before calling the function.
UNKNOWN_FIELD = {"no such argument": 1}
SWITCH_TIMEOUT_S = 10.0
SUPERVISOR_TIMEOUT_S = 20.0
# For the fault-injection tests only: "STAGE" or "STAGE:SECONDS" holds the deploy that long (1 s
# by default) right after it announces STAGE, so a process killed from outside dies in it.
PAUSE_AT_ENV = "NBOPS_TEST_PAUSE_AT"

# Told each stage as it starts: "snapshot", "starting", "ready", "smoke", "promoting", ...
StageListener = Callable[[str, str], None]
VerdictListener = Callable[[Verdict], None]
__all__ = ["deploy", "deploy_notebook", "rollback", "status", "stop"]


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
    policy: Policy | None = None,
    gatekeeper: Gatekeeper | None = None,
    workers: int = 1,
) -> Deployment:
    """Start a build as a new version of `name` (unless its metrics fail `gatekeeper`), as
    `workers` uvicorn worker processes; promote it only if it proves healthy (every worker
    ready), then watch it under `policy` (the default when None)."""
    check_workers(workers)
    home = home or Home.default()
    manifest = read_manifest(build_dir)
    name = name or manifest["name"]
    db = home.db()
    with records.deploy_lock(db, name) as lease:
        stable_port = _stable_port(db, name, port)
        version = _new_version(
            db, name, manifest["notebook"]["sha256"], stable_port, via, "starting", workers
        )
        return _deploy_build(
            home, lease, version, build_dir, stable_port, on_stage, policy, gatekeeper
        )


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
    executor: Executor | None = None,
    step_timeout: float | None = None,
    policy: Policy | None = None,
    gatekeeper: Gatekeeper | None = None,
    on_verdict: VerdictListener | None = None,
    workers: int = 1,
) -> Deployment:
    """Build the notebook (cached) as a new version, recorded as `building` from the start,
    so a build that fails shows in the history like any failed version. `on_verdict` hears how
    the gatekeeper judged the build, refused or not."""
    check_workers(workers)
    from nbops.build import builder as building
    from nbops.errors import StepFailed

    home = home or Home.default()
    name = name or pipeline.notebook.name
    stage = on_stage or (lambda *_: None)
    db = home.db()
    with records.deploy_lock(db, name) as lease:
        stable_port = _stable_port(db, name, port)
        version = _new_version(
            db, name, pipeline.notebook.sha256, stable_port, via, "building", workers
        )
        stage("building", f"running and building {pipeline.notebook.display_name}")
        out = out or building.default_build_dir(pipeline)
        try:
            building.build(
                pipeline,
                out=out,
                parameters=parameters,
                home=home,
                listener=listener,
                executor=executor,
                step_timeout=step_timeout,
            )
        except (StepFailed, building.BuildFailed) as failure:
            tail = "\n".join(failure.details.splitlines()[-20:]) if failure.details else None
            records.update(
                db, name, version, status="failed", reason=failure.render(), log_tail=tail
            )
            stage("failed", failure.render())
            return _get(db, name, version)
        return _deploy_build(
            home, lease, version, out, stable_port, on_stage, policy, gatekeeper, on_verdict
        )


def _new_version(
    db: Any,
    name: str,
    notebook_sha256: str,
    stable_port: int,
    via: str,
    status: str,
    workers: int,
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
            workers=workers,
        ),
    )
    return version


def _deploy_build(
    home: Home,
    lease: records.Lease,
    version: int,
    build_dir: Path,
    stable_port: int,
    on_stage: StageListener | None,
    policy: Policy | None,
    gatekeeper: Gatekeeper | None = None,
    on_verdict: VerdictListener | None = None,
) -> Deployment:
    stage = on_stage or (lambda *_: None)
    name = lease.name
    manifest = read_manifest(build_dir)
    if gatekeeper:
        refused = _gate(home.db(), name, version, manifest, gatekeeper, stage, on_verdict)
        if refused is not None:
            return refused
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
    policy = policy or Policy.default()
    return _bring_up(home, lease, version, stable_port, stage, "stopped", policy=policy)


def _gate(
    db: Any,
    name: str,
    version: int,
    manifest: dict[str, Any],
    gatekeeper: Gatekeeper,
    stage: StageListener,
    on_verdict: VerdictListener | None = None,
) -> Deployment | None:
    """The new version's recorded metrics against the gates and the version serving: None to
    go on, else the version recorded `refused` with both sides' figures, never started."""
    from nbops.deploy import promotion

    verdict = promotion.judge(gatekeeper, manifest, records.current(db, name))
    stage("metrics", verdict.reason())
    if on_verdict is not None:
        on_verdict(verdict)
    if not verdict.refused:
        return None
    records.update(
        db,
        name,
        version,
        status="refused",
        reason=verdict.reason(),
        build_id=manifest["build_id"],
        run_id=manifest.get("run_id"),
        figures=json.dumps(verdict.as_dict()),
    )
    return _get(db, name, version)


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
    with records.deploy_lock(db, name, "rollback") as lease:
        target = _rollback_target(db, name, to)
        endpoint = records.endpoint(db, name)
        stable_port = endpoint.port if endpoint else _stable_port(db, name, None)
        if target.status == "standby":  # kept running by a watch: started afresh below
            processes.stop(target.pid, target.pid_started)
        records.update(
            db, name, target.version, status="starting", reason=None, log_tail=None, pid=None
        )
        return _bring_up(home, lease, target.version, stable_port, stage, "rolled-back")


def _bring_up(
    home: Home,
    lease: records.Lease,
    version: int,
    stable_port: int,
    stage: StageListener,
    replaced_status: str,
    policy: Policy | None = None,
) -> Deployment:
    """Start the version, check it, promote it, then stop what it replaced, or, when `policy`
    watches it, keep that running as the standby the watch can switch back to."""
    db = home.db()
    name = lease.name
    stage = _pausing(stage)
    row = records.get(db, name, version)
    assert row is not None
    snapshot = Path(row.build_dir)
    port = processes.free_port()
    process = processes.start_service(snapshot, port, snapshot / "service.log", row.workers)
    started = start_time(process.pid)
    records.update(db, name, version, pid=process.pid, pid_started=started, port=port)
    stage("starting", f"started v{version} on port {port} (pid {process.pid}){_of(row)}")
    url = f"http://127.0.0.1:{port}"
    try:
        stage("ready", _readiness(row))
        processes.wait_ready(
            process, url, workers=row.workers, version_dir=snapshot, what=f"{name} v{version}"
        )
        _smoke(snapshot, url, stage)
        _ensure_supervisor(home, name, stable_port)
        stage("promoting", f"switching {name} to v{version}")
        _check_answering(process.pid, started, url, "before its promotion")
        _check_lease(db, lease)
    except NotHealthy as failure:
        return _failed(db, name, version, failure.reason, stage)
    previous = records.current(db, name)
    watch = policy if policy is not None and policy.watch_s > 0 else None
    keep = previous if watch is not None and _can_stand_by(previous, version) else None
    records.promote(
        db,
        name,
        version,
        watch=WATCHING if watch is not None else None,
        watch_until=time.time() + watch.watch_s if watch is not None else None,
        policy=watch.to_json() if watch is not None else None,
        canary=watch.canary if watch is not None and keep is not None else None,
        standby=keep.version if keep is not None else None,
    )
    _hold("promoted")
    try:
        _wait_for_switch(stable_port, version)
        _check_answering(process.pid, started, url, "once the proxy had switched to it")
    except NotHealthy as failure:
        return _switch_back(db, name, version, previous, failure.reason, stage)
    if previous is not None and previous.version != version and keep is None:
        _retire(db, name, previous.version, replaced_status)
    for other in records.standby(db, name):
        if keep is None or other.version != keep.version:
            _retire(db, name, other.version, "stopped")
    stage("healthy", f"{name} v{version} serves http://127.0.0.1:{stable_port}")
    if watch is not None:
        stage("watching", _watch_plan(version, keep, watch))
    return _get(db, name, version)


def check_workers(workers: int) -> None:
    """A DeployError for a count of workers no version can run with."""
    if workers < 1:
        raise DeployError(
            f"a version needs at least one worker process, not {workers}.",
            fix="Give --workers 1 or more.",
        )


def _of(row: Deployment) -> str:
    return f" with {row.workers} workers" if row.workers > 1 else ""


def _readiness(row: Deployment) -> str:
    """What the deploy waits for before it promotes: one probe tells of one worker only."""
    if row.workers > 1:
        return f"waiting for /readyz and for all {row.workers} workers to load their artifacts"
    return "waiting for /readyz"


def _can_stand_by(previous: Deployment | None, version: int) -> bool:
    """The serving version can be the way back from `version`: it is another, and it runs."""
    return (
        previous is not None
        and previous.version != version
        and previous.status == "healthy"
        and same_process(previous.pid, previous.pid_started)
    )


def _watch_plan(version: int, keep: Deployment | None, policy: Policy) -> str:
    period = format_duration(policy.watch_s)
    if keep is None:
        return (
            f"watching v{version} for {period}: {policy.describe()} marks it degraded "
            "(there is no earlier version to go back to)"
        )
    share = f"{policy.canary}% of requests go to v{version}, the rest to " if policy.canary else ""
    return (
        f"watching v{version} for {period}: {share}v{keep.version} stays up as the way back; "
        f"{policy.describe()} rolls back to it by itself (`nbops status` shows the watch)"
    )


def _check_lease(db: Any, lease: records.Lease) -> None:
    """Still this operation's lease: one that stalled past its expiry promotes nothing."""
    if not records.renew(db, lease):
        raise NotHealthy(
            f"the {lease.operation} lost its lease on {lease.name!r} (it stalled past "
            f"{records.LEASE_S:g} s without renewing it, and another operation took over)"
        )


def _check_answering(pid: int, started: int | None, url: str, when: str) -> None:
    """The version's own process still runs and its /readyz answers 200, right now."""
    if not same_process(pid, started):
        raise NotHealthy(f"the service process (pid {pid}) died {when}")
    code, body = processes.get(f"{url}/readyz")
    if code != 200:
        raise NotHealthy(f"/readyz answered {code} {when}: {body[:300]}")


def _failed(db: Any, name: str, version: int, reason: str, stage: StageListener) -> Deployment:
    row = _get(db, name, version)
    processes.stop(row.pid, row.pid_started)
    records.update(
        db,
        name,
        version,
        status="failed",
        reason=reason,
        log_tail=processes.log_tail(Path(row.build_dir) / "service.log"),
        pid=None,
    )
    stage("failed", reason)
    return _get(db, name, version)


def _switch_back(
    db: Any,
    name: str,
    version: int,
    previous: Deployment | None,
    reason: str,
    stage: StageListener,
) -> Deployment:
    """A version that failed after its promotion: the one before serves again (when it still
    runs), then the failed one is stopped, so exactly one version serves."""
    back = previous is not None and previous.version != version
    if back and previous is not None:
        records.promote(db, name, previous.version)
        reason += f"; v{previous.version} serves again"
    else:
        records.update(db, name, version, current=0)
    return _failed(db, name, version, reason, stage)


def _retire(db: Any, name: str, version: int, status: str) -> None:
    """The replaced version: recorded as replaced first (its supervisor lets go of it), then
    its process, as recorded now (the supervisor may have restarted it), is stopped."""
    records.update(db, name, version, status=status)
    row = _get(db, name, version)
    processes.stop(row.pid, row.pid_started)
    records.update(db, name, version, pid=None)


def _pausing(stage: StageListener) -> StageListener:
    """The stage listener, then held at the stage `NBOPS_TEST_PAUSE_AT` names (tests only)."""

    def listener(step: str, message: str) -> None:
        stage(step, message)
        _hold(step)

    return listener


def _hold(step: str) -> None:
    """Sleep at `step` when `NBOPS_TEST_PAUSE_AT` names it (the fault-injection tests); the
    point after promotion, before the switch is confirmed, is called `promoted`."""
    wanted, _, seconds = os.environ.get(PAUSE_AT_ENV, "").partition(":")
    if step == wanted:
        time.sleep(float(seconds or 1.0))


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
    serving = known is not None and (known.supervisor_alive or known.proxy_alive)
    if known is not None and serving and requested is not None and known.port != requested:
        raise DeployError(
            f"{name!r} already serves on port {known.port}.",
            fix=f"Deploy without --port, or `nbops stop {name}` first.",
        )
    port = requested or (known.port if known else None)
    if port is None:
        port = DEFAULT_PORT if not processes.port_in_use(DEFAULT_PORT) else processes.free_port()
    ours = known is not None and known.port == port and serving
    if not ours and processes.port_in_use(port):
        raise DeployError(
            f"port {port} is taken by another program.", fix="Choose another with --port."
        )
    return port


def _ensure_supervisor(home: Home, name: str, port: int) -> None:
    """The name's supervisor runs, and the proxy it keeps answers on the stable port."""
    db = home.db()
    known = records.endpoint(db, name)
    if known is None or not known.supervisor_alive:
        # A proxy still running (its supervisor was killed) is adopted, not restarted.
        adopted = known is not None and known.port == port and known.proxy_alive
        if known is not None and not adopted:
            processes.stop(known.proxy_pid, known.proxy_started)
            records.set_endpoint(db, name, port, proxy_pid=None, proxy_started=None)
        records.set_endpoint(db, name, port, proxy_state=None)
        log = home.root / "deployments" / name / "supervisor.log"
        supervisor = processes.start_supervisor(name, port, db.path, log)
        records.set_endpoint(
            db,
            name,
            port,
            supervisor_pid=supervisor.pid,
            supervisor_started=start_time(supervisor.pid),
        )
    deadline = time.monotonic() + SUPERVISOR_TIMEOUT_S
    while time.monotonic() < deadline:
        known = records.endpoint(db, name)
        if known is not None and known.proxy_state:
            raise NotHealthy(f"the proxy on port {port} does not run: {known.proxy_state}")
        if known is not None and known.proxy_alive and health.upstream(port) is not None:
            return
        time.sleep(0.05)
    raise NotHealthy(f"the proxy did not listen on port {port} within {SUPERVISOR_TIMEOUT_S:g} s")


def _wait_for_switch(port: int, version: int) -> None:
    """Until the proxy forwards to `version`: only then may the old one stop. A proxy killed
    meanwhile is started again by the supervisor, and reads the db afresh."""
    deadline = time.monotonic() + SWITCH_TIMEOUT_S
    while time.monotonic() < deadline:
        upstream = health.upstream(port)
        if upstream is not None and upstream.get("version") == version:
            return
        time.sleep(0.02)
    raise NotHealthy(f"the proxy on port {port} did not switch to v{version} within 10 s")


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
    """Stop `name`: its supervisor first (so nothing is started again), then every process of
    the name still running as recorded, the proxy last."""
    home = home or Home.default()
    db = home.db()
    with records.deploy_lock(db, name, "stop"):
        current = records.current(db, name)
        known = records.endpoint(db, name)
        if current is None and known is None:
            raise RollbackError(f"nothing named {name!r} is deployed.", fix="`nbops status`.")
        if known is not None:
            processes.stop(known.supervisor_pid, known.supervisor_started)
        for row in records.history(db, name):
            if row.pid is not None:
                processes.stop(row.pid, row.pid_started)
                records.update(db, name, row.version, pid=None)
            if row.status == "standby":
                records.update(db, name, row.version, status="stopped")
        if current is not None:
            records.update(db, name, current.version, status="stopped")
        if known is not None:
            processes.stop(known.proxy_pid, known.proxy_started)
            records.set_endpoint(
                db,
                name,
                known.port,
                proxy_pid=None,
                proxy_started=None,
                supervisor_pid=None,
                supervisor_started=None,
                proxy_state=None,
            )
        return records.get(db, name, current.version) if current else None
