"""Stored artifacts back into a notebook or a script, as MLflow users load a logged model:

    from nbops import artifacts
    model = artifacts.load("model")                     # the latest successful run's
    model = artifacts.load("train.model", run="20261202-0930")

The run is this notebook's latest successful one (the notebook Jupyter runs this kernel for,
else the only notebook with runs here, else the one named), or the run named by id or prefix.
The value comes from the store with its sha256 checked, as the runner reads it.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any

from nbops.errors import NbopsError
from nbops.run.home import Home
from nbops.run.state import RunRecord, StoredArtifact

# Set by jupyter_server for each kernel it starts: the notebook's path, from the server's root.
SESSION_ENV = "JPY_SESSION_NAME"


class ArtifactNotFound(NbopsError):
    """No run, or no value of that name in the run, to load."""


def load(
    name: str,
    *,
    run: str | None = None,
    notebook: str | Path | None = None,
    home: Home | None = None,
) -> Any:
    """The value `name` (or `step.name`) as the run stored it."""
    home = home or Home.default()
    record = find_run(home, run, notebook)
    stored = find_output(record, name)
    return home.store.get(stored.sha256, stored.format)


def find_run(home: Home, run: str | None, notebook: str | Path | None) -> RunRecord:
    """The run named, else the latest successful run of the notebook."""
    db = home.db()
    if run is not None:
        record = db.run(run)
        if record is None:
            raise ArtifactNotFound(
                f"no run {run!r} in {home.root}.", fix="`nbops runs` lists the runs kept there."
            )
        return record
    path = _notebook(home, notebook)
    record = db.latest_run(path)
    if record is None:
        raise ArtifactNotFound(
            f"{Path(path).name} has no successful run in {home.root}.",
            fix=f"Run it first: `nbops run {Path(path).name}`.",
        )
    return record


def find_output(record: RunRecord, name: str) -> StoredArtifact:
    """`name` as the last step that made it left it, or `step.name` of that step."""
    step_name, _, value = name.rpartition(".")
    made = [
        (step.name, value, step.outputs[value])
        for step in record.steps
        if value in step.outputs and step_name in ("", step.name)
    ]
    if made:
        return made[-1][2]
    known = sorted({f"{s.name}.{o}" for s in record.steps for o in s.outputs})
    plain = sorted({o for s in record.steps for o in s.outputs})
    close = difflib.get_close_matches(name, plain + known, n=1, cutoff=0.6)
    hint = f"Did you mean {close[0]!r}? " if close else ""
    raise ArtifactNotFound(
        f"run {record.run_id} of {Path(record.notebook).name} stored no {name!r}.",
        fix=f"{hint}It stored: {', '.join(known) or 'nothing'} (a step's value is stored when a "
        "later step, a metrics cell or a serve function reads it).",
    )


def _notebook(home: Home, notebook: str | Path | None) -> str:
    """The notebook's path as runs record it: given, else the kernel's, else the only one."""
    if notebook is not None:
        return str(Path(notebook).resolve())
    session = os.environ.get(SESSION_ENV)
    if session and Path(session).name.endswith(".ipynb"):
        found = Path(session) if Path(session).is_absolute() else Path.cwd() / Path(session).name
        return str(found.resolve())
    notebooks = sorted({r.notebook for r in home.db().runs(limit=1000)})
    if len(notebooks) == 1:
        return notebooks[0]
    names = ", ".join(Path(n).name for n in notebooks) or "none"
    raise ArtifactNotFound(
        f"which notebook's run? {home.root} has runs of: {names}.",
        fix="Name it: artifacts.load(NAME, notebook='churn.ipynb'), or a run: run='RUN_ID'.",
    )
