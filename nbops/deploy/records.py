"""Deployments as the state db records them: one row per (name, version), one current per name."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from typing import Any

from nbops.deploy import processes
from nbops.errors import NbopsError
from nbops.run.pids import same_process, start_time
from nbops.run.state import StateDb

# `standby`: the version a watched one replaced, kept running until the watch ends, so that a
# rollback is instant (and, with a canary, serving the rest of the requests).
# `refused`: its metrics failed the deploy's --require/--must-beat; it was never started.
STATUSES = (
    "building",
    "starting",
    "healthy",
    "standby",
    "failed",
    "refused",
    "stopped",
    "rolled-back",
)
# What a version is while an operation brings it up; found with no lease held, it was abandoned.
UNFINISHED = ("building", "starting")
LEASE_S = 10.0
RENEW_S = 1.0


class DeployBusy(NbopsError):
    """Another deploy, rollback or stop of the same name is running."""


@dataclass
class Deployment:
    name: str
    version: int
    status: str
    build_dir: str
    build_id: str
    notebook_sha256: str
    run_id: str | None
    port: int | None
    pid: int | None
    url: str | None
    reason: str | None
    log_tail: str | None
    started_by: str
    created_at: float
    updated_at: float
    healthy_at: float | None = None
    current: int = 0
    # With pid, names the service process for good: a reused pid is never taken for it.
    pid_started: int | None = None
    # The watch after promotion (nbops.deploy.watch): watching | stable | degraded, or None.
    watch: str | None = None
    watch_until: float | None = None
    policy: str | None = None  # Policy as JSON
    canary: int | None = None  # percent of requests, while watching
    figures: str | None = None  # JSON: what the watch last judged (and, once rolled back, why)
    workers: int = 1  # uvicorn worker processes behind its port, all ready before promotion

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["current"] = bool(self.current)
        data["policy"] = json.loads(self.policy) if self.policy else None
        data["figures"] = json.loads(self.figures) if self.figures else None
        return data


_COLUMNS = [f.name for f in fields(Deployment)]


def insert(db: StateDb, deployment: Deployment) -> None:
    with db.transaction() as conn:
        placeholders = ", ".join("?" for _ in _COLUMNS)
        conn.execute(
            f"INSERT INTO deployments ({', '.join(_COLUMNS)}) VALUES ({placeholders})",
            [getattr(deployment, c) for c in _COLUMNS],
        )


def update(db: StateDb, name: str, version: int, **changes: Any) -> None:
    changes["updated_at"] = time.time()
    assignments = ", ".join(f"{column} = ?" for column in changes)
    with db.transaction() as conn:
        conn.execute(
            f"UPDATE deployments SET {assignments} WHERE name = ? AND version = ?",
            [*changes.values(), name, version],
        )


def replace_process(db: StateDb, seen: Deployment, **changes: Any) -> bool:
    """Change the current version's row only if it is still as `seen` (current, healthy, the
    same process): a supervisor's restart loses to a promotion or a stop made meanwhile."""
    changes["updated_at"] = time.time()
    assignments = ", ".join(f"{column} = ?" for column in changes)
    with db.transaction() as conn:
        cursor = conn.execute(
            f"UPDATE deployments SET {assignments} WHERE name = ? AND version = ? AND current = 1 "
            "AND status = 'healthy' AND pid IS ? AND pid_started IS ?",
            [*changes.values(), seen.name, seen.version, seen.pid, seen.pid_started],
        )
    return cursor.rowcount == 1


def promote(
    db: StateDb,
    name: str,
    version: int,
    *,
    watch: str | None = None,
    watch_until: float | None = None,
    policy: str | None = None,
    canary: int | None = None,
    standby: int | None = None,
) -> None:
    """Make `version` the one the proxy serves, in one transaction: watched under `policy`
    until `watch_until` when given, with `standby` (the version it replaces) kept serving as
    the way back."""
    now = time.time()
    with db.transaction() as conn:
        conn.execute("UPDATE deployments SET current = 0 WHERE name = ?", (name,))
        if standby is not None and standby != version:
            conn.execute(
                "UPDATE deployments SET status = 'standby', updated_at = ? "
                "WHERE name = ? AND version = ?",
                (now, name, standby),
            )
        conn.execute(
            "UPDATE deployments SET current = 1, status = 'healthy', healthy_at = ?, "
            "updated_at = ?, watch = ?, watch_until = ?, policy = ?, canary = ?, figures = NULL, "
            "reason = NULL WHERE name = ? AND version = ?",
            (now, now, watch, watch_until, policy, canary, name, version),
        )


def standby(db: StateDb, name: str) -> list[Deployment]:
    """Versions kept running as the way back from a watched one."""
    return _select(db, "WHERE name = ? AND status = 'standby' ORDER BY version DESC", (name,))


def get(db: StateDb, name: str, version: int) -> Deployment | None:
    rows = _select(db, "WHERE name = ? AND version = ?", (name, version))
    return rows[0] if rows else None


def current(db: StateDb, name: str) -> Deployment | None:
    rows = _select(db, "WHERE name = ? AND current = 1", (name,))
    return rows[0] if rows else None


def history(db: StateDb, name: str) -> list[Deployment]:
    return _select(db, "WHERE name = ? ORDER BY version", (name,))


def latest_per_name(db: StateDb) -> list[Deployment]:
    """For each name: its current version, or else its newest."""
    rows = _select(db, "ORDER BY name, current DESC, version DESC", ())
    seen: set[str] = set()
    return [r for r in rows if not (r.name in seen or seen.add(r.name))]  # type: ignore[func-returns-value]


def next_version(db: StateDb, name: str) -> int:
    with db.transaction() as conn:
        row = conn.execute(
            "SELECT COALESCE(MAX(version), 0) FROM deployments WHERE name = ?", (name,)
        ).fetchone()
    return int(row[0]) + 1


def _select(db: StateDb, where: str, args: tuple[Any, ...]) -> list[Deployment]:
    with db.reading() as conn:
        rows = conn.execute(f"SELECT * FROM deployments {where}", args).fetchall()
    return [Deployment(**{c: row[c] for c in _COLUMNS}) for row in rows]


# the stable port of each name, its proxy and the supervisor that keeps both running


@dataclass(frozen=True)
class Endpoint:
    name: str
    port: int
    proxy_pid: int | None
    proxy_started: int | None
    supervisor_pid: int | None
    supervisor_started: int | None
    # What the supervisor last said of the proxy: None while all is well, else why not.
    proxy_state: str | None

    @property
    def proxy_alive(self) -> bool:
        return same_process(self.proxy_pid, self.proxy_started)

    @property
    def supervisor_alive(self) -> bool:
        return same_process(self.supervisor_pid, self.supervisor_started)


_ENDPOINT_COLUMNS = [f.name for f in fields(Endpoint)]


def endpoint(db: StateDb, name: str) -> Endpoint | None:
    with db.reading() as conn:
        row = conn.execute("SELECT * FROM endpoints WHERE name = ?", (name,)).fetchone()
    return Endpoint(**{c: row[c] for c in _ENDPOINT_COLUMNS}) if row else None


def set_endpoint(db: StateDb, name: str, port: int, **changes: Any) -> None:
    """The name's stable port, and whichever of its other columns are given."""
    with db.transaction() as conn:
        conn.execute(
            "INSERT INTO endpoints (name, port, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET port = excluded.port, "
            "updated_at = excluded.updated_at",
            (name, port, time.time()),
        )
        for column, value in changes.items():
            assert column in _ENDPOINT_COLUMNS, column
            conn.execute(f"UPDATE endpoints SET {column} = ? WHERE name = ?", (value, name))


# one deploy, rollback or stop per name at a time: a lease, renewed while the operation runs


@dataclass(frozen=True)
class Lease:
    """Held by one operation (its own token, not its process: two requests of one Jupyter
    server are two owners) until released, or until it expires unrenewed."""

    name: str
    owner: str
    pid: int
    pid_started: int | None
    operation: str


def acquire(db: StateDb, name: str, operation: str) -> Lease:
    """The name's lease; DeployBusy while another operation holds it. One whose owner died, or
    that expired unrenewed, is taken over, and what that operation left unfinished is ended."""
    pid = os.getpid()
    lease = Lease(name, uuid.uuid4().hex, pid, start_time(pid), operation)
    with db.transaction() as conn:
        row = conn.execute("SELECT * FROM leases WHERE name = ?", (name,)).fetchone()
        if row is not None and _held(row):
            raise DeployBusy(
                f"another {row['operation']} of {name!r} is in progress (pid {row['pid']}).",
                fix="Wait for it to finish (`nbops status` shows it), then try again.",
            )
        conn.execute(
            "INSERT OR REPLACE INTO leases VALUES (?, ?, ?, ?, ?, ?)",
            (name, lease.owner, pid, lease.pid_started, operation, time.time() + LEASE_S),
        )
    settle_unfinished(db, name, "interrupted: the operation bringing it up ended before it did")
    return lease


def _held(row: Any) -> bool:
    if row["expires_at"] < time.time():
        return False
    # A lease of a process on this machine that is gone is over at once, not at its expiry.
    return row["pid_started"] is None or same_process(row["pid"], row["pid_started"])


def renew(db: StateDb, lease: Lease) -> bool:
    """Push the expiry on; False when the lease is no longer this operation's."""
    with db.transaction() as conn:
        cursor = conn.execute(
            "UPDATE leases SET expires_at = ? WHERE name = ? AND owner = ?",
            (time.time() + LEASE_S, lease.name, lease.owner),
        )
    return cursor.rowcount == 1


def release(db: StateDb, lease: Lease) -> None:
    with db.transaction() as conn:
        conn.execute("DELETE FROM leases WHERE name = ? AND owner = ?", (lease.name, lease.owner))


def lease_free(db: StateDb, name: str) -> bool:
    with db.reading() as conn:
        row = conn.execute("SELECT * FROM leases WHERE name = ?", (name,)).fetchone()
    return row is None or not _held(row)


def settle_unfinished(db: StateDb, name: str, reason: str) -> list[int]:
    """Versions left `building`/`starting` by an operation that ended: their process stopped
    (only if it is still the one recorded), the row `failed`. Call it holding the lease."""
    settled = []
    for row in history(db, name):
        if row.status in UNFINISHED:
            processes.stop(row.pid, row.pid_started)
            update(db, name, row.version, status="failed", reason=reason, pid=None)
            settled.append(row.version)
    return settled


class _Renewer(threading.Thread):
    def __init__(self, db: StateDb, lease: Lease) -> None:
        super().__init__(daemon=True, name=f"lease {lease.name}")
        self.db, self.lease = db, lease
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(RENEW_S):
            try:
                renew(self.db, self.lease)
            except NbopsError:
                continue  # a locked db for a moment; the lease outlives a few missed renewals


@contextmanager
def deploy_lock(db: StateDb, name: str, operation: str = "deploy") -> Iterator[Lease]:
    """Hold the name's lease for one operation. Interrupted (Ctrl-C, an error), it ends on the
    spot what it left half-started; killed outright, the next operation does (`acquire`)."""
    lease = acquire(db, name, operation)
    renewer = _Renewer(db, lease)
    renewer.start()
    try:
        # Before a deploy, rollback or stop changes anything, and once it is done: what to
        # restore if the db is lost (the second copy knows the version now serving).
        db.backup(f"{name}-before")
        yield lease
    except (KeyboardInterrupt, Exception):
        # SystemExit is left to whoever ends the process (a server job records its reason).
        settle_unfinished(db, name, f"interrupted: the {operation} was stopped before it ended")
        raise
    finally:
        renewer.done.set()
        release(db, lease)
        db.backup(f"{name}-after")
