"""Step `train` of the kale_dialect pipeline: cell 9 of kale_dialect.ipynb as a function.

Generated from kale_dialect.ipynb by nbops 0.1.0; edit the notebook, not this file.
"""

from typing import Any

from ..shared import LogisticRegression, accuracy_score, f1_score


def train(
    *,
    X_train_scaled: Any,
    y_train: Any,
    X_test_scaled: Any,
    y_test: Any,
    C: float,
    max_iter: int,
) -> dict[str, Any]:
    """Run the cells of step `train` and return the values later steps read.

    Inputs:
        X_train_scaled: made by step preprocess
        y_train: made by step preprocess
        X_test_scaled: made by step preprocess
        y_test: made by step preprocess

    Parameters:
        C: inverse regularisation strength
        max_iter: solver iteration limit

    Outputs:
        accuracy: read by the metrics
        f1_macro: read by the metrics
    """
    # cell 9 (id kale-09)
    model = LogisticRegression(C=C, max_iter=max_iter)
    model.fit(X_train_scaled, y_train)
    predictions = model.predict(X_test_scaled)
    accuracy = accuracy_score(y_test, predictions)
    f1_macro = f1_score(y_test, predictions, average="macro")

    return {
        "accuracy": accuracy,
        "f1_macro": f1_macro,
    }
