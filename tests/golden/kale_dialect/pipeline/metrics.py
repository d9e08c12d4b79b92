"""Metrics of the kale_dialect pipeline: cell 12 of kale_dialect.ipynb as a function.

Generated from kale_dialect.ipynb by nbops 0.1.0; edit the notebook, not this file.
"""

from typing import Any


def compute_metrics(
    *,
    accuracy: Any,
    f1_macro: Any,
) -> dict[str, Any]:
    """Compute the values the metrics cells name (accuracy, f1_macro).

    Those that are numbers are the run's metrics; `python -m pipeline` warns about the others.

    Inputs:
        accuracy: made by step train
        f1_macro: made by step train
    """
    # cell 12 (id kale-12)
    accuracy
    f1_macro

    return {
        "accuracy": accuracy,
        "f1_macro": f1_macro,
    }
