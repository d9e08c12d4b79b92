"""One step of the churn pipeline in a process of its own, as an orchestrator (Kubeflow,
Airflow) runs it: `python -m pipeline step NAME --run-id ID --store URL [-p NAME=VALUE ...]
[--result FILE] [--logs DIR]`.

The step reads its inputs from the store (a folder or an fsspec URL shared by every task): the
outputs each producer recorded for the same run ID. It runs as in `python -m pipeline`, stores
its outputs, records them under `run-<sha256 of the run ID, 32 hex>-<step>` in the store's key
index, and prints a JSON result. `metrics` is the step that computes the metrics. Exit codes:
0 done, 1 the step failed or its inputs are not there, 2 a usage error.

Generated from churn.ipynb by nbops 0.1.0; edit the notebook, not this file.
"""

import argparse
import difflib
import hashlib
import json
import re
import sys
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from . import dag
from .capture import step_log
from .metric_values import metric_warning, split_metrics
from .runner import (
    StepFailed,
    arguments,
    call,
    parse_parameter,
    run_setup,
    set_parameters,
    stdout_to_stderr,
    stored,
)
from .store import ArtifactStore, CorruptArtifact, Outputs, open_store

METRICS = "metrics"  # the step that computes the metrics, after the steps it reads
PLAIN_NAME = re.compile(r"[0-9A-Za-z_]{1,100}")  # a step name a record key can hold as it is


def main(argv: Sequence[str]) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.step not in step_names():
        parser.error(unknown_step(args.step))
    try:
        set_parameters(dict(parse_parameter(text) for text in args.param))
    except ValueError as error:
        parser.error(str(error))
    try:
        store = open_store(args.store)
    except (ImportError, OSError, ValueError) as error:
        parser.error(f"cannot open the store {args.store}: {error}")
    try:
        with stdout_to_stderr():
            result = run_step(store, args.step, args.run_id, Path(args.logs))
    except StepFailed as failure:
        sys.stdout.flush()
        if failure.__cause__ is not None:  # the user's code raised: show where
            traceback.print_exception(failure.__cause__)
        print(f"error: {failure}", file=sys.stderr)
        return 1
    text = json.dumps(result, indent=2)
    print(text)
    if args.result:
        Path(args.result).parent.mkdir(parents=True, exist_ok=True)
        Path(args.result).write_text(text + "\n", encoding="utf-8")
    for name, problem in result.get("metric_problems", {}).items():
        print(f"warning: {metric_warning(name, problem)}", file=sys.stderr)
    return 0


def run_step(store: ArtifactStore, name: str, run_id: str, logs: Path) -> dict[str, Any]:
    """Run one step (or the metrics) of the run `run_id`; its JSON result."""
    if name == METRICS and name not in {step.name for step in dag.STEPS}:
        return run_metrics(store, run_id, logs)
    (step,) = (step for step in dag.STEPS if step.name == name)
    values = read_inputs(store, run_id, step.name, step.inputs)
    run_setup(logs)
    given = arguments(step.inputs, step.parameters, values)
    with step_log(logs / f"{step.name}.log"):
        outputs, seconds = call(f"step {step.name!r}", step.cells, step.load, given)
    made = {output: stored(store, step.name, output, outputs[output]) for output in step.outputs}
    store.remember(record_key(run_id, step.name), made)
    return {
        "step": step.name,
        "run_id": run_id,
        "outputs": {output: digest for output, (digest, _) in made.items()},
        "formats": {output: fmt for output, (_, fmt) in made.items()},
        "seconds": round(seconds, 3),
    }


def run_metrics(store: ArtifactStore, run_id: str, logs: Path) -> dict[str, Any]:
    """Compute the metrics of the run `run_id` from the outputs its steps recorded."""
    found: dict[str, Any] = {}
    names: tuple[str, ...] = ()
    seconds = 0.0
    if dag.METRICS is not None:
        names = dag.METRICS.names
        values = read_inputs(store, run_id, METRICS, dag.METRICS.inputs)
        run_setup(logs)
        given = arguments(dag.METRICS.inputs, dag.METRICS.parameters, values)
        with step_log(logs / "metrics.log"):
            found, seconds = call("the metrics", dag.METRICS.cells, dag.METRICS.load, given)
    metrics, problems = split_metrics(found, names)
    store.remember(record_key(run_id, METRICS), {})
    return {
        "step": METRICS,
        "run_id": run_id,
        "outputs": {},
        "formats": {},
        "seconds": round(seconds, 3),
        "metrics": metrics,
        "metric_problems": problems,
    }


def read_inputs(
    store: ArtifactStore, run_id: str, step: str, inputs: Mapping[str, str]
) -> dict[tuple[str, str], Any]:
    """{(producer, name): value} for each input, as its producer recorded it for this run."""
    records: dict[str, Outputs | None] = {}
    values: dict[tuple[str, str], Any] = {}
    for name, producer in inputs.items():
        if producer not in records:
            records[producer] = store.recall(record_key(run_id, producer))
        record = records[producer]
        if record is None or name not in record:
            raise StepFailed(not_ready(step, name, producer, run_id, store, record is None))
        digest, fmt = record[name]
        try:
            values[(producer, name)] = store.get(digest, fmt)
        except (CorruptArtifact, OSError) as error:
            where = store.location(digest, fmt)
            message = f"step {step!r} cannot read {name!r} (made by step {producer!r}, {where})"
            raise StepFailed(f"{message}: {error}. Run step {producer!r} again.") from None
    return values


def not_ready(
    step: str, name: str, producer: str, run_id: str, store: ArtifactStore, never_ran: bool
) -> str:
    """Why an input is missing, and the command that makes it."""
    command = f"python -m pipeline step {producer} --run-id {run_id} --store {store.url}"
    if never_ran:
        state = f"which has not run for run ID {run_id!r}"
    else:
        state = f"which ran for run ID {run_id!r} without making it (another build?)"
    return f"step {step!r} needs {name!r} from step {producer!r}, {state}: run `{command}` first."


def record_key(run_id: str, step: str) -> str:
    """The key a step's outputs are recorded under for a run: `run-<run ID's sha256, 32 hex>-
    <step>`. Run IDs hold anything (`manual__2026-12-01T10:00:00+00:00`); keys may not."""
    digest = hashlib.sha256(run_id.encode()).hexdigest()[:32]
    if not PLAIN_NAME.fullmatch(step):
        step = hashlib.sha256(step.encode()).hexdigest()[:32]
    return f"run-{digest}-{step}"


def step_names() -> list[str]:
    """What `python -m pipeline step` runs, in run order: the steps, then the metrics."""
    return list(dict.fromkeys([*(step.name for step in dag.STEPS), METRICS]))


def unknown_step(name: str) -> str:
    close = difflib.get_close_matches(name, step_names(), n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"there is no step {name!r}; {hint}steps are: {', '.join(step_names())}"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline step",
        description="Run one step of the churn pipeline (generated from churn.ipynb by "
        "nbops) for a run, reading its inputs from the steps that ran before it for that run.",
        epilog=f"steps: {', '.join(step_names())}",
    )
    parser.add_argument("step", metavar="NAME", help="the step to run, or `metrics`")
    parser.add_argument(
        "--run-id",
        required=True,
        metavar="ID",
        help="the run this step belongs to; every step of one run is given the same ID",
    )
    parser.add_argument(
        "--store",
        required=True,
        metavar="URL",
        help="the artifact store every step of the run shares: a folder or an fsspec URL",
    )
    parser.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a parameter (repeatable); VALUE is read as a Python literal, else as text",
    )
    parser.add_argument("--result", metavar="FILE", help="also write the JSON result to this file")
    parser.add_argument(
        "--logs",
        default=".pipeline-logs",
        metavar="DIR",
        help="where the step's log goes, as <step>.log (default: %(default)s)",
    )
    return parser
