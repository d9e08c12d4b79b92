"""One step's work, done wherever an executor puts it: inputs read from the artifact store, the
step's cells run, outputs written back, and a result that says what happened.

The runner decides what runs (the cache, the order, the records); `perform` is all a worker
process or a Dask worker does. Work and results are plain, picklable data, so the same step
gives the same bytes in-process, in a worker process, or on another machine that shares the
store.
"""

from __future__ import annotations

import ast
import importlib
import linecache
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbops.errors import StepFailed
from nbops.model.pipeline import CellRef, Pipeline
from nbops.model.plain_python import PlainPython
from nbops.model.tags import OPTION_LINE
from nbops.run.capture import display, to_log
from nbops.run.fingerprint import can_change, fingerprint
from nbops.run.metric_values import split_metrics
from nbops.run.state import StoredArtifact
from nbops.run.store import ArtifactStore, CorruptArtifact, open_store

STEP, TEST, METRICS = "step", "test", "metrics"
METRICS_OUTPUT = "metrics"

# Told the index of each cell as it starts, so a process that dies can be said to die there.
CellListener = Callable[[int], None]


@dataclass(frozen=True)
class StepWork:
    """What to run (a step, a step's test cells, or the metrics cells) and on which inputs."""

    kind: str  # step | test | metrics
    step: str  # the step's name; for tests the step they check; "" for metrics
    run_id: str
    notebook_sha256: str
    parameters: dict[str, Any]
    inputs: dict[str, StoredArtifact]
    store: str  # a location `open_store` accepts, so a worker anywhere opens the same store
    log_dir: str
    timeout_s: float | None = None
    test: int = 0  # which of pipeline.tests, for test work

    @property
    def name(self) -> str:
        """The name its log and its cache entry go by: `train`, `test-train`, `metrics`."""
        return {STEP: self.step, TEST: f"test-{self.step}", METRICS: METRICS_OUTPUT}[self.kind]


@dataclass(frozen=True)
class Failure:
    """Why work failed, as StepFailed carries it (exceptions do not always survive pickling)."""

    message: str
    where: str = ""
    fix: str = ""
    details: str = ""

    @classmethod
    def of(cls, error: StepFailed) -> Failure:
        return cls(error.message, error.where, error.fix, error.details)

    def error(self) -> StepFailed:
        return StepFailed(self.message, where=self.where, fix=self.fix, details=self.details)


@dataclass
class WorkResult:
    """How the work ended: `ran` with its outputs, or `failed`, `timed-out`, `cancelled`."""

    work: StepWork
    status: str
    outputs: dict[str, StoredArtifact] = field(default_factory=dict)
    # Inputs the step changed in place, stored as outputs too: later steps read them there.
    changed: tuple[str, ...] = ()
    started_at: float = 0.0
    ended_at: float = 0.0
    duration_s: float = 0.0
    failure: Failure | None = None
    worker: str = ""


def perform(work: StepWork, pipeline: Pipeline, on_cell: CellListener | None = None) -> WorkResult:
    """Run the work here and now; a failing cell becomes a `failed` result, never a raise."""
    started_at, started = time.time(), time.perf_counter()
    result = WorkResult(work, "ran", started_at=started_at)
    try:
        result.outputs, result.changed = _perform(work, pipeline, on_cell or (lambda _: None))
    except StepFailed as error:
        result.status, result.failure = "failed", Failure.of(error)
    result.ended_at, result.duration_s = time.time(), time.perf_counter() - started
    return result


def _perform(
    work: StepWork, pipeline: Pipeline, on_cell: CellListener
) -> tuple[dict[str, StoredArtifact], tuple[str, ...]]:
    store = _store(work.store)
    cells, outputs, tag = _what_runs(work, pipeline)
    namespace = dict(_setup(work, pipeline, store, on_cell))
    namespace.update(work.parameters)
    for name, artifact in work.inputs.items():
        namespace[name] = _value(work, store, name, artifact)
    step = pipeline.step(work.step) if work.kind == STEP else None
    watched = [n for n in work.inputs if step is not None and n not in step.writes]
    before = _fingerprints(namespace, watched)
    _execute(work, pipeline, work.name, cells, namespace, on_cell, tag)
    changed = tuple(_changed_in_place(namespace, before))
    for name in changed:  # the cached object is not what the store holds any more
        _VALUES.pop((work.run_id, work.inputs[name].sha256), None)
    if work.kind == METRICS:
        values = split_metrics(namespace, pipeline.metrics.names)
        return {METRICS_OUTPUT: StoredArtifact(*store.put(values))}, ()
    first = cells[0] if cells else None
    stored = _store_outputs(pipeline, store, work.name, first, namespace, (*outputs, *changed))
    return stored, changed


def _what_runs(
    work: StepWork, pipeline: Pipeline
) -> tuple[tuple[CellRef, ...], tuple[str, ...], str | None]:
    """The cells, the names to store after them, and the tag failures name them by."""
    if work.kind == STEP:
        step = pipeline.step(work.step)
        return step.cells, step.outputs, None
    if work.kind == TEST:
        cells = pipeline.tests[work.test].cells
        return cells, (), pipeline.code(cells[0]).tag or "test"
    return pipeline.metrics.cells, (), None


# What a process keeps between works of one run: setup's namespace, and values already read.
# Keyed by run id, and dropped when another run's work arrives.
_SETUP: dict[str, dict[str, Any]] = {}
_VALUES: dict[tuple[str, str], Any] = {}
_STORES: dict[str, ArtifactStore] = {}


def _store(location: str) -> ArtifactStore:
    if location not in _STORES:
        _STORES[location] = open_store(location)
    return _STORES[location]


def _setup(
    work: StepWork, pipeline: Pipeline, store: ArtifactStore, on_cell: CellListener
) -> dict[str, Any]:
    """Setup runs once per run in each process, and only when a step has to run there."""
    if work.run_id not in _SETUP:
        _SETUP.clear()
        for key in [k for k in _VALUES if k[0] != work.run_id]:
            del _VALUES[key]
        namespace: dict[str, Any] = {"__name__": "__main__", "display": display}
        namespace.update(work.parameters)  # setup may read parameters, as in the notebook
        _run_parameter_code(work, pipeline, namespace)
        _execute(work, pipeline, "setup", pipeline.setup, namespace, on_cell)
        _SETUP[work.run_id] = {k: v for k, v in namespace.items() if k not in work.parameters}
    return _SETUP[work.run_id]


def _value(work: StepWork, store: ArtifactStore, name: str, artifact: StoredArtifact) -> Any:
    key = (work.run_id, artifact.sha256)
    if key not in _VALUES:
        try:
            _VALUES[key] = store.get(artifact.sha256, artifact.format)
        except CorruptArtifact as error:
            raise StepFailed(
                f"the stored input {name!r} does not match its sha256, so it is not loaded.",
                where=str(error),
                fix="Run again: the step that makes it recomputes it (or use --force).",
            ) from None
        except FileNotFoundError:  # removed from the store after the run found it there
            raise StepFailed(
                f"the stored input {name!r} is gone from the store.",
                where=store.location(artifact.sha256, artifact.format),
                fix="Run again: the step that makes it recomputes it (or use --force).",
            ) from None
    return _VALUES[key]


def _run_parameter_code(work: StepWork, pipeline: Pipeline, namespace: dict[str, Any]) -> None:
    """The parameters cell's statements that are not parameters, run after the values are
    injected and before setup; their output goes to the setup log."""
    log_path = Path(work.log_dir) / "setup.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    for part in pipeline.parameter_code:
        filename = cell_filename(pipeline, part.cell)
        source = pipeline.notebook.cells[part.cell.index].source
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        failure = None
        with open(log_path, "a") as log, to_log(log):
            try:
                exec(compile(part.source, filename, "exec"), namespace)  # as papermill runs it
            except Exception as error:
                failure = _step_failure(pipeline, "setup", part.cell, error, log_path, "parameters")
        if failure is not None:
            raise failure


def _execute(
    work: StepWork,
    pipeline: Pipeline,
    log_name: str,
    cells: tuple[CellRef, ...],
    namespace: dict[str, Any],
    on_cell: CellListener,
    tag: str | None = None,
) -> None:
    """Run cells as the notebook would; each cell's output is kept (the build's report shows
    it) and appended to the step's log. `tag` names the cells' role in a failure."""
    run_dir = Path(work.log_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    log_path = run_dir / f"{log_name}.log"
    for ref in cells:
        on_cell(ref.index)
        code, imports = _compiled(pipeline, ref)
        namespace.update(imports)
        failure = None
        with open(cell_output_path(run_dir, ref), "w") as out, to_log(out):
            try:
                exec(code, namespace)  # the user's own cell, as the notebook runs it
            except Exception as error:
                failure = _step_failure(pipeline, log_name, ref, error, log_path, tag)
            except SystemExit as error:  # `exit()` in a cell ends the step, not the process
                failure = _step_failure(pipeline, log_name, ref, error, log_path, tag)
                failure.message = f"the cell called sys.exit({error.code!r})."
        with open(log_path, "a") as log:
            log.write(cell_output_path(run_dir, ref).read_text())
        if failure is not None:
            raise failure


def cell_output_path(run_dir: Path, ref: CellRef) -> Path:
    return run_dir / f"cell-{ref.index}.out"


def cell_filename(pipeline: Pipeline, ref: CellRef) -> str:
    return f"<{pipeline.notebook.display_name} cell {ref.index}>"


def cell_where(pipeline: Pipeline, index: int, tag: str) -> str:
    """`churn.ipynb cell 11 [step:train]`: how every message names a cell."""
    return f"{pipeline.notebook.display_name} cell {index} [{tag}]"


def work_where(pipeline: Pipeline, work: StepWork, cell: int | None = None) -> str:
    """Where an executor says work failed that no cell raised in (a time limit, a dead
    worker): the cell it was in when known (a setup cell, while setup ran), else its first."""
    cells, tag = _cells_and_tag(pipeline, work)
    if cell is not None and cell not in cells:
        tag = "setup" if any(ref.index == cell for ref in pipeline.setup) else "parameters"
    index = cell if cell is not None else (cells[0] if cells else None)
    if index is None:
        return pipeline.notebook.display_name
    return cell_where(pipeline, index, tag)


def work_cells(pipeline: Pipeline, work: StepWork) -> tuple[int, ...]:
    """The indexes of the cells the work runs (not setup's)."""
    return _cells_and_tag(pipeline, work)[0]


def _cells_and_tag(pipeline: Pipeline, work: StepWork) -> tuple[tuple[int, ...], str]:
    if work.kind == STEP:
        refs, tag = pipeline.step(work.step).cells, f"step:{work.step}"
    elif work.kind == TEST:
        refs, tag = pipeline.tests[work.test].cells, "test"
    else:
        refs, tag = pipeline.metrics.cells, "metrics"
    return tuple(ref.index for ref in refs), tag


def _compiled(pipeline: Pipeline, ref: CellRef) -> tuple[Any, dict[str, Any]]:
    """The cell as plain Python (the code a build generates), with the cell's line numbers."""
    source = pipeline.notebook.cells[ref.index].source
    plain = pipeline.code(ref).plain
    filename = cell_filename(pipeline, ref)
    tree = _tree_with_cell_lines(plain, _dropped_lines(source), filename)
    # Tracebacks then show the cell's own lines.
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    imports = {
        name or module: getattr(importlib.import_module(module), name)
        if name
        else importlib.import_module(module)
        for module, name in plain.imports
    }
    # dont_inherit: the cell runs with its own __future__ imports, not this module's.
    return compile(tree, filename, "exec", dont_inherit=True), imports


def _tree_with_cell_lines(plain: PlainPython, dropped: int, filename: str) -> ast.Module:
    """The code's tree numbered as the cell's lines: the analysed tree itself for a cell run
    as written; a fresh parse, moved down, for code after a cell magic or converted."""
    if plain.syntax is not None and plain.syntax[1] == dropped and not plain.source_lines:
        return plain.syntax[0]
    return plain.in_cell_lines(ast.parse(plain.code, filename), dropped)


def _dropped_lines(source: str) -> int:
    """How many leading lines plain_python drops: blanks, `#| nbops:` lines, a `%%time` line."""
    lines = source.split("\n")
    count = 0
    while count < len(lines) and (not lines[count].strip() or OPTION_LINE.match(lines[count])):
        count += 1
    if count < len(lines) and lines[count].startswith("%%"):
        return count + 1 + _dropped_lines("\n".join(lines[count + 1 :]))
    return count


def _step_failure(
    pipeline: Pipeline,
    step: str,
    ref: CellRef,
    error: BaseException,
    log_path: Path,
    tag: str | None = None,
) -> StepFailed:
    frames = traceback.extract_tb(error.__traceback__)
    ours = cell_filename(pipeline, ref)
    lines = [f.lineno for f in frames if f.filename == ours and f.lineno is not None]
    user_frames = frames[next((i for i, f in enumerate(frames) if f.filename == ours), 0) :]
    details = "".join(traceback.format_list(user_frames)) + "".join(
        traceback.format_exception_only(type(error), error)
    )
    line = f" line {lines[-1]}" if lines else ""
    tag = tag or ("setup" if step == "setup" else f"step:{step}")
    summary = "".join(traceback.format_exception_only(type(error), error)).strip()
    return StepFailed(
        f"{summary}",
        where=cell_where(pipeline, ref.index, tag) + line,
        fix=f"Fix the cell and run again: steps before it are cached. (log: {log_path})",
        details=details,
    )


def _fingerprints(namespace: dict[str, Any], names: list[str]) -> dict[str, str]:
    """Digests of the inputs a step could change in place (not numbers or strings)."""
    found = {}
    for name in names:
        value = namespace.get(name)
        digest = fingerprint(value) if can_change(value) else None
        if digest is not None:
            found[name] = digest
    return found


def _changed_in_place(namespace: dict[str, Any], before: dict[str, str]) -> list[str]:
    """Inputs whose contents differ after the step: it changed them without rebinding."""
    return [
        name
        for name, digest in before.items()
        if name in namespace and fingerprint(namespace[name]) != digest
    ]


def _store_outputs(
    pipeline: Pipeline,
    store: ArtifactStore,
    step: str,
    first: CellRef | None,
    namespace: dict[str, Any],
    names: tuple[str, ...],
) -> dict[str, StoredArtifact]:
    where = f"{pipeline.notebook.display_name} cell {first.index}" if first else ""
    outputs: dict[str, StoredArtifact] = {}
    for name in names:
        if name not in namespace:
            raise StepFailed(
                f"step {step!r} did not define {name!r}, which later cells read.",
                where=where,
                fix="Make sure every path through the step assigns it.",
            )
        try:
            outputs[name] = StoredArtifact(*store.put(namespace[name]))
        except OSError as error:  # the disk, not the value: full, or over `ulimit -f`
            raise StepFailed(
                f"step {step!r} output {name!r} could not be written to the store: "
                f"{error.strerror or error}.",
                where=store.url,
                fix="Free disk space or raise the file-size limit (ulimit -f), then run again: "
                "the steps before it are cached.",
            ) from None
        except Exception as error:
            raise StepFailed(
                f"step {step!r} output {name!r} ({type(namespace[name]).__name__}) cannot "
                f"be stored: {error}",
                where=where,
                fix="Turn it into data (a list, a frame), or compute it in the step that uses it.",
            ) from None
    return outputs
