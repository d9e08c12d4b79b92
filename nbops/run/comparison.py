"""Two runs side by side (`nbops runs diff A B`): what differs in their parameters, metrics,
steps (ran or cached, cache key, outputs), the code cells they ran and, where the runs recorded
them, the data files and library versions their steps' keys covered.

Pure: two RunRecords in, a RunDiff out; `code_cells` is what a run records of its notebook.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any

from nbops.model.pipeline import Pipeline
from nbops.run.state import RunRecord, StepRecord


def code_cells(pipeline: Pipeline) -> list[dict[str, Any]]:
    """The notebook's code cells as a run records them: index, id, tags, source sha256."""
    return [
        {
            "index": cell.index,
            "id": cell.id,
            "tags": list(cell.tags),
            "sha256": hashlib.sha256(cell.source.encode()).hexdigest(),
        }
        for cell in pipeline.notebook.cells
        if cell.is_code
    ]


@dataclass(frozen=True)
class Change:
    """A value in run A and in run B (None where that run has none)."""

    name: str
    before: Any
    after: Any

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "a": self.before, "b": self.after}


@dataclass(frozen=True)
class MetricChange:
    name: str
    before: float | None
    after: float | None

    @property
    def delta(self) -> float | None:
        if self.before is None or self.after is None:
            return None
        delta = self.after - self.before
        return delta if math.isfinite(delta) else None

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "a": self.before, "b": self.after, "delta": self.delta}


@dataclass(frozen=True)
class StepChange:
    """One step in both runs: how it ended in each, whether its cache key differs, and the
    outputs whose hashes differ."""

    name: str
    before: str | None
    after: str | None
    key_changed: bool
    outputs: tuple[Change, ...] = ()
    inputs: tuple[Change, ...] = ()  # data files and library versions its key covered

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "a": self.before,
            "b": self.after,
            "key_changed": self.key_changed,
            "outputs": [o.as_dict() for o in self.outputs],
            "inputs": [i.as_dict() for i in self.inputs],
        }


@dataclass(frozen=True)
class CellChange:
    """A code cell whose source differs between the runs, or that only one of them had."""

    index: int
    id: str
    tags: tuple[str, ...]
    what: str  # changed | added | removed

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "id": self.id, "tags": list(self.tags), "what": self.what}

    def __str__(self) -> str:
        tags = f" [{', '.join(self.tags)}]" if self.tags else ""
        return f"cell {self.index}{tags} ({self.id}) {self.what}"


@dataclass(frozen=True)
class RunDiff:
    a: RunRecord
    b: RunRecord
    parameters: tuple[Change, ...]
    metrics: tuple[MetricChange, ...]
    steps: tuple[StepChange, ...]
    cells: tuple[CellChange, ...]

    @property
    def notebook_changed(self) -> bool:
        return self.a.notebook_sha256 != self.b.notebook_sha256

    @property
    def reran(self) -> tuple[str, ...]:
        """Steps that ran in B (not taken from the cache)."""
        return tuple(s.name for s in self.steps if s.after == "ran")

    def as_dict(self) -> dict[str, Any]:
        return {
            "a": self.a.run_id,
            "b": self.b.run_id,
            "notebooks": [self.a.notebook, self.b.notebook],
            "notebook_changed": self.notebook_changed,
            "parameters": [p.as_dict() for p in self.parameters],
            "metrics": [m.as_dict() for m in self.metrics],
            "steps": [s.as_dict() for s in self.steps],
            "reran": list(self.reran),
            "cells": [c.as_dict() for c in self.cells],
        }


def diff_runs(a: RunRecord, b: RunRecord) -> RunDiff:
    """What differs from run A to run B; metrics are listed whole, with their deltas."""
    return RunDiff(
        a=a,
        b=b,
        parameters=_changed(a.parameters, b.parameters),
        metrics=tuple(
            MetricChange(name, a.metrics.get(name), b.metrics.get(name))
            for name in dict.fromkeys([*a.metrics, *b.metrics])
        ),
        steps=_steps(a, b),
        cells=_cells(a.cells, b.cells),
    )


def _changed(before: dict[str, Any], after: dict[str, Any]) -> tuple[Change, ...]:
    names = dict.fromkeys([*before, *after])
    return tuple(
        Change(name, before.get(name), after.get(name))
        for name in names
        if before.get(name) != after.get(name) or (name in before) != (name in after)
    )


def _steps(a: RunRecord, b: RunRecord) -> tuple[StepChange, ...]:
    earlier = {step.name: step for step in a.steps}
    later = {step.name: step for step in b.steps}
    return tuple(
        _step(name, earlier.get(name), later.get(name))
        for name in dict.fromkeys([*earlier, *later])
    )


def _step(name: str, before: StepRecord | None, after: StepRecord | None) -> StepChange:
    keys = (before.cache_key if before else None, after.cache_key if after else None)
    outputs = _changed(
        {n: o.sha256 for n, o in before.outputs.items()} if before else {},
        {n: o.sha256 for n, o in after.outputs.items()} if after else {},
    )
    return StepChange(
        name,
        before.status if before else None,
        after.status if after else None,
        key_changed=keys[0] != keys[1],
        outputs=outputs,
        inputs=_changed(_key_inputs(before), _key_inputs(after)),
    )


def _key_inputs(step: StepRecord | None) -> dict[str, Any]:
    """The data files (`file path`) and libraries (`library name`) a step's key covered, when
    the run recorded them."""
    if step is None:
        return {}
    libraries = step.provenance.get("libraries", {})
    files = step.provenance.get("files", {})
    return {
        **{f"library {name}": version for name, version in libraries.items()},
        **{f"file {path}": digest[:12] for path, digest in files.items()},
    }


def _cells(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> tuple[CellChange, ...]:
    """Code cells matched by id: those whose source changed, were added or removed."""
    old = {cell["id"]: cell for cell in before}
    new = {cell["id"]: cell for cell in after}
    found: list[CellChange] = []
    for cell_id, cell in new.items():
        if cell_id not in old:
            found.append(_cell(cell, "added"))
        elif old[cell_id]["sha256"] != cell["sha256"]:
            found.append(_cell(cell, "changed"))
    found += [_cell(cell, "removed") for cell_id, cell in old.items() if cell_id not in new]
    return tuple(sorted(found, key=lambda change: change.index))


def _cell(cell: dict[str, Any], what: str) -> CellChange:
    return CellChange(int(cell["index"]), str(cell["id"]), tuple(cell.get("tags", ())), what)
