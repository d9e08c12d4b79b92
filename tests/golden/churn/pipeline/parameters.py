"""Parameters of the churn pipeline and their defaults, from churn.ipynb.

Override them with `python -m pipeline --param NAME=VALUE`.

Generated from churn.ipynb by nbops 0.1.0; edit the notebook, not this file.
"""

from typing import Any

n_rows: int = 5000  # customers to simulate
n_estimators: int = 100  # trees in the forest
max_depth: int = 8  # maximum depth of each tree
test_size: float = 0.2  # fraction of customers held out for evaluation
seed: int = 42  # random seed for the data and the model

PARAMETERS: dict[str, Any] = {
    "n_rows": n_rows,
    "n_estimators": n_estimators,
    "max_depth": max_depth,
    "test_size": test_size,
    "seed": seed,
}
