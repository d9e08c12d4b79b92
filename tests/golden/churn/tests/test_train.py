"""Tests of step `train`, from the test cells of churn.ipynb.

Generated from churn.ipynb by nbops 0.1.0; edit the notebook, not this file.
"""

from collections.abc import Mapping
from typing import Any


def test_cell_12_train(artifacts: Mapping[str, Any]) -> None:
    model = artifacts["train.model"]
    feature_columns = artifacts["features.feature_columns"]

    # cell 12 (id churn-12)
    assert hasattr(model, "predict_proba")
    assert model.n_features_in_ == len(feature_columns)
    assert list(model.classes_) == [0, 1]
