"""The kale_dialect pipeline as data: its steps in run order and the values that flow between them.

Generated from kale_dialect.ipynb by nbops 0.1.0; edit the notebook, not this file.
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
        name="load_data",
        module="load_data",
        function="load_data",
        cells=(5,),
        inputs={},
        parameters=(),
        outputs=("wine",),
    ),
    Step(
        name="preprocess",
        module="preprocess",
        function="preprocess",
        cells=(7,),
        inputs={"wine": "load_data"},
        parameters=("test_size", "seed"),
        outputs=("y_train", "y_test", "X_train_scaled", "X_test_scaled"),
    ),
    Step(
        name="train",
        module="train",
        function="train",
        cells=(9,),
        inputs={
            "X_train_scaled": "preprocess",
            "y_train": "preprocess",
            "X_test_scaled": "preprocess",
            "y_test": "preprocess",
        },
        parameters=("C", "max_iter"),
        outputs=("accuracy", "f1_macro"),
    ),
)

# (source, target, artifacts): `source` runs before `target`. An edge without artifacts comes
# from an `after:` tag: an order the notebook asks for where no value flows.
EDGES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("load_data", "preprocess", ("wine",)),
    ("preprocess", "train", ("X_train_scaled", "y_train", "X_test_scaled", "y_test")),
)

METRICS: Metrics | None = Metrics(
    cells=(12,),
    inputs={"accuracy": "train", "f1_macro": "train"},
    parameters=(),
    names=("accuracy", "f1_macro"),
)
