"""The steps of the kale_dialect pipeline, one module each: load_data, preprocess, train.

Generated from kale_dialect.ipynb by nbops 0.1.0; edit the notebook, not this file.
"""
