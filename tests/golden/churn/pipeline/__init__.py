"""The churn pipeline, one module per step: run it with `python -m pipeline`.

Generated from churn.ipynb by nbops 0.1.0; edit the notebook, not this file.
"""
