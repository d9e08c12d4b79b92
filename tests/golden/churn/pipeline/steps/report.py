"""Step `report` of the churn pipeline: cell 19 of churn.ipynb as a function.

Generated from churn.ipynb by nbops 0.1.0; edit the notebook, not this file.
"""

from typing import Any

from ..shared import pd


def report(
    *,
    model: Any,
    feature_columns: Any,
) -> dict[str, Any]:
    """Run the cells of step `report` and return the values later steps read.

    Inputs:
        model: made by step train
        feature_columns: made by step features

    Outputs:
        feature_importance: read by the tests
    """
    # cell 19 (id churn-19)
    importances = pd.Series(model.feature_importances_, index=feature_columns)
    feature_importance = importances.sort_values(ascending=False)
    feature_importance.round(3)

    return {"feature_importance": feature_importance}
