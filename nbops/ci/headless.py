"""Headless runs for `nbops test`: the prepared copy executed with papermill, and the result.

The user's notebook is only ever read; papermill runs a copy (see nbops/prepared.py) and the
executed copy says which cell failed, which test cells ran, and the metrics.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbops.ci.prepared import (
    INJECTED_TAG,
    METRICS_TAG,
    PARAMETER_CODE_TAG,
    ROUND_TRIP_TAG,
    prepare_copy,
    read_metrics,
    read_node,
)
from nbops.errors import KernelNotFound, OutputPathError
from nbops.model.notebook import Notebook
from nbops.model.pipeline import Pipeline
from nbops.model.sections import group_sections

if TYPE_CHECKING:
    from nbops.ci.gates import GateResult

ERROR_MARKER_TAG = "papermill-error-cell-tag"  # papermill's, on the cells it adds at a failure
DEFAULT_KERNEL = "python3"
ENGINE = "nbops"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class CellStatus(str, Enum):
    PASSED = "passed"
    FAILED = "failed"
    NOT_RUN = "not run"


@dataclass(frozen=True)
class CellLabel:
    """How reports name a cell: index and id in the user's notebook, its tag, the step it is for.

    `index` is None for a cell the run added (papermill's injected parameters, nbops' metrics).
    """

    index: int | None
    id: str
    tag: str | None = None
    step: str | None = None

    def __str__(self) -> str:
        tag = f" [{self.tag}]" if self.tag else ""
        if self.index is None:
            return f"added cell{tag}"
        return f"cell {self.index}{tag} ({self.id})"


@dataclass(frozen=True)
class CellFailure:
    """The cell that stopped the run, with papermill's account of the exception."""

    cell: CellLabel
    ename: str
    evalue: str
    traceback: str
    line: int | None = None
    source_line: str | None = None

    @property
    def message(self) -> str:
        """`AssertionError: n should be 3`; a bare `assert` shows its statement, as pytest does."""
        detail = self.evalue or self.source_line
        return f"{self.ename}: {detail}" if detail else self.ename

    @property
    def where(self) -> str:
        """`cell 12 [test] (churn-12) line 3`"""
        return f"{self.cell} line {self.line}" if self.line else str(self.cell)

    def as_dict(self) -> dict[str, Any]:
        return {
            "index": self.cell.index,
            "id": self.cell.id,
            "tag": self.cell.tag,
            "line": self.line,
            "message": self.message,
        }


@dataclass(frozen=True)
class CellOutcome:
    """A test cell after the run: passed, failed, or not run because an earlier cell failed."""

    cell: CellLabel
    status: CellStatus
    duration: float | None = None
    failure: CellFailure | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "index": self.cell.index,
            "id": self.cell.id,
            "tag": self.cell.tag,
            "step": self.cell.step,
            "status": self.status.value,
        }


@dataclass(frozen=True)
class RunOptions:
    """Parameter overrides, the per-cell timeout in seconds (0: none), the kernel, where to
    keep the executed copy (None: a temporary folder), and whether to go on after a failing
    test cell."""

    overrides: Mapping[str, Any] = field(default_factory=dict)
    timeout: int = 600
    kernel: str | None = None
    output: Path | None = None
    # Go on after a failing test cell, so that every failing test cell is reported.
    keep_going: bool = False


@dataclass(frozen=True)
class Progress:
    """A code cell starting: the `position`-th of `total` code cells in the run."""

    position: int
    total: int
    cell: CellLabel


@dataclass(frozen=True)
class HeadlessRun:
    """One papermill run of a notebook's prepared copy and what it showed.

    `executed` is the executed copy as an nbformat node, papermill's error markers included;
    `output` is where it was kept (None when it went to a temporary folder, now deleted).
    """

    notebook: Notebook
    kernel: str
    parameters: Mapping[str, Any]
    overrides: Mapping[str, Any]
    executed: Any
    output: Path | None
    failure: CellFailure | None
    tests: tuple[CellOutcome, ...]
    metrics: Mapping[str, float]
    metric_problems: Mapping[str, str]
    duration: float
    # Every cell that raised, in order; `failure` is the first. More than one only with
    # keep_going, when test cells may fail and the run goes on.
    failures: tuple[CellFailure, ...] = ()

    @property
    def passed(self) -> bool:
        return self.failure is None

    @property
    def stopped(self) -> CellFailure | None:
        """The cell that is not a test cell whose failure ended the run (a step, setup, ...)."""
        tests = {outcome.cell.id for outcome in self.tests}
        failures = self.failures or ((self.failure,) if self.failure else ())
        return next((f for f in failures if f.cell.id not in tests), None)

    def as_dict(self, gates: Sequence[GateResult] = ()) -> dict[str, Any]:
        """What `nbops test --format json` prints; metrics that are not finite numbers are null."""
        return {
            "status": run_status(self, gates),
            "notebook": self.notebook.path,
            "kernel": self.kernel,
            "parameters": {name: _jsonable(value) for name, value in self.parameters.items()},
            "failed_cell": self.failure.as_dict() if self.failure else None,
            "failed_cells": [failure.as_dict() for failure in self.failures],
            "tests": [outcome.as_dict() for outcome in self.tests],
            "metrics": {name: _finite(value) for name, value in self.metrics.items()},
            "metric_problems": dict(self.metric_problems),
            "gates": [result.as_dict() for result in gates],
            "executed": str(self.output) if self.output else None,
            "duration_s": round(self.duration, 3),
        }


def run_status(run: HeadlessRun, gates: Sequence[GateResult]) -> str:
    """`passed` when no cell raised and every gate holds, else `failed`."""
    return "passed" if run.passed and not any(g.failed for g in gates) else "failed"


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _jsonable(value: Any) -> Any:
    """Parameter values are literals; tuples, sets and bytes become what JSON can hold."""
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value


# parameters and outputs


def run_parameters(pipeline: Pipeline, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The values the run uses: each parameter's default, overridden where asked."""
    return {**{p.name: p.default for p in pipeline.parameters}, **overrides}


def check_output_paths(notebook: Notebook, outputs: Sequence[str | Path | None]) -> None:
    """Before a run, not after it: no output is the notebook itself (`nbops test` never writes
    it), a folder, or in a place that cannot be written."""
    source = Path(notebook.path).resolve()
    for output in outputs:
        if output is None:
            continue
        target = Path(output).resolve()
        if target == source:
            raise OutputPathError(
                "is the notebook under test; nbops test never writes the notebook.",
                where=str(output),
                fix="Choose another file name for the output.",
            )
        if target.is_dir() or not os.access(_nearest_existing(target.parent), os.W_OK):
            raise OutputPathError(
                "is a folder." if target.is_dir() else "is in a folder nbops cannot write to.",
                where=str(output),
                fix="Give the path of a file in a folder you can write to.",
            )


def _nearest_existing(folder: Path) -> Path:
    """The folder itself, or its closest ancestor that exists (missing folders are created)."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


# the copy papermill runs


def cell_labels(pipeline: Pipeline) -> dict[str, CellLabel]:
    """Every code cell the run executes, by id: its index, the tag of its section, its step."""
    steps = {ref.index: step.name for step in pipeline.steps for ref in step.cells}
    tested = {ref.index: test.step for test in pipeline.tests for ref in test.cells}
    labels: dict[str, CellLabel] = {}
    for section in group_sections(pipeline.code_cells):
        tag = section.tag if section.role is not None else None
        for code in section.cells:
            index = code.cell.index
            step = steps.get(index) or tested.get(index)
            labels[code.cell.id] = CellLabel(index, code.cell.id, tag, step)
    return labels


# running it


def execute_headless(
    pipeline: Pipeline, options: RunOptions, on_cell: Callable[[Progress], None] | None = None
) -> HeadlessRun:
    """Run the notebook's prepared copy with papermill and read back what happened."""
    import nbformat

    node = read_node(pipeline.notebook)
    prepared = prepare_copy(
        node, pipeline, overridden=bool(options.overrides), keep_going=options.keep_going
    )
    kernel = options.kernel or (node.metadata.get("kernelspec") or {}).get("name") or DEFAULT_KERNEL
    labels = cell_labels(pipeline)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="nbops-test-") as folder:
        source = Path(folder) / "prepared.ipynb"
        nbformat.write(prepared, source)  # type: ignore[no-untyped-call]
        output = (options.output or Path(folder) / "executed.ipynb").resolve()
        output.parent.mkdir(parents=True, exist_ok=True)
        progress = _progress(on_cell, labels, prepared, _injects_cell(prepared, options))
        kernel_log = Path(folder) / "kernel.log"
        error = _papermill(source, output, pipeline, options, kernel, progress, kernel_log)
        executed = nbformat.read(output, as_version=4)  # type: ignore[no-untyped-call]
    failures = _failures(executed, error, labels) if error is not None else []
    failure = failures[0] if failures else None
    values, problems = read_metrics(executed)
    return HeadlessRun(
        notebook=pipeline.notebook,
        kernel=kernel,
        parameters=run_parameters(pipeline, options.overrides),
        overrides=dict(options.overrides),
        executed=executed,
        output=output if options.output else None,
        failure=failure,
        tests=_test_outcomes(pipeline, executed, labels, failures),
        failures=tuple(failures),
        metrics=values,
        metric_problems=problems,
        duration=time.perf_counter() - started,
    )


def _papermill(
    source: Path,
    output: Path,
    pipeline: Pipeline,
    options: RunOptions,
    kernel: str,
    progress: Callable[[Any], None] | None,
    kernel_log: Path,
) -> Any:
    """Execute with papermill; returns its PapermillExecutionError when a cell raised, else None."""
    import papermill
    from jupyter_client.kernelspec import NoSuchKernel
    from papermill.engines import papermill_engines
    from papermill.exceptions import PapermillExecutionError

    from nbops.ci.papermill_engine import NbopsEngine

    papermill_engines.register(ENGINE, NbopsEngine)
    try:
        papermill.execute_notebook(
            str(source),
            # papermill formats paths with the parameters (`out/{n}.ipynb`); nbops writes the
            # file the user named, so braces are escaped to mean themselves.
            str(output).replace("{", "{{").replace("}", "}}"),
            parameters=dict(options.overrides) or None,
            engine_name=ENGINE,
            # papermill rewrites the whole output at every cell's start and end otherwise,
            # which makes long notebooks quadratic (see BASELINES.md); one write at the end.
            request_save_on_cell_execute=False,
            kernel_name=kernel,
            language="python",
            progress_bar=False,
            cwd=str(Path(pipeline.notebook.path).resolve().parent),
            execution_timeout=options.timeout or None,
            on_cell=progress,
            kernel_log=kernel_log,
        )
    except PapermillExecutionError as error:
        return error
    except NoSuchKernel:
        raise _kernel_not_found(kernel, pipeline.notebook, options.kernel is not None) from None
    return None


def _kernel_not_found(kernel: str, notebook: Notebook, asked: bool) -> KernelNotFound:
    from jupyter_client.kernelspec import KernelSpecManager

    known = ", ".join(sorted(KernelSpecManager().find_kernel_specs())) or "none"
    return KernelNotFound(
        f"no Jupyter kernel named {kernel!r} is installed (installed: {known}).",
        where="--kernel" if asked else f"{notebook.display_name} (its kernelspec)",
        fix="Pass --kernel with an installed one, or install it with "
        f"'python -m ipykernel install --user --name {kernel}'.",
    )


def _progress(
    on_cell: Callable[[Progress], None] | None,
    labels: Mapping[str, CellLabel],
    prepared: Any,
    injects: bool,
) -> Callable[[Any], None] | None:
    """The engine's per-cell hook, turned into Progress with the user's cell labels."""
    if on_cell is None:
        return None
    total = sum(1 for cell in prepared.cells if cell.cell_type == "code") + injects
    positions = itertools.count(1)

    def started(cell: Any) -> None:
        on_cell(Progress(next(positions), total, labels.get(cell.get("id", "")) or _added(cell)))

    return started


def _injects_cell(prepared: Any, options: RunOptions) -> bool:
    """Whether papermill adds a cell: overrides given and no injected cell to replace."""
    tags = (tag for cell in prepared.cells for tag in cell.metadata.get("tags") or [])
    return bool(options.overrides) and INJECTED_TAG not in tags


def _added(cell: Any) -> CellLabel:
    """The label of a cell the run added: papermill's injected parameters or nbops' metrics."""
    tags = cell.metadata.get("tags") or []
    added = (INJECTED_TAG, METRICS_TAG, ROUND_TRIP_TAG, PARAMETER_CODE_TAG)
    tag = next((t for t in tags if t in added), None)
    return CellLabel(None, str(cell.get("id", "")), tag)


# reading the executed copy


def _failures(executed: Any, error: Any, labels: Mapping[str, CellLabel]) -> list[CellFailure]:
    """Every cell that raised, in order (more than one only when test cells may raise and the
    run went on), each with the line of the cell the exception came from. papermill reports
    one (the last); the cells' own error outputs tell them all."""
    # papermill's cell_index counts the cells before it added its error markers.
    cells = [c for c in executed.cells if ERROR_MARKER_TAG not in (c.metadata.get("tags") or [])]
    found = [_cell_failure(cell, labels) for cell in cells if _error_output(cell) is not None]
    return [f for f in found if f is not None] or [_failure(cells, error, labels)]


def _error_output(cell: Any) -> Any:
    outputs = cell.get("outputs") or []
    return next((o for o in outputs if o.get("output_type") == "error"), None)


def _cell_failure(cell: Any, labels: Mapping[str, CellLabel]) -> CellFailure | None:
    output = _error_output(cell)
    if output.get("ename") == "SystemExit" and output.get("evalue") in ("", "0"):
        return None  # papermill's rule: a clean sys.exit() is not a failure
    return _described(
        cell,
        labels,
        str(output.get("ename")),
        str(output.get("evalue")),
        output.get("traceback") or [],
        cell.get("execution_count"),
    )


def _failure(cells: list[Any], error: Any, labels: Mapping[str, CellLabel]) -> CellFailure:
    """The failing cell papermill reports (one that raised without an error output)."""
    cell = cells[error.cell_index]
    return _described(
        cell, labels, str(error.ename), str(error.evalue), error.traceback, error.exec_count
    )


def _described(
    cell: Any,
    labels: Mapping[str, CellLabel],
    ename: str,
    evalue: str,
    traceback_lines: list[str] | None,
    exec_count: int | None,
) -> CellFailure:
    traceback = ANSI.sub("", "\n".join(traceback_lines or []))
    line = _error_line(traceback, exec_count)
    source_lines = str(cell.source).splitlines()
    source_line = source_lines[line - 1].strip() if line and line <= len(source_lines) else None
    return CellFailure(
        cell=labels.get(cell.get("id", "")) or _added(cell),
        ename=ename,
        evalue=ANSI.sub("", evalue),
        traceback=traceback,
        line=line,
        source_line=source_line,
    )


def _error_line(traceback: str, exec_count: int | None) -> int | None:
    """The line of the failing cell in IPython's traceback (`Cell In[7], line 3`)."""
    if exec_count is None:
        return None
    match = re.search(rf"Cell In\[{exec_count}\], line (\d+)", traceback)
    return int(match[1]) if match else None


def _test_outcomes(
    pipeline: Pipeline,
    executed: Any,
    labels: Mapping[str, CellLabel],
    failures: Sequence[CellFailure],
) -> tuple[CellOutcome, ...]:
    """Each test cell's status from papermill's metadata: completed, failed, or still pending."""
    by_id = {cell.get("id"): cell for cell in executed.cells}
    failed = {failure.cell.id: failure for failure in failures}
    outcomes: list[CellOutcome] = []
    for ref in (ref for test in pipeline.tests for ref in test.cells):
        cell = by_id.get(ref.id)
        run = (cell.metadata.get("papermill") or {}) if cell is not None else {}
        if ref.id in failed:
            outcome = CellOutcome(
                labels[ref.id], CellStatus.FAILED, run.get("duration"), failed[ref.id]
            )
        elif run.get("status") == "completed":
            outcome = CellOutcome(labels[ref.id], CellStatus.PASSED, run.get("duration"))
        else:
            outcome = CellOutcome(labels[ref.id], CellStatus.NOT_RUN)
        outcomes.append(outcome)
    return tuple(outcomes)
