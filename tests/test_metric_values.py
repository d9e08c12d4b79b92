"""The one rule every face uses for the metrics cells' values: numbers are metrics."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np
import pytest

from nbops.run.metric_values import metric_problem, metric_warning, split_metrics


@pytest.mark.parametrize(
    "value", [3, 0.25, True, np.float32(1.5), np.int64(7), np.float64(0.1), Fraction(1, 4)]
)
def test_real_numbers_of_any_type_are_metrics(value: Any) -> None:
    assert metric_problem(value) is None
    assert split_metrics({"m": value}, ["m"]) == ({"m": float(value)}, {})


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("0.5", "is a str, not a number"),
        (None, "is a NoneType, not a number"),
        (np.array([0.5]), "is a ndarray, not a number"),
        ((1, 2), "is a tuple, not a number"),
        (complex(1, 2), "is a complex, not a number"),
        (float("nan"), "is nan, not a finite number"),
        (np.float64("-inf"), "is -inf, not a finite number"),
    ],
)
def test_anything_else_is_named_with_why(value: Any, problem: str) -> None:
    assert metric_problem(value) == problem
    assert split_metrics({"m": value}, ["m"]) == ({}, {"m": problem})


def test_metrics_keep_the_cells_order_and_a_name_never_set_is_named() -> None:
    values = {"b": 2, "a": 1, "unrelated": "x"}
    assert split_metrics(values, ["b", "missing", "a"]) == (
        {"b": 2.0, "a": 1.0},
        {"missing": "is not defined after the metrics cells ran"},
    )


def test_the_warning_names_the_metric_and_the_reason() -> None:
    assert metric_warning("label", "is a str, not a number") == (
        "metric 'label' is a str, not a number, so it is not recorded"
    )
