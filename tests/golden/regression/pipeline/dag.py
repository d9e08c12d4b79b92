"""The regression pipeline as data: its steps in run order and the values that flow between them.

Generated from regression.ipynb by nbops 0.1.0; edit the notebook, not this file.
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
        cells=(4,),
        inputs={},
        parameters=(),
        outputs=("patients",),
    ),
    Step(
        name="train",
        module="train",
        function="train",
        cells=(6, 7),
        inputs={"patients": "load"},
        parameters=("alpha", "test_size", "cv_folds", "seed"),
        outputs=("X_test", "y_test", "feature_names", "model", "cv_scores"),
    ),
)

# (source, target, artifacts): `source` runs before `target`. An edge without artifacts comes
# from an `after:` tag: an order the notebook asks for where no value flows.
EDGES: tuple[tuple[str, str, tuple[str, ...]], ...] = (("load", "train", ("patients",)),)

METRICS: Metrics | None = Metrics(
    cells=(10,),
    inputs={"y_test": "train", "model": "train", "X_test": "train", "cv_scores": "train"},
    parameters=(),
    names=("test_r2", "test_mae", "cv_r2"),
)
