"""Step `load` of the churn pipeline: cell 6 of churn.ipynb as a function.

Generated from churn.ipynb by nbops 0.1.0; edit the notebook, not this file.
"""

from typing import Any

from ..shared import CONTRACTS, np, pd, sigmoid


def load(
    *,
    n_rows: int,
    seed: int,
) -> dict[str, Any]:
    """Run the cells of step `load` and return the values later steps read.

    Parameters:
        n_rows: customers to simulate
        seed: random seed for the data and the model

    Outputs:
        customers: read by features
    """
    # cell 6 (id churn-06)
    rng = np.random.default_rng(seed)
    customers = pd.DataFrame(
        {
            "tenure_months": rng.integers(1, 73, size=n_rows),
            "monthly_charges": rng.normal(70, 25, size=n_rows).clip(18, 120).round(2),
            "support_calls": rng.poisson(1.5, size=n_rows),
            "contract": rng.choice(CONTRACTS, size=n_rows, p=[0.55, 0.25, 0.20]),
        }
    )
    contract_effect = {"monthly": 0.8, "annual": -0.6, "two_year": -1.6}
    churn_logit = (
        -0.8
        - 0.05 * customers["tenure_months"]
        + 0.02 * (customers["monthly_charges"] - 70)
        + 0.5 * customers["support_calls"]
        + customers["contract"].map(contract_effect)
        + rng.normal(0, 0.5, size=n_rows)
    )
    customers["churned"] = (rng.random(n_rows) < sigmoid(churn_logit)).astype(int)
    customers.head()

    return {"customers": customers}
