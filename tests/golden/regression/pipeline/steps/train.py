"""Step `train` of the regression pipeline: cells 6 and 7 of regression.ipynb as a function.

Generated from regression.ipynb by nbops 0.1.0; edit the notebook, not this file.
"""

from typing import Any

from ..shared import Ridge, StandardScaler, cross_val_score, make_pipeline, train_test_split


def train(
    *,
    patients: Any,
    alpha: float,
    test_size: float,
    cv_folds: int,
    seed: int,
) -> dict[str, Any]:
    """Run the cells of step `train` and return the values later steps read.

    Inputs:
        patients: made by step load

    Parameters:
        alpha: ridge regularisation strength
        test_size: fraction of patients held out for evaluation
        cv_folds: folds for cross-validation
        seed: random seed for the split

    Outputs:
        X_test: read by the metrics
        y_test: read by the metrics
        feature_names: read by the tests, endpoint predict
        model: read by the metrics, the tests, endpoint predict
        cv_scores: read by the metrics, the tests
    """
    # cell 6 (id regression-06)
    X_train, X_test, y_train, y_test = train_test_split(
        patients.drop(columns="target"),
        patients["target"],
        test_size=test_size,
        random_state=seed,
    )
    feature_names = list(X_train.columns)
    model = make_pipeline(StandardScaler(), Ridge(alpha=alpha))
    model.fit(X_train, y_train)
    print(f"trained on {len(X_train)} patients")

    # cell 7 (id regression-07)
    cv_scores = cross_val_score(
        make_pipeline(StandardScaler(), Ridge(alpha=alpha)),
        X_train,
        y_train,
        cv=cv_folds,
        scoring="r2",
    )
    print(cv_scores.round(3))

    return {
        "X_test": X_test,
        "y_test": y_test,
        "feature_names": feature_names,
        "model": model,
        "cv_scores": cv_scores,
    }
