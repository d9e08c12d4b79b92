"""Tests of step `train`, from the test cells of regression.ipynb.

Generated from regression.ipynb by nbops 0.1.0; edit the notebook, not this file.
"""

from collections.abc import Mapping
from typing import Any


def test_cell_8_train(artifacts: Mapping[str, Any], parameters: Mapping[str, Any]) -> None:
    model = artifacts["train.model"]
    feature_names = artifacts["train.feature_names"]
    cv_scores = artifacts["train.cv_scores"]
    cv_folds = parameters["cv_folds"]

    # cell 8 (id regression-08)
    assert model.n_features_in_ == len(feature_names)
    assert len(cv_scores) == cv_folds
    assert cv_scores.mean() > 0.3
