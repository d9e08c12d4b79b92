"""Run the kale_dialect pipeline: `python -m pipeline [--param NAME=VALUE ...] [--store DIR] [--json]`.

Steps run in order. Each output goes to a content-addressed artifact store (its name is its
sha256) and, in memory, to the steps that read it; then the metrics are computed. What the setup
code, each step and the metrics print, display and warn goes to `<logs>/<step>.log`, as in
`nbops run`.

Generated from kale_dialect.ipynb by nbops 0.1.0; edit the notebook, not this file.
"""

import argparse
import ast
import contextlib
import difflib
import importlib
import json
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from . import dag, parameters
from .capture import step_log
from .metric_values import metric_warning, split_metrics
from .store import ArtifactStore


class StepFailed(Exception):
    """A step (or the metrics) raised; the message names it and its notebook cells."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        overrides = dict(_parameter(text) for text in args.param)
    except ValueError as error:
        parser.error(str(error))
    _set_parameters(overrides)
    store = ArtifactStore(args.store)
    try:
        if args.json:
            with _stdout_to_stderr():
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
    with step_log(logs / "setup.log"):
        importlib.import_module(".shared", __package__)  # setup runs once, before the steps
    values: dict[tuple[str, str], Any] = {}  # (step, artifact) -> the value that step made
    hashes: dict[str, dict[str, str]] = {}
    width = max((len(step.name) for step in dag.STEPS), default=0)
    for step in dag.STEPS:
        arguments = _arguments(step.inputs, step.parameters, values)
        with step_log(logs / f"{step.name}.log"):
            outputs, seconds = _call(f"step {step.name!r}", step.cells, step.load, arguments)
        hashes[step.name] = {}
        for name in step.outputs:
            # Later steps read the value back from the store, as `nbops run` does: the same
            # inputs, to the byte, whether a step runs after another or on its own.
            digest, fmt = _stored(store, step.name, name, outputs[name])
            values[(step.name, name)] = store.get(digest, fmt)
            hashes[step.name][name] = digest
        report(f"{step.name:<{width}}  {seconds:7.2f} s  {', '.join(step.outputs) or '-'}")
    metrics: dict[str, float] = {}
    problems: dict[str, str] = {}
    if dag.METRICS is not None:
        arguments = _arguments(dag.METRICS.inputs, dag.METRICS.parameters, values)
        with step_log(logs / "metrics.log"):
            found, _ = _call("the metrics", dag.METRICS.cells, dag.METRICS.load, arguments)
        metrics, problems = split_metrics(found, dag.METRICS.names)
    return {"steps": hashes, "metrics": metrics, "metric_problems": problems}


def _stored(store: ArtifactStore, step: str, name: str, value: Any) -> tuple[str, str]:
    """The value's sha256 and format, once stored; a value the store cannot hold stops the run."""
    try:
        return store.put(value)
    except Exception as error:
        kind = type(value).__name__
        message = f"step {step!r} output {name!r} ({kind}) cannot be stored: {error}"
        raise StepFailed(message) from error


def _arguments(
    inputs: Mapping[str, str], names: Sequence[str], values: Mapping[tuple[str, str], Any]
) -> dict[str, Any]:
    arguments = {name: values[(producer, name)] for name, producer in inputs.items()}
    arguments.update((name, parameters.PARAMETERS[name]) for name in names)
    return arguments


def _call(
    what: str, cells: Sequence[int], load: Callable[[], Callable[..., Any]], arguments: Any
) -> tuple[Any, float]:
    """The function's result and how long it took, not counting its module's first import."""
    try:
        function = load()
        started = time.perf_counter()
        return function(**arguments), time.perf_counter() - started
    except Exception as error:
        where = f"cell{'s' if len(cells) > 1 else ''} {', '.join(map(str, cells))}"
        message = f"{what} (notebook {where}) raised {type(error).__name__}: {error}"
        raise StepFailed(message) from error


def _parameter(text: str) -> tuple[str, Any]:
    """`NAME=VALUE`: the value read as a Python literal, else as text, checked by name and type."""
    name, sep, raw = text.partition("=")
    name = name.strip()
    known = parameters.PARAMETERS
    if not sep or not name:
        raise ValueError(f"--param {text!r} is not NAME=VALUE")
    if name not in known:
        close = difflib.get_close_matches(name, list(known), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        listing = ", ".join(known) or "none"
        raise ValueError(f"there is no parameter {name!r}; {hint}parameters are: {listing}")
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        value = raw  # a bare word is text, as on papermill's command line
    return name, _typed(name, value, raw)


def _typed(name: str, value: Any, raw: str) -> Any:
    """The value as the parameter's default is typed: 1 for a float is 1.0, 7 for a str "7"."""
    default = parameters.PARAMETERS[name]
    if isinstance(default, str):
        return value if isinstance(value, str) else raw
    if type(default) is float and type(value) is int:
        return float(value)
    if type(default) in (bool, int, float) and type(value) is not type(default):
        kind = type(default).__name__
        raise ValueError(f"parameter {name!r} is {kind} (default {default!r}), and {raw!r} is not")
    return value


def _set_parameters(values: Mapping[str, Any]) -> None:
    # shared.py may read parameters when it is first imported, which happens after this:
    # steps are imported only when they run.
    for name, value in values.items():
        parameters.PARAMETERS[name] = value
        setattr(parameters, name, value)


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """Send what the steps print, and their subprocesses' output, to stderr; stdout is JSON."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _parser() -> argparse.ArgumentParser:
    defaults = ", ".join(f"{name}={value!r}" for name, value in parameters.PARAMETERS.items())
    parser = argparse.ArgumentParser(
        prog="python -m pipeline",
        description="Run the kale_dialect pipeline, generated from kale_dialect.ipynb by nbops.",
        epilog=f"parameters: {defaults or 'none'}",
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
