"""Setup code of the kale_dialect pipeline: cells 1 and 2 of kale_dialect.ipynb, as written.

Steps import what it defines from here, so it runs once, when the first step is imported.

Generated from kale_dialect.ipynb by nbops 0.1.0; edit the notebook, not this file.
"""

# cell 1 (id kale-01)
import pandas as pd
from sklearn.datasets import load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler


# cell 2 (id kale-02)
def split_features_target(frame: pd.DataFrame, target: str = "target"):
    """Split a frame into its feature columns and its target column."""
    return frame.drop(columns=[target]), frame[target]


__all__ = [
    "LogisticRegression",
    "StandardScaler",
    "accuracy_score",
    "f1_score",
    "load_wine",
    "pd",
    "split_features_target",
    "train_test_split",
]
