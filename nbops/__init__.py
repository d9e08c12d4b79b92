"""nbops: take a tagged Jupyter notebook to production without a rewrite."""

from typing import Any

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """`from nbops import artifacts` (`artifacts.load("model")`), imported when first asked for,
    so that `import nbops` stays cheap."""
    if name == "artifacts":
        from nbops.run import artifacts

        return artifacts
    raise AttributeError(f"module 'nbops' has no attribute {name!r}")


# Jupyter's entry points. Each imports what it needs when called, so `import nbops` (and the
# CLI) never pays for jupyter_server, tornado or ipywidgets.


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """The prebuilt sidebar, built from labextension/ into nbops/labextension/."""
    return [{"src": "labextension", "dest": "nbops"}]


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    """The REST API lives in the nbops.lab.server subpackage."""
    return [{"module": "nbops.lab.server"}]


def load_ipython_extension(ipython: object) -> None:
    """`%load_ext nbops`: the `%nbops lineage` and `%nbops deploy` magics."""
    from nbops.lab.magics import load_ipython_extension as load

    load(ipython)
