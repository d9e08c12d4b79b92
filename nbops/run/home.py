"""The `.nbops/` folder every face shares: the state db, the artifact store and per-run logs."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from nbops.run.state import StateDb
from nbops.run.store import ArtifactStore, open_store

if TYPE_CHECKING:  # analysis is imported when used: `nbops runs`, status and stop need no model
    from nbops.model.notebook import Notebook
    from nbops.model.pipeline import Pipeline


@dataclass(frozen=True)
class Home:
    """The `.nbops/` folder: state db, artifact store and per-run logs."""

    root: Path
    store_location: str | None = None  # a path or fsspec URL; None: `artifacts/` in root

    @classmethod
    def default(cls) -> Home:
        """`.nbops` in the working directory, or wherever `NBOPS_HOME` points; the store in it,
        or wherever `NBOPS_STORE` points (a folder, or a URL such as `s3://bucket/prefix`)."""
        root = Path(os.environ.get("NBOPS_HOME", ".nbops")).resolve()
        store = os.environ.get("NBOPS_STORE") or None
        if store is not None and "://" not in store:
            store = str(Path(store).resolve())  # as NBOPS_HOME: relative to where nbops started
        return cls(root, store)

    @property
    def store(self) -> ArtifactStore:
        return opened_store(self.store_location or str(self.root / "artifacts"))

    def db(self) -> StateDb:
        return StateDb(self.root / "state.db")

    def log_dir(self, run_id: str) -> Path:
        return self.root / "runs" / run_id

    def observed_changes(self, notebook_path: str | Path) -> tuple[tuple[str, str], ...]:
        """(step, name) for inputs runs here saw a step of the notebook change in place; none
        when nothing ran here yet (reading never creates the state db)."""
        if not (self.root / "state.db").is_file():
            return ()
        return self.db().observed_changes(str(Path(notebook_path).resolve()))


@functools.lru_cache(maxsize=8)
def opened_store(location: str) -> ArtifactStore:
    """One store per location in a process: a URL store holds a client (connections, its
    credentials), which is worth making once, not at each of a run's many reads."""
    return open_store(location)


def analyse_with_runs(notebook: Notebook, home: Home | None = None) -> Pipeline:
    """The notebook's Pipeline as runs here have seen it: with the in-place changes they found
    that its code does not show (`analyse`'s `observed`)."""
    from nbops.model.analysis import analyse

    home = home or Home.default()
    return analyse(notebook, home.observed_changes(notebook.path))
