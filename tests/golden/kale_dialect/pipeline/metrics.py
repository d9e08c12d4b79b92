"""Metrics of the kale_dialect pipeline: cell 12 of kale_dialect.ipynb as a function.

Generated from kale_dialect.ipynb by nbops 0.1.0; edit the notebook, not this file.
"""

from typing import Any


def compute_metrics(
    *,
    accuracy: Any,
    f1_macro: Any,
) -> dict[str, float]:
    """Compute the run's metrics (accuracy, f1_macro) from the steps' values.

    Inputs:
        accuracy: made by step train
        f1_macro: made by step train
    """
    # cell 12 (id kale-12)
    accuracy
    f1_macro

    return {
        "accuracy": float(accuracy),
        "f1_macro": float(f1_macro),
    }
