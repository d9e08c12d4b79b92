"""Serve functions of the churn service: cells 22 and 28 of churn.ipynb, as written.

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


# cell 28 (id churn-28)
def predict_many(features: list[dict]) -> list[dict]:
    """Return the churn probability of each customer, in one call of the forest.

    Each item of `features` is a customer as `predict` takes it. The service
    gathers the requests that arrive together into one list: the forest costs
    about as much for 64 rows as for one, so a busy service answers many more.
    """
    rows = pd.DataFrame(features)
    tenure = rows["tenure_months"].clip(lower=1)
    rows["charges_per_month_of_tenure"] = rows["monthly_charges"] / tenure
    rows["has_support_calls"] = (rows["support_calls"] > 0).astype(int)
    rows = pd.get_dummies(rows, columns=["contract"], dtype=int)
    rows = rows.reindex(columns=feature_columns, fill_value=0)
    probabilities = model.predict_proba(rows)[:, 1].tolist()
    return [{"churn_probability": p, "churn": p >= 0.5} for p in probabilities]
