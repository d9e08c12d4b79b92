"""Parameters of the kale_dialect pipeline and their defaults, from kale_dialect.ipynb.

Override them with `python -m pipeline --param NAME=VALUE`.

Generated from kale_dialect.ipynb by nbops 0.1.0; edit the notebook, not this file.
"""

from typing import Any

test_size: float = 0.25  # fraction of wines held out for evaluation
C: float = 1.0  # inverse regularisation strength
max_iter: int = 1000  # solver iteration limit
seed: int = 7  # random seed for the split

PARAMETERS: dict[str, Any] = {
    "test_size": test_size,
    "C": C,
    "max_iter": max_iter,
    "seed": seed,
}
