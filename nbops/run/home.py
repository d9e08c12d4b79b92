"""The `.nbops/` folder every face shares: the state db, the artifact store and per-run logs."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from nbops.run.state import StateDb
from nbops.run.store import ArtifactStore


@dataclass(frozen=True)
class Home:
    """The `.nbops/` folder: state db, artifact store and per-run logs."""

    root: Path

    @classmethod
    def default(cls) -> Home:
        """`.nbops` in the working directory, or wherever `NBOPS_HOME` points."""
        return cls(Path(os.environ.get("NBOPS_HOME", ".nbops")).resolve())

    @property
    def store(self) -> ArtifactStore:
        return ArtifactStore(self.root / "artifacts")

    def db(self) -> StateDb:
        return StateDb(self.root / "state.db")

    def log_dir(self, run_id: str) -> Path:
        return self.root / "runs" / run_id
