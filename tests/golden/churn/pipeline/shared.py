"""Setup code of the churn pipeline: cell 4 of churn.ipynb, as written.

Steps import what it defines from here, so it runs once, when the first step is imported.

Generated from churn.ipynb by nbops 0.1.0; edit the notebook, not this file.
"""

# cell 4 (id churn-04)
import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import train_test_split

CONTRACTS = ["monthly", "annual", "two_year"]


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


__all__ = [
    "CONTRACTS",
    "RandomForestClassifier",
    "accuracy_score",
    "np",
    "pd",
    "roc_auc_score",
    "sigmoid",
    "train_test_split",
]
