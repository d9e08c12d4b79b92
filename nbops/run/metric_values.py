"""Which values of the metrics cells are metrics: one rule for every way a notebook runs.

A metric is a finite real number: an int, a float, a NumPy number, any `numbers.Real`. Any other
value (text, an array, a model, None, NaN) is left out and named in a warning that says why.

This module depends on nothing else in nbops: builds copy it next to the generated pipeline,
and `nbops test` runs its source in the kernel that ran the notebook.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping
from typing import Any

NOT_DEFINED = "is not defined after the metrics cells ran"


def metric_problem(value: Any) -> str | None:
    """Why `value` is not a metric, as it follows the metric's name; None when it is one."""
    if not isinstance(value, numbers.Real):
        return f"is a {type(value).__name__}, not a number"
    if not math.isfinite(value):
        return f"is {float(value)}, not a finite number"
    return None


def split_metrics(
    values: Mapping[str, Any], names: Iterable[str]
) -> tuple[dict[str, float], dict[str, str]]:
    """The metrics among `values` as floats, in the order of `names`, and for each other name
    the reason it is not one."""
    metrics: dict[str, float] = {}
    problems: dict[str, str] = {}
    for name in names:
        problem = metric_problem(values[name]) if name in values else NOT_DEFINED
        if problem is None:
            metrics[name] = float(values[name])
        else:
            problems[name] = problem
    return metrics, problems


def metric_warning(name: str, problem: str) -> str:
    """The one warning every face gives about a value of the metrics cells that is no metric."""
    return f"metric {name!r} {problem}, so it is not recorded"
