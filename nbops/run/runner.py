"""The local runner: steps in order, outputs in the artifact store, unchanged steps skipped."""

from __future__ import annotations

import ast
import hashlib
import importlib
import json
import linecache
import os
import secrets
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbops.errors import PipelineError, StepFailed
from nbops.model.parameters import parameter_code_key
from nbops.model.pipeline import CellRef, Pipeline, Step
from nbops.model.plain_python import PlainPython
from nbops.model.tags import OPTION_LINE
from nbops.run.capture import display, to_log
from nbops.run.fingerprint import can_change, fingerprint
from nbops.run.home import Home
from nbops.run.metric_values import split_metrics
from nbops.run.pids import pid_alive
from nbops.run.state import RunRecord, StateDb, StepRecord, StoredArtifact
from nbops.run.store import CorruptArtifact

# Bumped when what a cache key covers changes, so old entries stop matching.
CACHE_VERSION = 2
METRICS_STEP = "metrics"


# Called with (step name, event, record): event is "start" or "end".
Listener = Callable[[str, str, StepRecord], None]


@dataclass
class _Run:
    pipeline: Pipeline
    parameters: dict[str, Any]
    home: Home
    record: RunRecord
    db: StateDb
    listener: Listener
    values: dict[tuple[str, str], Any] = field(default_factory=dict)
    setup: dict[str, Any] | None = None
    # name -> the latest step seen changing it in place; later steps read it from there.
    changed_by: dict[str, str] = field(default_factory=dict)


def run_pipeline(
    pipeline: Pipeline,
    *,
    parameters: dict[str, Any] | None = None,
    force: bool = False,
    from_step: str | None = None,
    home: Home | None = None,
    listener: Listener | None = None,
    tests: bool = True,
) -> RunRecord:
    """Run every step (cached where nothing it depends on changed) and record the run.

    With `tests`, each step's test cells run right after it, and a failing one fails the run
    as `nbops build` and `nbops test` fail; they re-run only when what they read changed.
    """
    pipeline.raise_for_errors()
    home = home or Home.default()
    values = {p.name: p.default for p in pipeline.parameters} | (parameters or {})
    forced_from = _forced_from(pipeline, from_step, force)
    db = home.db()
    db.mark_interrupted(pid_alive)
    record = RunRecord(
        run_id=_new_run_id(),
        notebook=str(Path(pipeline.notebook.path).resolve()),
        notebook_sha256=pipeline.notebook.sha256,
        status="running",
        started_at=time.time(),
        parameters=values,
        steps=[StepRecord(step.name, "not-run") for step in pipeline.steps],
        pid=os.getpid(),
    )
    db.save_run(record)
    run = _Run(pipeline, values, home, record, db, listener or (lambda *_: None))
    try:
        for position, step in enumerate(pipeline.steps):
            _run_step(run, step, record.steps[position], force=position >= forced_from)
            if tests:
                _run_tests(run, step.name)
        record.metrics, record.metric_problems = _metrics(run)
        record.status = "succeeded"
    except StepFailed as failure:
        record.status = "failed"
        record.error = {"message": failure.render(), "details": failure.details}
        raise
    finally:
        record.ended_at = time.time()
        db.save_run(record)
    return record


def _forced_from(pipeline: Pipeline, from_step: str | None, force: bool) -> int:
    """The position from which steps re-run whatever the cache says."""
    if force:
        return 0
    if from_step is None:
        return len(pipeline.steps)
    names = [s.name for s in pipeline.steps]
    from_step = next((s.name for s in pipeline.steps if s.title == from_step), from_step)
    if from_step not in names:
        raise PipelineError(
            f"--from {from_step!r} names no step.", fix=f"Steps are: {', '.join(names)}."
        )
    return names.index(from_step)


def _run_step(run: _Run, step: Step, record: StepRecord, *, force: bool) -> None:
    static = {name: run.pipeline.producer(name, step.name) or "" for name in step.inputs}
    inputs = _effective_producers(run, static)
    input_hashes = {name: _output(run, producer, name).sha256 for name, producer in inputs.items()}
    record.cache_key = _cache_key(run, step.cells, step.parameters, input_hashes)
    run.listener(step.name, "start", record)
    cached = None if force else run.db.cached_outputs(record.cache_key)
    damaged = _damaged(run, cached or {})
    if damaged:
        listed = ", ".join(f"{step.name}.{name}" for name in damaged)
        record.note = f"re-ran: the stored {listed} was missing or did not match its sha256"
    if cached is not None and set(step.outputs) <= set(cached) and not damaged:
        record.status, record.outputs = "cached", cached
        # Outputs beyond the step's own are inputs it was seen changing when it ran.
        run.changed_by.update(dict.fromkeys(set(cached) - set(step.outputs), step.name))
    else:
        try:
            _setup_namespace(run)  # imports are not the first step's time
            started = time.perf_counter()
            namespace = _namespace(run, inputs)
            before = _fingerprints(namespace, [n for n in inputs if n not in step.writes])
            _execute(run, step.name, step.cells, namespace)
            changed = _changed_in_place(namespace, before)
            record.outputs = _store_outputs(run, step, namespace)
            record.outputs.update(_store_changed(run, step, namespace, changed))
        except StepFailed:
            record.status = "failed"
            run.listener(step.name, "end", record)
            raise
        record.duration_s = time.perf_counter() - started
        record.status = "ran"
        # Later steps read the outputs back from the store, not the objects in memory: as after
        # a cache hit or `--from`, so every way to the same inputs computes the same bytes.
        run.db.remember_outputs(record.cache_key, run.record.notebook, step.name, record.outputs)
        run.db.observe_changes(run.record.notebook, step.name, changed)
        run.changed_by.update(dict.fromkeys(changed, step.name))
    run.db.save_run(run.record)
    run.listener(step.name, "end", record)


def _effective_producers(run: _Run, producers: dict[str, str]) -> dict[str, str]:
    """Each input's producer, or the later step seen changing it in place since."""
    order = {step.name: position for position, step in enumerate(run.pipeline.steps)}
    effective = dict(producers)
    for name, producer in producers.items():
        changer = run.changed_by.get(name)
        if changer is not None and order[changer] > order.get(producer, -1):
            effective[name] = changer
    return effective


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


def _store_changed(
    run: _Run, step: Step, namespace: dict[str, Any], names: list[str]
) -> dict[str, StoredArtifact]:
    """Inputs the step changed in place, stored as its outputs: later steps read them here."""
    changed = Step(step.name, step.cells, step.reads, step.writes, outputs=tuple(names))
    return _store_outputs(run, changed, namespace) if names else {}


def _output(run: _Run, step: str, name: str) -> StoredArtifact:
    for record in run.record.steps:
        if record.name == step:
            return record.outputs[name]
    raise KeyError(f"{step}.{name}")


def _all_stored(run: _Run, outputs: dict[str, StoredArtifact]) -> bool:
    return not _damaged(run, outputs)


def _damaged(run: _Run, outputs: dict[str, StoredArtifact]) -> list[str]:
    """Outputs whose stored object is missing or no longer matches its sha256."""
    return [name for name, a in outputs.items() if not run.home.store.has(a.sha256, a.format)]


def _cache_key(
    run: _Run, cells: tuple[CellRef, ...], parameters: tuple[str, ...], inputs: dict[str, str]
) -> str:
    source = run.pipeline.notebook.cells
    material = {
        "version": CACHE_VERSION,
        "code": [source[c.index].source for c in cells],
        "setup": [source[c.index].source for c in run.pipeline.setup],
        "parameters": {name: repr(run.parameters[name]) for name in parameters},
        "inputs": inputs,
    }
    material.update(parameter_code_key(run.pipeline, run.parameters))
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def _namespace(run: _Run, inputs: dict[str, str]) -> dict[str, Any]:
    """What the step's cells see: setup's names, every parameter, and its inputs."""
    namespace = dict(_setup_namespace(run))
    namespace.update(run.parameters)
    for name, producer in inputs.items():
        namespace[name] = _value(run, producer, name)
    return namespace


def _setup_namespace(run: _Run) -> dict[str, Any]:
    """Setup runs once per run, and only when a step has to run (a fully cached run skips it)."""
    if run.setup is None:
        namespace: dict[str, Any] = {"__name__": "__main__", "display": display}
        namespace.update(run.parameters)  # setup may read parameters, as in the notebook
        _run_parameter_code(run, namespace)
        _execute(run, "setup", run.pipeline.setup, namespace)
        run.setup = {k: v for k, v in namespace.items() if k not in run.parameters}
    return run.setup


def _run_parameter_code(run: _Run, namespace: dict[str, Any]) -> None:
    """The parameters cell's statements that are not parameters, run after the values are
    injected and before setup; their output goes to the setup log."""
    log_path = run.home.log_dir(run.record.run_id) / "setup.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    for part in run.pipeline.parameter_code:
        filename = cell_filename(run.pipeline, part.cell)
        source = run.pipeline.notebook.cells[part.cell.index].source
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        failure = None
        with open(log_path, "a") as log, to_log(log):
            try:
                exec(compile(part.source, filename, "exec"), namespace)  # as papermill runs it
            except Exception as error:
                failure = _step_failure(run, "setup", part.cell, error, log_path, "parameters")
        if failure is not None:
            raise failure


def _value(run: _Run, producer: str, name: str) -> Any:
    key = (producer, name)
    if key not in run.values:
        stored = _output(run, producer, name)
        try:
            run.values[key] = run.home.store.get(stored.sha256, stored.format)
        except CorruptArtifact as error:
            raise StepFailed(
                f"the stored {producer}.{name} does not match its sha256, so it is not loaded.",
                where=str(error.path),
                fix=f"Run again with --force: step {producer!r} recomputes it.",
            ) from None
    return run.values[key]


def _run_tests(run: _Run, step: str) -> None:
    """The test cells of `step`, on the values it made; skipped when they passed on the same
    values (and code) before."""
    for test in run.pipeline.tests:
        if test.step != step:
            continue
        inputs = _effective_producers(run, dict(test.inputs))
        hashes = {name: _output(run, producer, name).sha256 for name, producer in inputs.items()}
        key = _cache_key(run, test.cells, tuple(run.parameters), hashes)
        if run.db.cached_outputs(key) is not None:
            continue
        _setup_namespace(run)
        namespace = _namespace(run, inputs)
        tag = run.pipeline.code(test.cells[0]).tag or "test"
        _execute(run, f"test-{step}", test.cells, namespace, tag=tag)
        run.db.remember_outputs(key, run.record.notebook, f"test-{step}", {})


def _execute(
    run: _Run,
    step: str,
    cells: tuple[CellRef, ...],
    namespace: dict[str, Any],
    tag: str | None = None,
) -> None:
    """Run cells as the notebook would; each cell's output is kept (the build's report shows
    it) and appended to the step's log. `tag` names the cells' role in a failure."""
    run_dir = run.home.log_dir(run.record.run_id)
    run_dir.mkdir(parents=True, exist_ok=True)
    log_path = run_dir / f"{step}.log"
    for ref in cells:
        code, imports = _compiled(run.pipeline, ref)
        namespace.update(imports)
        failure = None
        with open(cell_output_path(run_dir, ref), "w") as out, to_log(out):
            try:
                exec(code, namespace)  # the user's own cell, as the notebook runs it
            except Exception as error:
                failure = _step_failure(run, step, ref, error, log_path, tag)
        with open(log_path, "a") as log:
            log.write(cell_output_path(run_dir, ref).read_text())
        if failure is not None:
            raise failure


def cell_output_path(run_dir: Path, ref: CellRef) -> Path:
    return run_dir / f"cell-{ref.index}.out"


def cell_filename(pipeline: Pipeline, ref: CellRef) -> str:
    return f"<{pipeline.notebook.display_name} cell {ref.index}>"


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
    run: _Run, step: str, ref: CellRef, error: Exception, log_path: Path, tag: str | None = None
) -> StepFailed:
    frames = traceback.extract_tb(error.__traceback__)
    ours = cell_filename(run.pipeline, ref)
    lines = [f.lineno for f in frames if f.filename == ours and f.lineno is not None]
    user_frames = frames[next((i for i, f in enumerate(frames) if f.filename == ours), 0) :]
    details = "".join(traceback.format_list(user_frames)) + "".join(
        traceback.format_exception_only(type(error), error)
    )
    line = f" line {lines[-1]}" if lines else ""
    tag = tag or ("setup" if step == "setup" else f"step:{step}")
    where = f"{run.pipeline.notebook.display_name} cell {ref.index} [{tag}]{line}"
    summary = "".join(traceback.format_exception_only(type(error), error)).strip()
    return StepFailed(
        f"{summary}",
        where=where,
        fix=f"Fix the cell and run again: steps before it are cached. (log: {log_path})",
        details=details,
    )


def _store_outputs(run: _Run, step: Step, namespace: dict[str, Any]) -> dict[str, StoredArtifact]:
    outputs: dict[str, StoredArtifact] = {}
    for name in step.outputs:
        if name not in namespace:
            raise StepFailed(
                f"step {step.name!r} did not define {name!r}, which later cells read.",
                where=f"{run.pipeline.notebook.display_name} cell {step.cells[0].index}",
                fix="Make sure every path through the step assigns it.",
            )
        try:
            digest, fmt = run.home.store.put(namespace[name])
        except OSError as error:  # the disk, not the value: full, or over `ulimit -f`
            raise StepFailed(
                f"step {step.name!r} output {name!r} could not be written to the store: "
                f"{error.strerror or error}.",
                where=str(run.home.store.root),
                fix="Free disk space or raise the file-size limit (ulimit -f), then run again: "
                "the steps before it are cached.",
            ) from None
        except Exception as error:
            raise StepFailed(
                f"step {step.name!r} output {name!r} ({type(namespace[name]).__name__}) cannot "
                f"be stored: {error}",
                where=f"{run.pipeline.notebook.display_name} cell {step.cells[0].index}",
                fix="Turn it into data (a list, a frame), or compute it in the step that uses it.",
            ) from None
        outputs[name] = StoredArtifact(digest, fmt)
    return outputs


def _metrics(run: _Run) -> tuple[dict[str, float], dict[str, str]]:
    """The metrics and why other values the metrics cells name are none (metric_values.py),
    cached like a step: their cells, setup, parameters and input hashes."""
    metrics = run.pipeline.metrics
    if not metrics.names:
        return {}, {}
    inputs = _effective_producers(run, dict(metrics.inputs))
    hashes = {name: _output(run, producer, name).sha256 for name, producer in inputs.items()}
    key = _cache_key(run, metrics.cells, tuple(run.parameters), hashes)
    cached = run.db.cached_outputs(key)
    if cached and METRICS_STEP in cached and _all_stored(run, cached):
        stored = cached[METRICS_STEP]
        values, problems = run.home.store.get(stored.sha256, stored.format)
        return values, problems
    namespace = _namespace(run, inputs)
    _execute(run, METRICS_STEP, metrics.cells, namespace)
    values, problems = split_metrics(namespace, metrics.names)
    stored = StoredArtifact(*run.home.store.put((values, problems)))
    run.db.remember_outputs(key, run.record.notebook, METRICS_STEP, {METRICS_STEP: stored})
    return values, problems


def _new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)
