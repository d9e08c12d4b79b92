"""Step `features` of the churn pipeline: cells 8 and 9 of churn.ipynb as a function.

Generated from churn.ipynb by nbops 0.1.0; edit the notebook, not this file.
"""

from typing import Any

from ..shared import pd, train_test_split


def features(
    *,
    customers: Any,
    test_size: float,
    seed: int,
) -> dict[str, Any]:
    """Run the cells of step `features` and return the values later steps read.

    Inputs:
        customers: made by step load

    Parameters:
        test_size: fraction of customers held out for evaluation
        seed: random seed for the data and the model

    Outputs:
        feature_columns: read by report, the tests, endpoint predict, endpoint predict_many
        X_train: read by train, the tests
        X_test: read by evaluate, the tests
        y_train: read by train
        y_test: read by evaluate
    """
    # cell 8 (id churn-08)
    tenure = customers["tenure_months"].clip(lower=1)
    customers["charges_per_month_of_tenure"] = customers["monthly_charges"] / tenure
    customers["has_support_calls"] = (customers["support_calls"] > 0).astype(int)
    customers = pd.get_dummies(customers, columns=["contract"], dtype=int)

    # cell 9 (id churn-09)
    feature_columns = [column for column in customers.columns if column != "churned"]
    X_train, X_test, y_train, y_test = train_test_split(
        customers[feature_columns],
        customers["churned"],
        test_size=test_size,
        random_state=seed,
        stratify=customers["churned"],
    )
    print(f"{len(X_train)} training rows, {len(X_test)} test rows")

    return {
        "feature_columns": feature_columns,
        "X_train": X_train,
        "X_test": X_test,
        "y_train": y_train,
        "y_test": y_test,
    }
