"""Deployments as the state db records them: one row per (name, version), one current per name."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from typing import Any

from nbops.errors import NbopsError
from nbops.run.pids import pid_alive
from nbops.run.state import StateDb

STATUSES = ("building", "starting", "healthy", "failed", "stopped", "rolled-back")


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

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["current"] = bool(self.current)
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


def promote(db: StateDb, name: str, version: int) -> None:
    """Make `version` the one the proxy serves, in one transaction."""
    now = time.time()
    with db.transaction() as conn:
        conn.execute("UPDATE deployments SET current = 0 WHERE name = ?", (name,))
        conn.execute(
            "UPDATE deployments SET current = 1, status = 'healthy', healthy_at = ?, "
            "updated_at = ? WHERE name = ? AND version = ?",
            (now, now, name, version),
        )


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


# the stable port of each name, and its proxy


def endpoint(db: StateDb, name: str) -> tuple[int, int | None] | None:
    with db.reading() as conn:
        row = conn.execute(
            "SELECT port, proxy_pid FROM endpoints WHERE name = ?", (name,)
        ).fetchone()
    return (int(row["port"]), row["proxy_pid"]) if row else None


def set_endpoint(db: StateDb, name: str, port: int, proxy_pid: int | None) -> None:
    with db.transaction() as conn:
        conn.execute(
            "INSERT OR REPLACE INTO endpoints VALUES (?, ?, ?, ?)",
            (name, port, proxy_pid, time.time()),
        )


# one deploy, rollback or stop per name at a time


@contextmanager
def deploy_lock(db: StateDb, name: str) -> Iterator[None]:
    """Refuse a second operation on the same name while the first one's process lives."""
    with db.transaction() as conn:
        row = conn.execute("SELECT pid FROM deploy_locks WHERE name = ?", (name,)).fetchone()
        if row and row["pid"] != os.getpid() and pid_alive(row["pid"]):
            raise DeployBusy(
                f"another deploy of {name!r} is in progress (pid {row['pid']}).",
                fix="Wait for it to finish (`nbops status` shows it), then try again.",
            )
        conn.execute(
            "INSERT OR REPLACE INTO deploy_locks VALUES (?, ?, ?)", (name, os.getpid(), time.time())
        )
    # Before a deploy, rollback or stop changes anything, and once it is done: what to restore
    # if the db is lost (the second copy knows the version now serving).
    db.backup(f"{name}-before")
    try:
        yield
    finally:
        with db.transaction() as conn:
            conn.execute("DELETE FROM deploy_locks WHERE name = ? AND pid = ?", (name, os.getpid()))
        db.backup(f"{name}-after")
