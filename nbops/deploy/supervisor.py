"""The supervisor of one deployment: keeps its proxy and its current version running.

Run as `python -m nbops.deploy.supervisor NAME --port PORT --db STATE_DB`, one per name, started
by the operation that first needs the stable port and stopped by `nbops stop`. It watches the
processes the state db records by (pid, start time), so it adopts what a deploy started and
never mistakes a reused pid for them. A dead one is started again after a growing pause; one
that dies `MAX_RESTARTS` times within `WINDOW_S` is left down and recorded as a crash loop,
which `nbops status` shows. A version is restarted only while it is still the current one:
the new process is recorded compare-and-set, so a promotion meanwhile wins and the restarted
copy is stopped again.

It also keeps the watch of a promoted version (nbops.deploy.watch): every WATCH_TICK_S it reads
what the proxy saw of each version and the version's own /monitoring, and judges them against
the version's policy. A breach while `watching` switches back to the standby version and stops
the bad one, recorded `rolled-back` with the reason and the figures; once the bake period is
over the version is `stable` and the standby is stopped; a later breach marks it `degraded`.
The watch lives here, not in `nbops deploy`, so it goes on when that command is gone.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbops.deploy import processes, records
from nbops.deploy.health import proxy_stats
from nbops.deploy.processes import NotHealthy
from nbops.deploy.watch import (
    DEGRADED,
    STABLE,
    WATCHING,
    Breach,
    Figures,
    Policy,
    drift_of,
    judge,
)
from nbops.errors import NbopsError
from nbops.run.pids import same_process, start_time
from nbops.run.state import StateDb

BACKOFF_S = (0.1, 0.5, 1.0, 2.0, 4.0)
MAX_RESTARTS = len(BACKOFF_S)
WINDOW_S = 60.0
TICK_S = 0.2
WATCH_TICK_S = 0.5
RECORD_S = 5.0  # how often the serving version's figures are written down
SWITCH_S = 10.0


@dataclass
class Restarts:
    """When one process was last started again; how long to wait before the next time."""

    times: list[float] = field(default_factory=list)

    def next_delay(self, now: float) -> float | None:
        """The pause before the next start, or None: a crash loop, give up."""
        self.times = [t for t in self.times if now - t < WINDOW_S]
        if len(self.times) >= MAX_RESTARTS:
            return None
        return BACKOFF_S[len(self.times)]

    def record(self, now: float) -> None:
        self.times.append(now)

    def crash_loop(self, what: str) -> str:
        return f"crash loop: {what} exited {MAX_RESTARTS} times within {WINDOW_S:g} s"


class Supervisor:
    def __init__(self, db: Path, name: str, port: int) -> None:
        self.db_path = db
        self.db = StateDb(db)
        self.name = name
        self.port = port
        self.halt = threading.Event()
        self.proxy_restarts = Restarts()
        self.version_restarts: dict[int, Restarts] = {}
        # Processes started here and not yet recorded: stopped with the supervisor.
        self.pending: set[subprocess.Popen[bytes]] = set()
        self.children: list[subprocess.Popen[bytes]] = []
        self.recorded_at = 0.0

    def run(self) -> None:
        signal.signal(signal.SIGTERM, lambda *_: self.halt.set())
        signal.signal(signal.SIGINT, lambda *_: self.halt.set())
        pid = os.getpid()
        records.set_endpoint(
            self.db, self.name, self.port, supervisor_pid=pid, supervisor_started=start_time(pid)
        )
        watchers = [
            threading.Thread(target=self._loop, args=(self.keep_proxy,), daemon=True),
            threading.Thread(target=self._loop, args=(self.keep_version,), daemon=True),
            threading.Thread(target=self._loop, args=(self.keep_watch, WATCH_TICK_S), daemon=True),
        ]
        for watcher in watchers:
            watcher.start()
        while not self.halt.wait(TICK_S):
            self.children = [child for child in self.children if child.poll() is None]
        for child in list(self.pending):
            processes.stop(child.pid, start_time(child.pid), timeout=3.0)

    def _loop(self, keep: Callable[[StateDb], None], tick: float = TICK_S) -> None:
        while not self.halt.wait(tick):
            try:
                db = self._whole_db()
                if db is not None:
                    keep(db)
            except (NbopsError, OSError) as error:
                print(f"supervisor of {self.name}: {error}", flush=True)

    def _whole_db(self) -> StateDb | None:
        """The state db while it is whole. A missing, truncated or damaged one is left alone
        for `nbops db restore` (opening an empty file for writing would make it a new, empty
        db that forgets every deployment); what runs keeps running meanwhile."""
        if not self.db_path.is_file() or self.db_path.stat().st_size == 0:
            return None
        try:
            return StateDb(self.db_path)
        except NbopsError:
            return None

    def _pause(self, seconds: float) -> bool:
        """Sleep, unless the supervisor is told to stop; True to go on."""
        return not self.halt.wait(seconds)

    # the proxy on the stable port

    def keep_proxy(self, db: StateDb) -> None:
        endpoint = records.endpoint(db, self.name)
        if endpoint is None or endpoint.proxy_alive or endpoint.proxy_state:
            return
        delay = self.proxy_restarts.next_delay(time.time())
        if delay is None:
            state = self.proxy_restarts.crash_loop("the proxy") + "; see proxy.log"
            records.set_endpoint(db, self.name, self.port, proxy_state=state, proxy_pid=None)
            return
        if not self._pause(delay):
            return
        self.proxy_restarts.record(time.time())
        log = self.db_path.parent / "deployments" / self.name / "proxy.log"
        proxy = processes.start_proxy(self.name, self.port, self.db_path, log)
        self.children.append(proxy)
        records.set_endpoint(
            db,
            self.name,
            self.port,
            proxy_pid=proxy.pid,
            proxy_started=start_time(proxy.pid),
        )
        print(f"supervisor of {self.name}: started the proxy (pid {proxy.pid})", flush=True)

    # the version the proxy forwards to

    def keep_version(self, db: StateDb) -> None:
        row = records.current(db, self.name)
        if row is None or row.status != "healthy" or row.pid is None:
            return
        if same_process(row.pid, row.pid_started):
            return
        restarts = self.version_restarts.setdefault(row.version, Restarts())
        delay = restarts.next_delay(time.time())
        if delay is None:
            reason = restarts.crash_loop(f"v{row.version}") + "; see `nbops logs`"
            records.replace_process(db, row, status="failed", reason=reason)
            return
        if not self._pause(delay):
            return
        restarts.record(time.time())
        self._restart(db, row)

    # the watch of the version promoted last

    def keep_watch(self, db: StateDb) -> None:
        row = records.current(db, self.name)
        endpoint = records.endpoint(db, self.name)
        if row is None or row.status != "healthy" or row.watch is None or endpoint is None:
            return
        stats = proxy_stats(endpoint.port)
        if stats is None:
            return
        policy = Policy.from_json(row.policy)
        standby = next(iter(records.standby(db, self.name)), None)
        new = _figures(stats, row)
        canary_baseline = _figures(stats, standby) if standby and row.canary else None
        baseline = canary_baseline or (_recorded(standby) if standby else None)
        breach = judge(policy, new, baseline)
        if row.watch == WATCHING and breach is not None and standby is not None:
            # Not recorded below: the figures of a rolled-back version keep why it was.
            self._roll_back(db, row, standby, breach, new, baseline)
            return
        if breach is not None:
            if row.watch != DEGRADED or row.reason != breach.reason:
                reason = breach.reason + (
                    "; no earlier version to go back to" if row.watch == WATCHING else ""
                )
                records.update(db, self.name, row.version, watch=DEGRADED, reason=reason)
                print(f"supervisor of {self.name}: v{row.version} degraded: {reason}", flush=True)
        elif row.watch == WATCHING and row.watch_until is not None:
            if time.time() >= row.watch_until:
                self._settle(db, row, standby)
        elif row.watch == DEGRADED:
            records.update(db, self.name, row.version, watch=STABLE, reason=None)
        self._record(db, row, new)

    def _record(self, db: StateDb, row: records.Deployment, figures: Figures) -> None:
        """The serving version's figures, now and then: the next version's p99 is judged
        against them."""
        if figures.requests and time.time() - self.recorded_at >= RECORD_S:
            self.recorded_at = time.time()
            data = json.dumps({**figures.as_dict(), "at": self.recorded_at})
            records.update(db, self.name, row.version, figures=data)

    def _settle(
        self, db: StateDb, row: records.Deployment, standby: records.Deployment | None
    ) -> None:
        """The bake period is over without a breach: all traffic to it, then stable and the
        standby stopped (a canary's share went to the standby until the proxy switched)."""
        try:
            lease = records.acquire(db, self.name, "watch")
        except records.DeployBusy:
            return  # a deploy or rollback is under way; it decides
        try:
            if row.canary is not None:
                records.update(db, self.name, row.version, canary=None)
                self._wait_for_switch(row.version)
            records.update(db, self.name, row.version, watch=STABLE)
            if standby is not None:
                records.update(db, self.name, standby.version, status="stopped")
                processes.stop(standby.pid, standby.pid_started)
                records.update(db, self.name, standby.version, pid=None)
            print(f"supervisor of {self.name}: v{row.version} is stable", flush=True)
        finally:
            records.release(db, lease)

    def _roll_back(
        self,
        db: StateDb,
        row: records.Deployment,
        standby: records.Deployment,
        breach: Breach,
        new: Figures,
        baseline: Figures | None,
    ) -> None:
        """Traffic back to the standby (started again if it died), then the bad version
        stopped and recorded `rolled-back` with why and both versions' figures."""
        try:
            lease = records.acquire(db, self.name, "rollback")
        except records.DeployBusy:
            return
        try:
            if not same_process(standby.pid, standby.pid_started) and not self._revive(db, standby):
                reason = f"{breach.reason}; v{standby.version} could not be started again"
                records.update(db, self.name, row.version, watch=DEGRADED, reason=reason)
                return
            # It served before this watch began: stable, and judged as such from now on.
            records.promote(db, self.name, standby.version, watch=STABLE)
            reason = f"rolled back by its watch: {breach.reason}; v{standby.version} serves again"
            figures = {
                **new.as_dict(),
                "at": time.time(),
                "breach": breach.what,
                "baseline": baseline.as_dict() if baseline else None,
            }
            records.update(
                db,
                self.name,
                row.version,
                status="rolled-back",
                reason=reason,
                figures=json.dumps(figures),
                canary=None,
            )
            self._wait_for_switch(standby.version)
            processes.stop(row.pid, row.pid_started)
            records.update(db, self.name, row.version, pid=None)
            print(f"supervisor of {self.name}: v{row.version} {reason}", flush=True)
        finally:
            records.release(db, lease)

    def _revive(self, db: StateDb, standby: records.Deployment) -> bool:
        snapshot = Path(standby.build_dir)
        port = processes.free_port()
        log, workers = snapshot / "service.log", standby.workers
        service = processes.start_service(snapshot, port, log, workers)
        self.children.append(service)
        try:
            processes.wait_ready(
                service,
                f"http://127.0.0.1:{port}",
                workers=workers,
                version_dir=snapshot,
                what=f"{self.name} v{standby.version}",
            )
        except NotHealthy:
            processes.stop(service.pid, start_time(service.pid))
            return False
        started = start_time(service.pid)
        records.update(
            db, self.name, standby.version, pid=service.pid, pid_started=started, port=port
        )
        return True

    def _wait_for_switch(self, version: int) -> None:
        """Until the proxy forwards every request to `version` (no canary split), so that none
        reaches a version about to be stopped."""
        deadline = time.monotonic() + SWITCH_S
        while time.monotonic() < deadline:
            code, body = processes.get(f"http://127.0.0.1:{self.port}/_nbops/upstream")
            upstream = json.loads(body) if code == 200 else {}
            if upstream.get("version") == version and upstream.get("canary") is None:
                return
            time.sleep(0.02)

    def _restart(self, db: StateDb, row: records.Deployment) -> None:
        snapshot = Path(row.build_dir)
        port = row.port if row.port and not processes.port_in_use(row.port) else None
        port = port or processes.free_port()
        service = processes.start_service(snapshot, port, snapshot / "service.log", row.workers)
        self.pending.add(service)
        self.children.append(service)
        started = start_time(service.pid)
        try:
            processes.wait_ready(
                service,
                f"http://127.0.0.1:{port}",
                workers=row.workers,
                version_dir=snapshot,
                what=f"{self.name} v{row.version}",
            )
        except NotHealthy as failure:
            print(f"supervisor of {self.name}: v{row.version} {failure.reason}", flush=True)
            processes.stop(service.pid, started)
            self.pending.discard(service)
            return
        kept = records.replace_process(db, row, pid=service.pid, pid_started=started, port=port)
        self.pending.discard(service)
        if not kept:  # promoted away, or stopped, meanwhile
            processes.stop(service.pid, started)
        else:
            print(f"supervisor of {self.name}: restarted v{row.version}", flush=True)


def _figures(stats: dict[str, Any], row: records.Deployment | None) -> Figures:
    """What the proxy saw of `row`'s version, with the drift its own /monitoring reports."""
    if row is None:
        return Figures()
    seen = stats.get("versions", {}).get(str(row.version), {})
    drift, field = (None, None)
    if row.port is not None:
        code, body = processes.get(f"http://127.0.0.1:{row.port}/monitoring")
        if code == 200:
            drift, field = drift_of(json.loads(body))
    return Figures(
        requests=int(seen.get("requests", 0)),
        errors=int(seen.get("errors", 0)),
        p99_ms=seen.get("p99_ms"),
        drift=drift,
        drift_field=field,
    )


def _recorded(row: records.Deployment | None) -> Figures | None:
    """The figures the watch last wrote down for a version, while it served."""
    if row is None or not row.figures:
        return None
    return Figures.from_dict(json.loads(row.figures))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m nbops.deploy.supervisor")
    parser.add_argument("name")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--db", required=True)
    args = parser.parse_args(argv)
    Supervisor(Path(args.db), args.name, args.port).run()


if __name__ == "__main__":
    main()
