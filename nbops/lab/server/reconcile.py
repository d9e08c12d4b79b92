"""The records a job left unfinished, made honest once its process has ended without finishing.

A job's child writes runs and deployments as it goes (the runner's `running` run, a deploy's
`building` or `starting` version); when the child dies, is cancelled or raises out of its work,
nobody finishes them. This ends them with the job's reason and stops the service a deploy had
started, through the same records and process functions the CLI uses.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbops.deploy import processes, records
from nbops.run.home import Home
from nbops.run.pids import pid_alive
from nbops.run.state import StateDb

UNFINISHED = ("building", "starting")


@dataclass(frozen=True)
class Footprint:
    """What a job may leave behind: runs of `notebook` (its resolved path, as runs are
    recorded) and versions of the deployments `names`, in the state db under `home`."""

    home: str
    notebook: str | None = None
    names: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"home": self.home, "notebook": self.notebook, "names": list(self.names)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Footprint:
        return cls(data["home"], data.get("notebook"), tuple(data.get("names") or ()))


def settle(
    footprint: Footprint, *, pid: int | None, since: float, reason: str, run_status: str
) -> list[str]:
    """End what the job's process (`pid`, started at `since`) left running; say what, for its log.

    `run_status` is what its run becomes: `failed` (the code ended it) or `interrupted`.
    """
    db = Home(Path(footprint.home)).db()
    notes = []
    if footprint.notebook is not None and pid is not None:
        notes += _settle_runs(db, footprint.notebook, pid, reason, run_status)
    for name in footprint.names:
        notes += _settle_deployments(db, name, since, reason)
    return notes


def _settle_runs(db: StateDb, notebook: str, pid: int, reason: str, status: str) -> list[str]:
    notes = []
    for run in db.runs(notebook, limit=20):
        if run.status == "running" and run.pid == pid:
            error = {"message": reason, "details": None}
            db.save_run(dataclasses.replace(run, status=status, ended_at=time.time(), error=error))
            notes.append(f"run {run.run_id} recorded as {status}")
    return notes


def _settle_deployments(db: StateDb, name: str, since: float, reason: str) -> list[str]:
    """Versions of `name` the job was bringing up become `failed`, their service stopped; a
    version it had promoted keeps serving, and the one it replaced is stopped as it would be."""
    notes = []
    versions = records.history(db, name)
    for row in versions:
        if row.status in UNFINISHED and row.updated_at >= since:
            processes.stop(row.pid, row.pid_started)
            records.update(db, name, row.version, status="failed", reason=reason, pid=None)
            notes.append(f"{name} v{row.version} recorded as failed (was {row.status})")
    promoted = [r for r in versions if r.current and (r.healthy_at or 0) >= since]
    if promoted:
        for row in versions:
            if row.status == "healthy" and not row.current and pid_alive(row.pid):
                processes.stop(row.pid, row.pid_started)
                records.update(db, name, row.version, status="stopped", pid=None)
                notes.append(f"{name} v{row.version} stopped: v{promoted[0].version} serves")
    return notes
