"""Run the regression pipeline: `python -m pipeline [--param NAME=VALUE ...] [--store DIR] [--json]`.

Steps run in order. Each output goes to a content-addressed artifact store (its name is its
sha256) and, in memory, to the steps that read it; then the metrics are computed. What the setup
code, each step and the metrics print, display and warn goes to `<logs>/<step>.log`, as in
`nbops run`. `python -m pipeline step NAME --run-id ID --store URL` runs one step (task.py).

Generated from regression.ipynb by nbops 0.1.0; edit the notebook, not this file.
"""

import argparse
import json
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import dag, parameters, task
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
from .store import ArtifactStore


def main(argv: Sequence[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else list(argv)
    if words[:1] == ["step"]:
        return task.main(words[1:])
    parser = _parser()
    args = parser.parse_args(words)
    try:
        overrides = dict(parse_parameter(text) for text in args.param)
    except ValueError as error:
        parser.error(str(error))
    set_parameters(overrides)
    store = ArtifactStore(args.store)
    try:
        if args.json:
            with stdout_to_stderr():
                result = run(store, Path(args.logs), report=lambda line: None)
            print(json.dumps(result, indent=2))
        else:
            result = run(store, Path(args.logs))
            for name, value in result["metrics"].items():
                print(f"{name} = {value:.6g}")
            print(f"artifacts stored in {args.store}, logs in {args.logs}")
        for name, problem in result["metric_problems"].items():
            print(f"warning: {metric_warning(name, problem)}", file=sys.stderr)
    except StepFailed as failure:
        sys.stdout.flush()
        traceback.print_exception(failure.__cause__ or failure)
        print(f"error: {failure}", file=sys.stderr)
        return 1
    return 0


def run(store: ArtifactStore, logs: Path, report: Callable[[str], None] = print) -> dict[str, Any]:
    """Run every step in order: {"steps": {step: {artifact: sha256}}, "metrics": {name: value},
    "metric_problems": {name: why it is not a number}}."""
    run_setup(logs)  # setup runs once, before the steps
    values: dict[tuple[str, str], Any] = {}  # (step, artifact) -> the value that step made
    hashes: dict[str, dict[str, str]] = {}
    width = max((len(step.name) for step in dag.STEPS), default=0)
    for step in dag.STEPS:
        given = arguments(step.inputs, step.parameters, values)
        with step_log(logs / f"{step.name}.log"):
            outputs, seconds = call(f"step {step.name!r}", step.cells, step.load, given)
        hashes[step.name] = {}
        for name in step.outputs:
            # Later steps read the value back from the store, as `nbops run` does: the same
            # inputs, to the byte, whether a step runs after another or on its own.
            digest, fmt = stored(store, step.name, name, outputs[name])
            values[(step.name, name)] = store.get(digest, fmt)
            hashes[step.name][name] = digest
        report(f"{step.name:<{width}}  {seconds:7.2f} s  {', '.join(step.outputs) or '-'}")
    metrics: dict[str, float] = {}
    problems: dict[str, str] = {}
    if dag.METRICS is not None:
        given = arguments(dag.METRICS.inputs, dag.METRICS.parameters, values)
        with step_log(logs / "metrics.log"):
            found, _ = call("the metrics", dag.METRICS.cells, dag.METRICS.load, given)
        metrics, problems = split_metrics(found, dag.METRICS.names)
    return {"steps": hashes, "metrics": metrics, "metric_problems": problems}


def _parser() -> argparse.ArgumentParser:
    defaults = ", ".join(f"{name}={value!r}" for name, value in parameters.PARAMETERS.items())
    parser = argparse.ArgumentParser(
        prog="python -m pipeline",
        description="Run the regression pipeline, generated from regression.ipynb by nbops.",
        epilog=f"parameters: {defaults or 'none'}. Run one step, as an orchestrator does: "
        "python -m pipeline step NAME --run-id ID --store URL (see python -m pipeline step -h)",
    )
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a parameter (repeatable); VALUE is read as a Python literal, else as text",
    )
    parser.add_argument(
        "--store",
        default=".pipeline-store",
        metavar="DIR",
        help="the artifact store's folder (default: %(default)s)",
    )
    parser.add_argument(
        "--logs",
        default=".pipeline-logs",
        metavar="DIR",
        help="where each step's log goes, as <step>.log (default: %(default)s)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print each step's artifact hashes and the metrics as JSON",
    )
    return parser


if __name__ == "__main__":
    sys.exit(main())
