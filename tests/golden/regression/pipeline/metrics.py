"""Metrics of the regression pipeline: cell 10 of regression.ipynb as a function.

Generated from regression.ipynb by nbops 0.1.0; edit the notebook, not this file.
"""

from typing import Any

from .shared import mean_absolute_error, r2_score


def compute_metrics(
    *,
    y_test: Any,
    model: Any,
    X_test: Any,
    cv_scores: Any,
) -> dict[str, Any]:
    """Compute the values the metrics cells name (test_r2, test_mae, cv_r2).

    Those that are numbers are the run's metrics; `python -m pipeline` warns about the others.

    Inputs:
        y_test: made by step train
        model: made by step train
        X_test: made by step train
        cv_scores: made by step train
    """
    # cell 10 (id regression-10)
    test_r2 = float(r2_score(y_test, model.predict(X_test)))
    test_mae = float(mean_absolute_error(y_test, model.predict(X_test)))
    cv_r2 = float(cv_scores.mean())

    return {
        "test_r2": test_r2,
        "test_mae": test_mae,
        "cv_r2": cv_r2,
    }
