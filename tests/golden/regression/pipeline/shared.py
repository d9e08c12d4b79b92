"""Setup code of the regression pipeline: cell 2 of regression.ipynb, as written.

Steps import what it defines from here, so it runs once, when the first step is imported.

Generated from regression.ipynb by nbops 0.1.0; edit the notebook, not this file.
"""

# cell 2 (id regression-02)
import pandas as pd
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge
from sklearn.metrics import mean_absolute_error, r2_score
from sklearn.model_selection import cross_val_score, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


__all__ = [
    "Ridge",
    "StandardScaler",
    "cross_val_score",
    "load_diabetes",
    "make_pipeline",
    "mean_absolute_error",
    "pd",
    "r2_score",
    "train_test_split",
]
