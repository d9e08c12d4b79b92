"""The steps of the churn pipeline, one module each: load, features, train, evaluate, report.

Generated from churn.ipynb by nbops 0.1.0; edit the notebook, not this file.
"""
