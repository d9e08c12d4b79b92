"""What a step shows, outside Jupyter: `display`, and the log its output and warnings go to.

This module depends on nothing else in nbops: builds copy it next to the generated pipeline, so
`python -m pipeline` logs each step exactly as `nbops run` does.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO


def display(*objects: Any, **_: Any) -> None:
    """IPython's `display` as a run without a notebook shows it: each object's repr, printed.

    Jupyter's plain-text form of most values is their repr too, so a step's log reads as the
    notebook's output does. Options such as `clear=True` concern a live notebook and are ignored.
    """
    for value in objects:
        print(repr(value))


@contextlib.contextmanager
def to_log(log: TextIO) -> Iterator[None]:
    """Send what the code prints and warns (warnings are written to sys.stderr) to `log`."""
    with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        yield


@contextlib.contextmanager
def step_log(path: Path) -> Iterator[None]:
    """`to_log` a file, created with its folder; it holds only this run's output."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as log, to_log(log):
        yield
