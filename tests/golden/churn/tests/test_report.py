"""Tests of step `report`, from the test cells of churn.ipynb.

Generated from churn.ipynb by nbops 0.1.0; edit the notebook, not this file.
"""

from collections.abc import Mapping
from typing import Any


def test_cell_20_report(artifacts: Mapping[str, Any]) -> None:
    feature_importance = artifacts["report.feature_importance"]
    feature_columns = artifacts["features.feature_columns"]

    # cell 20 (id churn-20)
    assert abs(feature_importance.sum() - 1) < 1e-6
    assert set(feature_importance.index) == set(feature_columns)
