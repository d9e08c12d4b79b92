"""The churn pipeline as data: its steps in run order and the values that flow between them.

Generated from churn.ipynb by nbops 0.1.0; edit the notebook, not this file.
"""

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Step:
    """One step: its function, inputs (artifact -> step that makes it), parameters, outputs."""

    name: str
    module: str
    function: str
    cells: tuple[int, ...]
    inputs: Mapping[str, str]
    parameters: tuple[str, ...]
    outputs: tuple[str, ...]

    def load(self) -> Callable[..., dict[str, Any]]:
        """The step's function; its module, and the libraries it uses, are imported only now."""
        module = importlib.import_module(f".steps.{self.module}", __package__)
        function: Callable[..., dict[str, Any]] = getattr(module, self.function)
        return function


@dataclass(frozen=True)
class Metrics:
    """What `metrics.compute_metrics` reads (artifacts, each from its step, and parameters) and
    the names of the values it returns: those that are numbers are the metrics."""

    cells: tuple[int, ...]
    inputs: Mapping[str, str]
    parameters: tuple[str, ...]
    names: tuple[str, ...]

    def load(self) -> Callable[..., dict[str, Any]]:
        """`compute_metrics`, imported only now."""
        module = importlib.import_module(".metrics", __package__)
        function: Callable[..., dict[str, Any]] = module.compute_metrics
        return function


STEPS: tuple[Step, ...] = (
    Step(
        name="load",
        module="load",
        function="load",
        cells=(6,),
        inputs={},
        parameters=("n_rows", "seed"),
        outputs=("customers",),
    ),
    Step(
        name="features",
        module="features",
        function="features",
        cells=(8, 9),
        inputs={"customers": "load"},
        parameters=("test_size", "seed"),
        outputs=("feature_columns", "X_train", "X_test", "y_train", "y_test"),
    ),
    Step(
        name="train",
        module="train",
        function="train",
        cells=(11,),
        inputs={"X_train": "features", "y_train": "features"},
        parameters=("n_estimators", "max_depth", "seed"),
        outputs=("model",),
    ),
    Step(
        name="evaluate",
        module="evaluate",
        function="evaluate",
        cells=(14,),
        inputs={"model": "train", "X_test": "features", "y_test": "features"},
        parameters=(),
        outputs=("accuracy", "roc_auc"),
    ),
    Step(
        name="report",
        module="report",
        function="report",
        cells=(19,),
        inputs={"model": "train", "feature_columns": "features"},
        parameters=(),
        outputs=("feature_importance",),
    ),
)

# (source, target, artifacts): `source` runs before `target`. An edge without artifacts comes
# from an `after:` tag: an order the notebook asks for where no value flows.
EDGES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("load", "features", ("customers",)),
    ("features", "train", ("X_train", "y_train")),
    ("features", "evaluate", ("X_test", "y_test")),
    ("train", "evaluate", ("model",)),
    ("features", "report", ("feature_columns",)),
    ("train", "report", ("model",)),
    ("evaluate", "report", ()),
)

METRICS: Metrics | None = Metrics(
    cells=(17,),
    inputs={"accuracy": "evaluate", "roc_auc": "evaluate"},
    parameters=(),
    names=("test_accuracy", "test_roc_auc"),
)
