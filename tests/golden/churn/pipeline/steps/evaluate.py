"""Step `evaluate` of the churn pipeline: cell 14 of churn.ipynb as a function.

Generated from churn.ipynb by nbops 0.1.0; edit the notebook, not this file.
"""

from typing import Any

from ..shared import accuracy_score, roc_auc_score


def evaluate(
    *,
    model: Any,
    X_test: Any,
    y_test: Any,
) -> dict[str, Any]:
    """Run the cells of step `evaluate` and return the values later steps read.

    Inputs:
        model: made by step train
        X_test: made by step features
        y_test: made by step features

    Outputs:
        accuracy: read by the metrics
        roc_auc: read by the metrics
    """
    # cell 14 (id churn-14)
    test_probabilities = model.predict_proba(X_test)[:, 1]
    test_predictions = (test_probabilities >= 0.5).astype(int)
    accuracy = accuracy_score(y_test, test_predictions)
    roc_auc = roc_auc_score(y_test, test_probabilities)
    print(f"accuracy {accuracy:.3f}, ROC AUC {roc_auc:.3f}")

    return {
        "accuracy": accuracy,
        "roc_auc": roc_auc,
    }
