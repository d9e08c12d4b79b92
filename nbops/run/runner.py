"""The runner: which steps run, in what order, cached or not, and the run's record.

An executor (nbops/run/executors/) runs each piece of work; the runner decides. A step is
submitted once the steps it reads from are done; independent steps run side by side, as many
as the executor has slots. What the run computes does not depend on that: a step's result
counts once every earlier step that could have changed its inputs in place is done and the
inputs it ran on are still the ones the notebook's order gives it; otherwise it runs again.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbops.errors import NbopsError, PipelineError, StepFailed
from nbops.model.parameters import parameter_code_key
from nbops.model.pipeline import CellRef, Pipeline, Step
from nbops.run.comparison import code_cells
from nbops.run.datafiles import data_file_hashes
from nbops.run.executors import Executor
from nbops.run.home import Home
from nbops.run.libraries import library_versions, local_modules
from nbops.run.pids import pid_alive
from nbops.run.state import RunRecord, StateDb, StepRecord, StoredArtifact
from nbops.run.work import METRICS, METRICS_OUTPUT, STEP, TEST, StepWork, WorkResult
from nbops.run.work import cell_filename as cell_filename
from nbops.run.work import cell_output_path as cell_output_path

# Bumped when what a cache key covers changes, so old entries stop matching. 3: a step's key
# covers the versions of the distributions it imports and its data files' contents.
CACHE_VERSION = 3
METRICS_STEP = METRICS_OUTPUT
POLL_S = 0.25  # how often the progress hears about running steps while none ends

# Called with (step name, event, record): event is "start" or "end".
Listener = Callable[[str, str, StepRecord], None]


class RunCancelled(NbopsError):
    """The run was stopped (Ctrl-C, or a cancel from the sidebar); running steps were killed."""

    exit_code = 130


@dataclass
class _Submitted:
    """Work the executor has, with the input hashes and cache key it was given."""

    work: StepWork
    key: str
    inputs: dict[str, str]


@dataclass
class _Run:
    pipeline: Pipeline
    parameters: dict[str, Any]
    home: Home
    record: RunRecord
    db: StateDb
    listener: Listener
    executor: Executor
    forced_from: int
    tests: bool
    step_timeout: float | None
    order: dict[str, int] = field(default_factory=dict)
    # name -> [(position, step)] of the steps seen changing it in place, once they count.
    changers: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    final: set[str] = field(default_factory=set)  # steps whose results count
    # Steps that ran (or were found cached), with the input hashes they ran on, whose inputs
    # an earlier step still running may yet change in place.
    provisional: dict[str, dict[str, str]] = field(default_factory=dict)
    submitted: dict[str, _Submitted] = field(default_factory=dict)  # by work name
    tests_done: set[int] = field(default_factory=set)
    failures: list[tuple[int, StepFailed]] = field(default_factory=list)

    def step_record(self, name: str) -> StepRecord:
        return self.record.steps[self.order[name]]


def run_pipeline(
    pipeline: Pipeline,
    *,
    parameters: dict[str, Any] | None = None,
    force: bool = False,
    from_step: str | None = None,
    home: Home | None = None,
    listener: Listener | None = None,
    tests: bool = True,
    executor: Executor | None = None,
    step_timeout: float | None = None,
) -> RunRecord:
    """Run every step (cached where nothing it depends on changed) and record the run.

    With `tests`, each step's test cells run right after it, and a failing one fails the run
    as `nbops build` and `nbops test` fail; they re-run only when what they read changed.
    `executor` runs the work (inline when none is given; a given one is not closed here).
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
        cells=code_cells(pipeline),
    )
    db.save_run(record)
    owned = executor is None
    if executor is None:
        from nbops.run.executors.inline import InlineExecutor

        executor = InlineExecutor()
    run = _Run(
        pipeline,
        values,
        home,
        record,
        db,
        listener or (lambda *_: None),
        executor,
        forced_from,
        tests,
        step_timeout,
        order={step.name: position for position, step in enumerate(pipeline.steps)},
    )
    try:
        executor.start(pipeline)
        _schedule(run)
        record.metrics, record.metric_problems = _metrics(run)
        record.status = "succeeded"
    except StepFailed as failure:
        record.status = "failed"
        record.error = {"message": failure.render(), "details": failure.details}
        raise
    except (KeyboardInterrupt, RunCancelled):
        _cancel(run)
        record.status = "cancelled"
        record.error = {"message": "cancelled", "details": ""}
        raise RunCancelled(
            "the run was cancelled; the steps that were running were stopped.",
            fix="Run again: the steps that finished are cached.",
        ) from None
    finally:
        record.ended_at = time.time()
        if owned:
            executor.close()
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


def _schedule(run: _Run) -> None:
    """Submit what is ready, collect what ended, until every step and test counts or one
    failed (then the running ones finish, nothing new starts, and the first failure raises)."""
    while True:
        if not run.failures:
            _submit_ready(run)
        if not run.submitted:
            break
        for result in run.executor.wait(POLL_S):
            _collect(run, result)
        _settle(run)
    if run.failures:
        raise min(run.failures, key=lambda failure: failure[0])[1]


def _submit_ready(run: _Run) -> None:
    """Fill the executor's free slots with ready work, earliest in the notebook first; a step
    found in the cache counts at once, so look again until nothing more is ready."""
    progressed = True
    while progressed and len(run.submitted) < run.executor.slots:
        progressed = False
        for _position, kind, index in _ready(run):
            if len(run.submitted) >= run.executor.slots:
                return
            if kind == STEP:
                progressed |= _start_step(run, run.pipeline.steps[index])
            else:
                progressed |= _start_test(run, index)
            _settle(run)


def _ready(run: _Run) -> list[tuple[int, str, int]]:
    """(position, kind, index) of the steps and test cells that can start, in notebook order,
    a step's tests right after it (one at a time), or steps before tests (side by side)."""
    busy = set(run.submitted)  # step names, and test-<index>
    found: list[tuple[int, str, int]] = []
    for position, step in enumerate(run.pipeline.steps):
        if step.name in run.final or step.name in run.provisional or step.name in busy:
            continue
        if all(source in run.final for source in _sources(run, step)):
            found.append((position, STEP, position))
    if run.tests:
        for index, test in enumerate(run.pipeline.tests):
            if index in run.tests_done or test.step is None or f"test-{index}" in busy:
                continue
            upto = run.order[test.step]
            if all(s.name in run.final for s in run.pipeline.steps[: upto + 1]):
                found.append((upto, TEST + "s", index))
    if run.executor.slots > 1:  # steps first: the next step takes the warm worker, not a test
        return sorted(found, key=lambda item: (item[1] != STEP, item[0]))
    return sorted(found)


def _sources(run: _Run, step: Step) -> set[str]:
    """The steps `step` waits for: those it reads from (or is ordered after), and those seen
    changing its inputs in place before it."""
    sources = {e.source for e in run.pipeline.edges if e.target == step.name}
    position = run.order[step.name]
    for name in step.inputs:
        sources.update(s for p, s in run.changers.get(name, ()) if p < position)
    return sources


def _start_step(run: _Run, step: Step) -> bool:
    """Submit the step, or take it from the cache; True when it counts already."""
    record = run.step_record(step.name)
    producers = {name: run.pipeline.producer(name, step.name) or "" for name in step.inputs}
    inputs = _input_hashes(run, producers, run.order[step.name])
    hashes = {name: a.sha256 for name, a in inputs.items()}
    record.provenance = provenance(run.pipeline, step, run.db)
    record.cache_key = key = _cache_key(run, step.cells, step.parameters, hashes, record.provenance)
    forced = run.order[step.name] >= run.forced_from
    cached = None if forced else _cached(run, key)
    damaged = _damaged(run, cached or {})
    if damaged:
        listed = ", ".join(f"{step.name}.{name}" for name in damaged)
        record.note = f"re-ran: the stored {listed} was missing or did not match its sha256"
    if cached is not None and set(step.outputs) <= set(cached) and not damaged:
        record.status, record.outputs = "cached", cached
        run.provisional[step.name] = hashes
        run.listener(step.name, "start", record)
        return True
    work = _work(run, STEP, step.name, inputs, step_timeout(run, step))
    run.submitted[work.name] = _Submitted(work, key, hashes)
    record.status, record.started_at, record.ended_at = "running", time.time(), None
    run.listener(step.name, "start", record)
    run.executor.submit(work)
    run.db.save_run(run.record)  # `nbops runs show` sees what runs now
    return False


def provenance(pipeline: Pipeline, step: Step, db: StateDb) -> dict[str, dict[str, str]]:
    """What the step's key covers besides its code, parameters and inputs: the versions of the
    distributions it imports (as this process finds them installed), and the sha256 of its
    data files and of the notebook's own modules it imports, by path as the notebook names them
    (relative to its folder)."""
    folder = Path(pipeline.notebook.path).resolve().parent
    paths = [data.path for data in step.files_read] + local_modules(step.imports, folder)
    return {
        "libraries": library_versions(step.imports),
        "files": data_file_hashes(paths, folder, db),
    }


def step_timeout(run: _Run, step: Step) -> float | None:
    """The step's own `timeout=` option, else the run's --step-timeout."""
    return step.timeout_s if step.timeout_s is not None else run.step_timeout


def _start_test(run: _Run, index: int) -> bool:
    """Submit test cells, or skip them when they passed on the same values and code before."""
    test = run.pipeline.tests[index]
    assert test.step is not None
    position = run.order[test.step]
    inputs = _input_hashes(run, dict(test.inputs), position + 1)
    hashes = {name: a.sha256 for name, a in inputs.items()}
    key = _cache_key(run, test.cells, tuple(run.parameters), hashes)
    if _cached(run, key) is not None:
        run.tests_done.add(index)
        return True
    work = _work(run, TEST, test.step, inputs, test=index)
    run.submitted[f"test-{index}"] = _Submitted(work, key, hashes)
    run.executor.submit(work)
    return False


def _work(
    run: _Run,
    kind: str,
    step: str,
    inputs: dict[str, StoredArtifact],
    timeout: float | None = None,
    test: int = 0,
) -> StepWork:
    return StepWork(
        kind=kind,
        step=step,
        run_id=run.record.run_id,
        notebook_sha256=run.pipeline.notebook.sha256,
        parameters=run.parameters,
        inputs=inputs,
        store=run.home.store.url,
        log_dir=str(run.home.log_dir(run.record.run_id)),
        timeout_s=timeout,
        test=test,
    )


def _input_hashes(run: _Run, producers: dict[str, str], before: int) -> dict[str, StoredArtifact]:
    """Each input as the notebook's order gives it to a reader at position `before`: from the
    step that made it, or from the latest step between the two that changed it in place."""
    found = {}
    for name, producer in producers.items():
        floor = run.order.get(producer, -1)
        changed = [(p, s) for p, s in run.changers.get(name, ()) if floor < p < before]
        found[name] = _output(run, max(changed)[1] if changed else producer, name)
    return found


def _collect(run: _Run, result: WorkResult) -> None:
    """Take in ended work: a step's outputs count provisionally, a failure stops the run."""
    submitted = run.submitted.pop(_submitted_name(run, result.work))
    work = result.work
    if work.kind == TEST:
        _collect_test(run, result, submitted)
        return
    record = run.step_record(work.step)
    record.started_at, record.ended_at = result.started_at, result.ended_at
    record.duration_s, record.worker = result.duration_s, result.worker
    if result.status != "ran":
        record.status = result.status
        failure = result.failure
        assert failure is not None or result.status == "cancelled"
        if failure is not None:
            run.failures.append((run.order[work.step], failure.error()))
        run.db.save_run(run.record)
        run.listener(work.step, "end", record)
        return
    record.status, record.outputs = "ran", result.outputs
    _remember(run, submitted.key, work.step, result.outputs)
    run.db.observe_changes(run.record.notebook, work.step, result.changed)
    run.provisional[work.step] = submitted.inputs
    run.listener(work.step, "end", record)  # it ended; it counts once _settle says so


def _collect_test(run: _Run, result: WorkResult, submitted: _Submitted) -> None:
    if result.status == "ran":
        _remember(run, submitted.key, result.work.name, {})
        run.tests_done.add(result.work.test)
    elif result.failure is not None:
        run.failures.append((run.order[result.work.step], result.failure.error()))


def _submitted_name(run: _Run, work: StepWork) -> str:
    return f"test-{work.test}" if work.kind == TEST else work.name


def _settle(run: _Run) -> None:
    """Count provisional results, in notebook order, once no earlier step still running could
    change their inputs; one whose inputs did change under it is made to run again."""
    for step in run.pipeline.steps:
        ran_on = run.provisional.get(step.name)
        if ran_on is None:
            continue
        position = run.order[step.name]
        earlier = run.pipeline.steps[:position]
        if any(s.name not in run.final and set(s.inputs) & set(step.inputs) for s in earlier):
            continue
        del run.provisional[step.name]
        producers = {name: run.pipeline.producer(name, step.name) or "" for name in step.inputs}
        now = _input_hashes(run, producers, position)
        hashes = {name: a.sha256 for name, a in now.items()}
        if hashes != ran_on:  # an earlier step changed an input in place while this one ran
            record = run.step_record(step.name)
            changed = sorted(name for name in hashes if hashes[name] != ran_on.get(name))
            record.status = "not-run"
            record.note = (
                f"ran again: an earlier step changed {', '.join(changed)} in place while it ran"
            )
            continue
        _count(run, step, position)


def _count(run: _Run, step: Step, position: int) -> None:
    record = run.step_record(step.name)
    # Outputs beyond the step's own are inputs it was seen changing when it ran.
    for name in set(record.outputs) - set(step.outputs):
        run.changers.setdefault(name, []).append((position, step.name))
    run.final.add(step.name)
    run.db.save_run(run.record)
    if record.status == "cached":  # a step that ran was told ended when its result came
        run.listener(step.name, "end", record)


def _cancel(run: _Run) -> None:
    """Stop the running work; the steps it was running are recorded `cancelled`."""
    for result in run.executor.cancel():
        if result.work.kind == STEP:
            record = run.step_record(result.work.step)
            record.status, record.ended_at = "cancelled", result.ended_at
            record.started_at, record.duration_s = result.started_at, result.duration_s
    for record in run.record.steps:
        if record.status == "running":  # inline: interrupted in this very thread
            record.status, record.ended_at = "cancelled", time.time()
            record.duration_s = record.ended_at - (record.started_at or record.ended_at)


def _output(run: _Run, step: str, name: str) -> StoredArtifact:
    return run.step_record(step).outputs[name]


def _cached(run: _Run, key: str) -> dict[str, StoredArtifact] | None:
    """What the state db, or else the store's own index (a store shared with other working
    directories and machines), remembers for the cache key."""
    found = run.db.cached_outputs(key)
    if found is None:
        shared = run.home.store.recall(key)
        found = {n: StoredArtifact(*a) for n, a in shared.items()} if shared is not None else None
    return found


def _remember(run: _Run, key: str, name: str, outputs: dict[str, StoredArtifact]) -> None:
    """Remember the outputs in the state db, and in the store for whoever shares it."""
    run.db.remember_outputs(key, run.record.notebook, name, outputs)
    run.home.store.remember(key, {n: (a.sha256, a.format) for n, a in outputs.items()})


def _damaged(run: _Run, outputs: dict[str, StoredArtifact]) -> list[str]:
    """Outputs whose stored object is missing or no longer matches its sha256."""
    return [name for name, a in outputs.items() if not run.home.store.has(a.sha256, a.format)]


def _cache_key(
    run: _Run,
    cells: tuple[CellRef, ...],
    parameters: tuple[str, ...],
    inputs: dict[str, str],
    covered: dict[str, dict[str, str]] | None = None,
) -> str:
    """The key a step (or test or metrics cells) is cached under; `covered` is the step's
    `provenance`: library versions and data files' hashes."""
    source = run.pipeline.notebook.cells
    material = {
        "version": CACHE_VERSION,
        "code": [source[c.index].source for c in cells],
        "setup": [source[c.index].source for c in run.pipeline.setup],
        "parameters": {name: repr(run.parameters[name]) for name in parameters},
        "inputs": inputs,
        "libraries": {},
        "files": {},
    }
    material.update(covered or {})
    material.update(parameter_code_key(run.pipeline, run.parameters))
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def _metrics(run: _Run) -> tuple[dict[str, float], dict[str, str]]:
    """The metrics and why other values the metrics cells name are none (metric_values.py),
    cached like a step: their cells, setup, parameters and input hashes."""
    metrics = run.pipeline.metrics
    if not metrics.names:
        return {}, {}
    inputs = _input_hashes(run, dict(metrics.inputs), len(run.pipeline.steps))
    hashes = {name: a.sha256 for name, a in inputs.items()}
    key = _cache_key(run, metrics.cells, tuple(run.parameters), hashes)
    cached = _cached(run, key)
    if not (cached and METRICS_STEP in cached and not _damaged(run, cached)):
        work = _work(run, METRICS, "", inputs)
        run.submitted[work.name] = _Submitted(work, key, hashes)
        run.executor.submit(work)
        result = _one_result(run)
        if result.status != "ran":
            assert result.failure is not None
            raise result.failure.error()
        cached = result.outputs
        _remember(run, key, METRICS_STEP, cached)
    stored = cached[METRICS_STEP]
    values, problems = run.home.store.get(stored.sha256, stored.format)
    return values, problems


def _one_result(run: _Run) -> WorkResult:
    while True:
        for result in run.executor.wait(POLL_S):
            run.submitted.pop(result.work.name, None)
            return result


def _new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)
