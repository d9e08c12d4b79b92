"""Serve functions of the churn service: cell 22 of churn.ipynb, as written.

The service imports this module once, at start-up, after `service.artifacts` has loaded the
values below from the build's artifacts and checked each against its sha256 in nbops.json.
Parameters have the values of the run the artifacts came from.

Generated from churn.ipynb by nbops 0.1.0; edit the notebook, not this file.
"""

from pipeline.shared import pd

from .artifacts import loaded

# What the steps made in the run this build came from, by "<step>.<name>".
feature_columns = loaded("features.feature_columns")
model = loaded("train.model")


# cell 22 (id churn-22)
def predict(features: dict) -> dict:
    """Return the churn probability of one customer.

    `features` holds tenure_months, monthly_charges, support_calls and
    contract ("monthly", "annual" or "two_year").
    """
    row = pd.DataFrame([features])
    tenure = row["tenure_months"].clip(lower=1)
    row["charges_per_month_of_tenure"] = row["monthly_charges"] / tenure
    row["has_support_calls"] = (row["support_calls"] > 0).astype(int)
    row = pd.get_dummies(row, columns=["contract"], dtype=int)
    row = row.reindex(columns=feature_columns, fill_value=0)
    probability = float(model.predict_proba(row)[0, 1])
    return {"churn_probability": probability, "churn": probability >= 0.5}
