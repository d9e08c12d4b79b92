"""Tests of step `features`, from the test cells of churn.ipynb.

Generated from churn.ipynb by nbops 0.1.0; edit the notebook, not this file.
"""

from collections.abc import Mapping
from typing import Any


def test_cell_16_features(artifacts: Mapping[str, Any], parameters: Mapping[str, Any]) -> None:
    X_train = artifacts["features.X_train"]
    X_test = artifacts["features.X_test"]
    n_rows = parameters["n_rows"]
    test_size = parameters["test_size"]

    # cell 16 (id churn-16)
    assert not X_train.isna().any().any()
    assert not X_test.isna().any().any()
    assert len(X_train) + len(X_test) == n_rows
    assert abs(len(X_test) - test_size * n_rows) <= 1
