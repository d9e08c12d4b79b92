"""Fingerprints see a change made in place, and only a change."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pandas as pd
import pytest

from nbops.run.fingerprint import can_change, fingerprint


def changed(value: Any, change: Any) -> bool:
    before = fingerprint(value)
    change(value)
    return fingerprint(value) != before


@pytest.mark.parametrize(
    ("value", "change"),
    [
        (np.arange(6), lambda a: np.random.default_rng(0).shuffle(a)),
        (np.zeros((2, 3)), lambda a: a.fill(1)),
        (pd.DataFrame({"w": [1.0, 2.0]}), lambda f: f.__setitem__("area", f["w"] * 2)),
        (pd.DataFrame({"w": [1.0, 2.0]}), lambda f: setattr(f, "columns", ["x"])),
        (pd.Series([1, 2], name="s"), lambda s: s.__setitem__(0, 5)),
        ([1, 2], lambda items: items.append(3)),
        ({"k": 1}, lambda d: d.update(k=2)),
    ],
)
def test_a_change_in_place_changes_the_fingerprint(value: Any, change: Any) -> None:
    assert changed(value, change)


@pytest.mark.parametrize(
    "value", [np.arange(6), pd.DataFrame({"w": [1.0]}), [1, {"a": (2, 3)}], {"x": np.ones(3)}]
)
def test_reading_a_value_leaves_its_fingerprint_alone(value: Any) -> None:
    assert changed(value, repr) is False


def test_instances_of_classes_the_notebook_defined_are_fingerprinted_by_value() -> None:
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec("class Counter:\n    def __init__(self):\n        self.n = 0\n", namespace)
    counter = namespace["Counter"]()
    assert changed(counter, lambda c: setattr(c, "n", 1))


def test_values_that_cannot_be_pickled_have_no_fingerprint_and_numbers_need_none() -> None:
    assert fingerprint(threading.Lock()) is None
    assert not can_change(3) and not can_change(("a", 1.5)) and not can_change(frozenset({1}))
    assert can_change([1]) and can_change((1, [2]))
