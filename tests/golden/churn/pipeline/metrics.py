"""Metrics of the churn pipeline: cell 17 of churn.ipynb as a function.

Generated from churn.ipynb by nbops 0.1.0; edit the notebook, not this file.
"""

from typing import Any


def compute_metrics(
    *,
    accuracy: Any,
    roc_auc: Any,
) -> dict[str, Any]:
    """Compute the values the metrics cells name (test_accuracy, test_roc_auc).

    Those that are numbers are the run's metrics; `python -m pipeline` warns about the others.

    Inputs:
        accuracy: made by step evaluate
        roc_auc: made by step evaluate
    """
    # cell 17 (id churn-17)
    test_accuracy = float(accuracy)
    test_roc_auc = float(roc_auc)

    return {
        "test_accuracy": test_accuracy,
        "test_roc_auc": test_roc_auc,
    }
