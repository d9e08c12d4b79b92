"""Step `preprocess` of the kale_dialect pipeline: cell 7 of kale_dialect.ipynb as a function.

Generated from kale_dialect.ipynb by nbops 0.1.0; edit the notebook, not this file.
"""

from typing import Any

from ..shared import StandardScaler, split_features_target, train_test_split


def preprocess(
    *,
    wine: Any,
    test_size: float,
    seed: int,
) -> dict[str, Any]:
    """Run the cells of step `preprocess` and return the values later steps read.

    Inputs:
        wine: made by step load_data

    Parameters:
        test_size: fraction of wines held out for evaluation
        seed: random seed for the split

    Outputs:
        y_train: read by train
        y_test: read by train
        X_train_scaled: read by train
        X_test_scaled: read by train
    """
    # cell 7 (id kale-07)
    features, target = split_features_target(wine)
    X_train, X_test, y_train, y_test = train_test_split(
        features, target, test_size=test_size, random_state=seed, stratify=target
    )
    scaler = StandardScaler().fit(X_train)
    X_train_scaled = scaler.transform(X_train)
    X_test_scaled = scaler.transform(X_test)

    return {
        "y_train": y_train,
        "y_test": y_test,
        "X_train_scaled": X_train_scaled,
        "X_test_scaled": X_test_scaled,
    }
