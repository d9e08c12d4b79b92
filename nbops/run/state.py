"""The SQLite state db under `.nbops/`: runs, their steps and the step cache; versioned schema.

The CLI, the server extension and the sidebar all read this one file, so it runs in WAL mode
and every write is a short transaction.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbops.errors import AmbiguousRun
from nbops.run.database import Database

# Each entry migrates the schema from version N to N + 1; never edit a released one.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        notebook TEXT NOT NULL,
        notebook_sha256 TEXT NOT NULL,
        status TEXT NOT NULL,
        started_at REAL NOT NULL,
        ended_at REAL,
        parameters TEXT NOT NULL DEFAULT '{}',
        metrics TEXT NOT NULL DEFAULT '{}',
        error TEXT,
        pid INTEGER
    );
    CREATE INDEX runs_by_notebook ON runs (notebook, started_at);
    CREATE TABLE run_steps (
        run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        name TEXT NOT NULL,
        status TEXT NOT NULL,
        duration_s REAL NOT NULL DEFAULT 0,
        cache_key TEXT,
        outputs TEXT NOT NULL DEFAULT '{}',
        PRIMARY KEY (run_id, name)
    );
    CREATE TABLE step_cache (
        cache_key TEXT PRIMARY KEY,
        notebook TEXT NOT NULL,
        step TEXT NOT NULL,
        outputs TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    """,
    """
    CREATE TABLE deployments (
        name TEXT NOT NULL,
        version INTEGER NOT NULL,
        status TEXT NOT NULL,
        build_dir TEXT NOT NULL,
        build_id TEXT NOT NULL,
        notebook_sha256 TEXT NOT NULL,
        run_id TEXT,
        port INTEGER,
        pid INTEGER,
        url TEXT,
        reason TEXT,
        log_tail TEXT,
        started_by TEXT NOT NULL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        healthy_at REAL,
        current INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (name, version)
    );
    CREATE TABLE endpoints (
        name TEXT PRIMARY KEY,
        port INTEGER NOT NULL,
        proxy_pid INTEGER,
        updated_at REAL NOT NULL
    );
    CREATE TABLE deploy_locks (
        name TEXT PRIMARY KEY,
        pid INTEGER NOT NULL,
        acquired_at REAL NOT NULL
    );
    """,
    """
    CREATE TABLE observed_changes (
        notebook TEXT NOT NULL,
        step TEXT NOT NULL,
        name TEXT NOT NULL,
        seen_at REAL NOT NULL,
        PRIMARY KEY (notebook, step, name)
    );
    """,
    # Values of the metrics cells that are not numbers, with why: {name: "is a str, not a number"}
    """
    ALTER TABLE runs ADD COLUMN metric_problems TEXT NOT NULL DEFAULT '{}';
    """,
    # Processes named by pid and start time (a reused pid is never taken for them); each
    # name's supervisor and what it reports; operations hold expiring leases, not pids.
    """
    ALTER TABLE deployments ADD COLUMN pid_started INTEGER;
    ALTER TABLE endpoints ADD COLUMN proxy_started INTEGER;
    ALTER TABLE endpoints ADD COLUMN supervisor_pid INTEGER;
    ALTER TABLE endpoints ADD COLUMN supervisor_started INTEGER;
    ALTER TABLE endpoints ADD COLUMN proxy_state TEXT;
    CREATE TABLE leases (
        name TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        pid INTEGER NOT NULL,
        pid_started INTEGER,
        operation TEXT NOT NULL,
        expires_at REAL NOT NULL
    );
    """,
    # Each step's place on the run's timeline (steps run side by side), where it ran, and why
    # it ran again or how it ended when that is not a plain failure.
    """
    ALTER TABLE run_steps ADD COLUMN started_at REAL;
    ALTER TABLE run_steps ADD COLUMN ended_at REAL;
    ALTER TABLE run_steps ADD COLUMN worker TEXT NOT NULL DEFAULT '';
    ALTER TABLE run_steps ADD COLUMN note TEXT NOT NULL DEFAULT '';
    """,
    # A promoted version is watched: its policy, until when, its canary share, what the watch
    # says of it (watching | stable | degraded) and the figures it last judged.
    """
    ALTER TABLE deployments ADD COLUMN watch TEXT;
    ALTER TABLE deployments ADD COLUMN watch_until REAL;
    ALTER TABLE deployments ADD COLUMN policy TEXT;
    ALTER TABLE deployments ADD COLUMN canary INTEGER;
    ALTER TABLE deployments ADD COLUMN figures TEXT;
    """,
    # Data files' hashes by absolute path, reused while size and mtime are unchanged
    # (run/datafiles.py); and what else went into each step's cache key: the versions of the
    # distributions it imports and its data files' hashes, {"libraries": ..., "files": ...}.
    """
    CREATE TABLE file_hashes (
        path TEXT PRIMARY KEY,
        size INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        hashed_at REAL NOT NULL
    );
    ALTER TABLE run_steps ADD COLUMN provenance TEXT NOT NULL DEFAULT '{}';
    """,
    # The notebook's code cells as the run saw them (index, id, tags, source sha256), so that
    # `nbops runs diff` can name the cells that changed between two runs.
    """
    ALTER TABLE runs ADD COLUMN cells TEXT NOT NULL DEFAULT '[]';
    """,
    # How many uvicorn worker processes a deployed version runs behind its port
    # (`nbops deploy --workers N`); versions deployed before it ran one.
    """
    ALTER TABLE deployments ADD COLUMN workers INTEGER NOT NULL DEFAULT 1;
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


@dataclass(frozen=True)
class StoredArtifact:
    sha256: str
    format: str

    def as_dict(self) -> dict[str, str]:
        return {"sha256": self.sha256, "format": self.format}


@dataclass
class StepRecord:
    name: str
    # ran | cached | failed | timed-out | cancelled | not-run; `running` while it runs
    status: str
    duration_s: float = 0.0
    cache_key: str | None = None
    outputs: dict[str, StoredArtifact] = field(default_factory=dict)
    note: str = ""  # why a cached step ran again (a damaged object), for this run's output
    # Wall-clock times (time.time()) of the step's last start and end; None when it did not run.
    started_at: float | None = None
    ended_at: float | None = None
    worker: str = ""  # where it ran: `inline`, `pid 4242`, a Dask worker's address
    # What its cache key covered besides code, parameters and inputs: {"libraries": {dist:
    # version}, "files": {path: sha256}} (empty for a step whose key was not computed).
    provenance: dict[str, dict[str, str]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "name": self.name,
            "status": self.status,
            "duration_s": round(self.duration_s, 4),
            "outputs": {name: a.sha256 for name, a in self.outputs.items()},
        }
        if self.started_at is not None:
            found |= {"started_at": self.started_at, "ended_at": self.ended_at}
        if self.worker:
            found["worker"] = self.worker
        if any(self.provenance.values()):
            found |= self.provenance
        return {**found, "note": self.note} if self.note else found


@dataclass
class RunRecord:
    run_id: str
    notebook: str
    notebook_sha256: str
    status: str  # running | succeeded | failed | cancelled | interrupted
    started_at: float
    ended_at: float | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    # Names the metrics cells assign whose values are not numbers, with why (metric_values.py).
    metric_problems: dict[str, str] = field(default_factory=dict)
    steps: list[StepRecord] = field(default_factory=list)
    error: dict[str, Any] | None = None
    pid: int | None = None
    # The code cells the run saw: {"index", "id", "tags", "sha256"} each (`code_cells`).
    cells: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "notebook": self.notebook,
            "notebook_sha256": self.notebook_sha256,
            "status": self.status,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "steps": [step.as_dict() for step in self.steps],
            "parameters": self.parameters,
            "metrics": self.metrics,
            "metric_problems": self.metric_problems,
            "error": self.error,
        }


class StateDb(Database):
    """Runs, steps, the step cache, deployments and what runs saw; `with db.transaction()`
    groups writes, `with db.reading()` reads without waiting for a writer."""

    def __init__(self, path: str | Path, *, timeout: float | None = None) -> None:
        super().__init__(path, MIGRATIONS, timeout=timeout)

    # step cache

    def cached_outputs(self, cache_key: str) -> dict[str, StoredArtifact] | None:
        with self.reading() as conn:
            row = conn.execute(
                "SELECT outputs FROM step_cache WHERE cache_key = ?", (cache_key,)
            ).fetchone()
        return _artifacts(row["outputs"]) if row else None

    def remember_outputs(
        self, cache_key: str, notebook: str, step: str, outputs: dict[str, StoredArtifact]
    ) -> None:
        with self.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO step_cache VALUES (?, ?, ?, ?, ?)",
                (cache_key, notebook, step, _json_artifacts(outputs), time.time()),
            )

    # data files' hashes (run/datafiles.py's FileIndex)

    def known_file(self, path: str) -> tuple[int, int, str, float] | None:
        """(size, mtime_ns, sha256, hashed_at) of the file when it was last hashed, or None."""
        with self.reading() as conn:
            row = conn.execute(
                "SELECT size, mtime_ns, sha256, hashed_at FROM file_hashes WHERE path = ?",
                (path,),
            ).fetchone()
        return (row["size"], row["mtime_ns"], row["sha256"], row["hashed_at"]) if row else None

    def remember_file(self, path: str, size: int, mtime_ns: int, sha256: str) -> None:
        with self.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO file_hashes VALUES (?, ?, ?, ?, ?)",
                (path, size, mtime_ns, sha256, time.time()),
            )

    # values steps changed in place, seen at run time

    def observe_changes(self, notebook: str, step: str, names: Iterable[str]) -> None:
        """What the step changed of its inputs the last time it ran; replaces what was seen."""
        with self.transaction() as conn:
            conn.execute(
                "DELETE FROM observed_changes WHERE notebook = ? AND step = ?", (notebook, step)
            )
            conn.executemany(
                "INSERT INTO observed_changes VALUES (?, ?, ?, ?)",
                [(notebook, step, name, time.time()) for name in names],
            )

    def observed_changes(self, notebook: str) -> tuple[tuple[str, str], ...]:
        """(step, name) for each input a step of this notebook was seen changing in place."""
        with self.reading() as conn:
            rows = conn.execute(
                "SELECT step, name FROM observed_changes WHERE notebook = ? ORDER BY step, name",
                (notebook,),
            ).fetchall()
        return tuple((row["step"], row["name"]) for row in rows)

    # runs

    def save_run(self, run: RunRecord) -> None:
        """Insert or replace the whole record in one transaction."""
        with self.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO runs (id, notebook, notebook_sha256, status, started_at, "
                "ended_at, parameters, metrics, error, pid, metric_problems, cells) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run.run_id,
                    run.notebook,
                    run.notebook_sha256,
                    run.status,
                    run.started_at,
                    run.ended_at,
                    json.dumps(run.parameters, default=repr),
                    json.dumps(run.metrics),
                    json.dumps(run.error) if run.error else None,
                    run.pid,
                    json.dumps(run.metric_problems),
                    json.dumps(run.cells),
                ),
            )
            conn.execute("DELETE FROM run_steps WHERE run_id = ?", (run.run_id,))
            conn.executemany(
                "INSERT INTO run_steps (run_id, position, name, status, duration_s, cache_key, "
                "outputs, started_at, ended_at, worker, note, provenance) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        run.run_id,
                        position,
                        step.name,
                        step.status,
                        step.duration_s,
                        step.cache_key,
                        _json_artifacts(step.outputs),
                        step.started_at,
                        step.ended_at,
                        step.worker,
                        step.note,
                        json.dumps(step.provenance, sort_keys=True),
                    )
                    for position, step in enumerate(run.steps)
                ],
            )

    def runs(self, notebook: str | None = None, limit: int = 20) -> list[RunRecord]:
        query = "SELECT * FROM runs"
        args: tuple[Any, ...] = ()
        if notebook is not None:
            query += " WHERE notebook = ?"
            args = (notebook,)
        query += " ORDER BY started_at DESC LIMIT ?"
        with self.reading() as conn:
            rows = conn.execute(query, (*args, limit)).fetchall()
            return [self._run(conn, row) for row in rows]

    def run(self, run_id: str) -> RunRecord | None:
        """The run of this id, else the one run whose id begins so; several are AmbiguousRun."""
        with self.reading() as conn:
            row = conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                rows = conn.execute(
                    "SELECT * FROM runs WHERE substr(id, 1, ?) = ? ORDER BY started_at DESC",
                    (len(run_id), run_id),
                ).fetchall()
                if len(rows) > 1:
                    raise AmbiguousRun(run_id, [r["id"] for r in rows])
                row = rows[0] if rows else None
            return self._run(conn, row) if row else None

    def latest_run(self, notebook: str, status: str = "succeeded") -> RunRecord | None:
        with self.reading() as conn:
            row = conn.execute(
                "SELECT * FROM runs WHERE notebook = ? AND status = ? "
                "ORDER BY started_at DESC LIMIT 1",
                (notebook, status),
            ).fetchone()
            return self._run(conn, row) if row else None

    @staticmethod
    def _run(conn: sqlite3.Connection, row: sqlite3.Row) -> RunRecord:
        steps = [
            StepRecord(
                name=s["name"],
                status=s["status"],
                duration_s=s["duration_s"],
                cache_key=s["cache_key"],
                outputs=_artifacts(s["outputs"]),
                note=s["note"],
                started_at=s["started_at"],
                ended_at=s["ended_at"],
                worker=s["worker"],
                provenance=json.loads(s["provenance"]),
            )
            for s in conn.execute(
                "SELECT * FROM run_steps WHERE run_id = ? ORDER BY position", (row["id"],)
            )
        ]
        return RunRecord(
            run_id=row["id"],
            notebook=row["notebook"],
            notebook_sha256=row["notebook_sha256"],
            status=row["status"],
            started_at=row["started_at"],
            ended_at=row["ended_at"],
            parameters=json.loads(row["parameters"]),
            metrics=json.loads(row["metrics"]),
            metric_problems=json.loads(row["metric_problems"]),
            steps=steps,
            error=json.loads(row["error"]) if row["error"] else None,
            pid=row["pid"],
            cells=json.loads(row["cells"]),
        )

    def mark_interrupted(self, alive: Callable[[int], bool]) -> None:
        """Runs left 'running' by a process that no longer exists were killed mid-run."""
        with self.transaction() as conn:
            rows = conn.execute("SELECT id, pid FROM runs WHERE status = 'running'").fetchall()
            for row in rows:
                if row["pid"] is None or not alive(row["pid"]):
                    conn.execute(
                        "UPDATE runs SET status = 'interrupted' WHERE id = ?", (row["id"],)
                    )


def _json_artifacts(outputs: dict[str, StoredArtifact]) -> str:
    return json.dumps({name: a.as_dict() for name, a in outputs.items()}, sort_keys=True)


def _artifacts(text: str) -> dict[str, StoredArtifact]:
    return {name: StoredArtifact(**value) for name, value in json.loads(text).items()}
