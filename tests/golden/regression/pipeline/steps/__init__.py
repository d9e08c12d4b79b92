"""The steps of the regression pipeline, one module each: load, train.

Generated from regression.ipynb by nbops 0.1.0; edit the notebook, not this file.
"""
