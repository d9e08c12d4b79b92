"""The Pipeline model: steps, parameters, artifacts, endpoints, tests and metrics, as pure data."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace
from typing import Any

from nbops.errors import PipelineError
from nbops.model.diagnostic import Diagnostic
from nbops.model.files import DataFile
from nbops.model.notebook import Notebook
from nbops.model.sections import CodeCell, read_cells
from nbops.model.tags import is_step_name

SETUP = "setup"
PARAMETERS = "parameters"


@dataclass(frozen=True)
class CellRef:
    index: int
    id: str

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "id": self.id}


@dataclass(frozen=True)
class Parameter:
    """A literal assignment in the parameters cell; `help` is its trailing comment."""

    name: str
    default: Any
    type: str
    help: str
    cell: CellRef
    line: int

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "default": self.default, "type": self.type, "help": self.help}


@dataclass(frozen=True)
class ParameterCode:
    """The statements of a parameters cell that set no parameter: comments, prints, values
    computed from parameters. papermill runs them as part of the cell; nbops runs them after
    the parameter values are injected, first thing in setup, so every step sees what they
    compute (`writes`). `source` is the cell with only those lines kept, numbered as the cell.
    """

    cell: CellRef
    lines: tuple[int, ...]
    source: str
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Step:
    """A named run of cells. `inputs` come from earlier steps; `outputs` are read after it."""

    name: str
    cells: tuple[CellRef, ...]
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    parameters: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    files_written: tuple[str, ...] = ()
    # The name as the notebook writes it (`data-loading`, Kale's way) when that is not `name`.
    title: str = ""
    # From a `timeout=30m` tag on the step's cells: how long a run gives the step.
    timeout_s: float | None = None
    # The data files it reads: path literals in its code, and `reads=` tags' paths and globs.
    files_read: tuple[DataFile, ...] = ()
    # Top-level modules whose code it runs: those its cells import, the setup imports it uses
    # (by name, or through a notebook function it calls) and those setup code uses as it runs.
    imports: tuple[str, ...] = ()

    @property
    def display_name(self) -> str:
        return self.title or self.name

    def __post_init__(self) -> None:
        if not is_step_name(self.name):
            raise ValueError(f"step name {self.name!r} is not a Python identifier")
        if not self.cells:
            raise ValueError(f"step {self.name!r} has no cells")
        if self.timeout_s is not None and not self.timeout_s > 0:
            raise ValueError(f"step {self.name!r} has timeout {self.timeout_s!r}, not positive")


@dataclass(frozen=True)
class Edge:
    """`source` runs before `target`; `artifacts` are the values that flow (none for after:)."""

    source: str
    target: str
    artifacts: tuple[str, ...] = ()
    kind: str = "data"

    def __post_init__(self) -> None:
        if self.source == self.target:
            raise ValueError(f"edge from step {self.source!r} to itself")

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "target": self.target,
            "artifacts": list(self.artifacts),
            "kind": self.kind,
        }


KEYWORD = "positional_or_keyword"


@dataclass(frozen=True)
class Argument:
    name: str
    annotation: str | None = None
    default: str | None = None
    kind: str = "positional_or_keyword"


@dataclass(frozen=True)
class Endpoint:
    """A `serve` function: its route, typed signature, docstring and the artifacts it reads.

    `inputs` pairs each artifact with the step that made it. `reference` (from a
    `reference=customers` tag) names the value holding representative input rows, which the
    build profiles, and `reference_step` the step that made it. A `batch` function (tagged
    `serve batch`) takes a list of requests' inputs as its first argument and returns a list
    of their results; `item` is the hint of one input (`dict` of `list[dict]`) and
    `item_returns` of one result, None where the hint says nothing about them.
    """

    name: str
    route: str
    cells: tuple[CellRef, ...]
    arguments: tuple[Argument, ...]
    returns: str | None
    docstring: str
    artifacts: tuple[str, ...]
    line: int = 1
    inputs: tuple[tuple[str, str], ...] = ()
    reference: str | None = None
    reference_step: str | None = None
    batch: bool = False
    item: str | None = None
    item_returns: str | None = None

    def request_arguments(self) -> tuple[Argument, ...]:
        """The fields of one request: the function's arguments, or a batch function's first
        argument as one item of its list (the others keep their defaults)."""
        if not self.batch:
            return self.arguments
        first = self.arguments[:1]
        return tuple(replace(a, annotation=self.item, default=None, kind=KEYWORD) for a in first)

    def signature(self) -> str:
        def one(arg: Argument) -> str:
            text = arg.name + (f": {arg.annotation}" if arg.annotation else "")
            return text + (f" = {arg.default}" if arg.default is not None else "")

        parts: list[str] = []
        for arg in self.arguments:
            if arg.kind == "keyword_only" and not any(p.startswith("*") for p in parts):
                parts.append("*")
            star = {"var_positional": "*", "var_keyword": "**"}.get(arg.kind, "")
            parts.append(star + one(arg))
        if any(a.kind == "positional_only" for a in self.arguments):
            last = max(i for i, a in enumerate(self.arguments) if a.kind == "positional_only")
            parts.insert(last + 1, "/")
        arrow = f" -> {self.returns}" if self.returns else ""
        return f"{self.name}({', '.join(parts)}){arrow}"


@dataclass(frozen=True)
class Test:
    """Test cells and the step they check (None when no step precedes them).

    `inputs` pairs each step value the cells read with the step that made it.
    """

    step: str | None
    cells: tuple[CellRef, ...]
    reads: tuple[str, ...] = ()
    inputs: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Metrics:
    """The run's metric names, the cells computing them, and the step values they read."""

    names: tuple[str, ...] = ()
    cells: tuple[CellRef, ...] = ()
    reads: tuple[str, ...] = ()
    inputs: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Pipeline:
    notebook: Notebook
    parameters: tuple[Parameter, ...] = ()
    # Run after the parameters are injected and before the setup cells, in this order.
    parameter_code: tuple[ParameterCode, ...] = ()
    setup: tuple[CellRef, ...] = ()
    steps: tuple[Step, ...] = ()
    edges: tuple[Edge, ...] = ()
    endpoints: tuple[Endpoint, ...] = ()
    tests: tuple[Test, ...] = ()
    metrics: Metrics = Metrics()
    diagnostics: tuple[Diagnostic, ...] = ()
    # Every code cell as analysis parsed it; a Pipeline built by hand parses on first use.
    cells: tuple[CodeCell, ...] = field(default=(), compare=False, repr=False)

    def code(self, ref: CellRef) -> CodeCell:
        """The parsed cell `ref` points at: its tags, Python tree, names and plain form."""
        return self.code_at(ref.index)

    @property
    def code_cells(self) -> tuple[CodeCell, ...]:
        """Every code cell, parsed, in notebook order (skip cells too)."""
        return tuple(self._code_cells.values())

    def code_at(self, index: int) -> CodeCell:
        """The parsed code cell at notebook position `index` (KeyError for other cells)."""
        return self._code_cells[index]

    @functools.cached_property
    def _code_cells(self) -> dict[int, CodeCell]:
        return {code.cell.index: code for code in self.cells or read_cells(self.notebook)}

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.is_error)

    def raise_for_errors(self) -> None:
        """Running, building or deploying needs a pipeline without errors: name the first."""
        if self.errors:
            first, count = self.errors[0], len(self.errors)
            raise PipelineError(
                first.render(self.notebook.display_name),
                fix=f"({count} error{'s' if count > 1 else ''} in all; `nbops check` lists them.)",
            )

    def step(self, name: str) -> Step:
        """The step called `name`, by its Python name or as the notebook writes it."""
        for step in self.steps:
            if name in (step.name, step.title):
                return step
        known = ", ".join(s.name for s in self.steps) or "none"
        raise KeyError(f"no step named {name!r} (steps: {known})")

    def producer(self, artifact: str, consumer: str) -> str | None:
        """The step whose value of `artifact` the step `consumer` reads."""
        for edge in self.edges:
            if edge.target == consumer and artifact in edge.artifacts:
                return edge.source
        return None
