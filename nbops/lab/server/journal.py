"""Jobs kept on disk (`<home>/jobs/<id>.json`), so a restarted server knows what was running.

Written when a job is submitted, when its process starts and when it ends; read once when the
server starts, when a job still marked running was cut off by the server stopping.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbops.lab.server.reconcile import Footprint


@dataclass(frozen=True)
class Entry:
    """One kept job: its snapshot, what it may leave behind, and its process."""

    snapshot: dict[str, Any]
    footprint: Footprint | None
    pid: int | None
    started_at: float | None

    def as_dict(self) -> dict[str, Any]:
        footprint = self.footprint.as_dict() if self.footprint else None
        return {
            "job": self.snapshot,
            "footprint": footprint,
            "pid": self.pid,
            "started_at": self.started_at,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Entry:
        footprint = Footprint.from_dict(data["footprint"]) if data.get("footprint") else None
        return cls(data["job"], footprint, data.get("pid"), data.get("started_at"))


class Journal:
    """One JSON file per job in a folder, replaced whole (write, then rename)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lock = threading.Lock()  # a job's thread and a cancel may save one job at once

    def save(self, entry: Entry) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{entry.snapshot['job_id']}.json"
        temporary = path.with_suffix(".tmp")
        with self._lock:
            temporary.write_text(json.dumps(entry.as_dict(), default=repr))
            os.replace(temporary, path)

    def entries(self) -> list[Entry]:
        """Oldest first; a file that cannot be read (cut off mid-write) is skipped."""
        found = []
        for path in self.folder.glob("*.json"):
            try:
                found.append(Entry.from_dict(json.loads(path.read_text())))
            except (OSError, ValueError, KeyError, TypeError):
                continue
        return sorted(found, key=lambda entry: entry.snapshot["created_at"])

    def forget(self, job_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.folder / f"{job_id}.json").unlink()
