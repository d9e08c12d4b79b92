"""Step `train` of the churn pipeline: cell 11 of churn.ipynb as a function.

Generated from churn.ipynb by nbops 0.1.0; edit the notebook, not this file.
"""

from typing import Any

from ..shared import RandomForestClassifier


def train(
    *,
    X_train: Any,
    y_train: Any,
    n_estimators: int,
    max_depth: int,
    seed: int,
) -> dict[str, Any]:
    """Run the cells of step `train` and return the values later steps read.

    Inputs:
        X_train: made by step features
        y_train: made by step features

    Parameters:
        n_estimators: trees in the forest
        max_depth: maximum depth of each tree
        seed: random seed for the data and the model

    Outputs:
        model: read by evaluate, report, the tests, endpoint predict, endpoint predict_many
    """
    # cell 11 (id churn-11)
    model = RandomForestClassifier(
        n_estimators=n_estimators,
        max_depth=max_depth,
        n_jobs=1,
        random_state=seed,
    )
    model.fit(X_train, y_train)

    return {"model": model}
