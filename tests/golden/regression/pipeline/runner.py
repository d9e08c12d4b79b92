"""How one step of the regression pipeline runs, whether `python -m pipeline` runs them all or an
orchestrator runs one with `python -m pipeline step`: the parameters given on the command line,
the setup code, the call that names the step's notebook cells when it fails, the stored outputs.

Generated from regression.ipynb by nbops 0.1.0; edit the notebook, not this file.
"""

import ast
import contextlib
import difflib
import importlib
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from . import parameters
from .capture import step_log
from .store import ArtifactStore


class StepFailed(Exception):
    """A step (or the metrics) raised, or cannot run; the message names it and its notebook
    cells, or says which command to run first."""


def run_setup(logs: Path) -> None:
    """Import shared.py, which runs the setup code once, logging what it prints to setup.log."""
    with step_log(logs / "setup.log"):
        importlib.import_module(".shared", __package__)


def arguments(
    inputs: Mapping[str, str], names: Sequence[str], values: Mapping[tuple[str, str], Any]
) -> dict[str, Any]:
    """A step's keyword arguments: each input from `values[(producer, name)]`, each parameter."""
    found = {name: values[(producer, name)] for name, producer in inputs.items()}
    found.update((name, parameters.PARAMETERS[name]) for name in names)
    return found


def call(
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


def stored(store: ArtifactStore, step: str, name: str, value: Any) -> tuple[str, str]:
    """The value's sha256 and format, once stored; a value the store cannot hold stops the run."""
    try:
        return store.put(value)
    except Exception as error:
        kind = type(value).__name__
        message = f"step {step!r} output {name!r} ({kind}) cannot be stored: {error}"
        raise StepFailed(message) from error


def parse_parameter(text: str) -> tuple[str, Any]:
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


def set_parameters(values: Mapping[str, Any]) -> None:
    """Give the parameters these values, before anything reads them."""
    # shared.py may read parameters when it is first imported, which happens after this:
    # steps are imported only when they run.
    for name, value in values.items():
        parameters.PARAMETERS[name] = value
        setattr(parameters, name, value)


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
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
