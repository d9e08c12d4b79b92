"""Parameters of the regression pipeline and their defaults, from regression.ipynb.

Override them with `python -m pipeline --param NAME=VALUE`.

Generated from regression.ipynb by nbops 0.1.0; edit the notebook, not this file.
"""

from typing import Any

alpha: float = 1.0  # ridge regularisation strength
test_size: float = 0.2  # fraction of patients held out for evaluation
cv_folds: int = 5  # folds for cross-validation
seed: int = 0  # random seed for the split

PARAMETERS: dict[str, Any] = {
    "alpha": alpha,
    "test_size": test_size,
    "cv_folds": cv_folds,
    "seed": seed,
}
