"""nbops: take a tagged Jupyter notebook to production without a rewrite."""

__version__ = "0.1.0"
