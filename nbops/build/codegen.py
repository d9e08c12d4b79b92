"""Generated code: the Pipeline model, rendered through the templates in templates/ as a package.

`render_pipeline` and `render_tests` are pure: a model in, file texts out. The templates see a
plain context (lists of dicts of strings) built here from the model; they write all the code.
"""

from __future__ import annotations

import ast
import builtins
import functools
import math
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbops import __version__

from nbops.run import capture, metric_values, store
from nbops.model.dataflow import Names, scan
from nbops.errors import PipelineError
from nbops.templating import new_environment
from nbops.model.pipeline import CellRef, Parameter, Pipeline, Step
from nbops.model.plain_python import Import, PlainPython, indent_code, string_literal

if TYPE_CHECKING:
    import jinja2

LINE_LENGTH = 100  # nbops's own, so the verbatim copy of store.py is formatted already
BUILTIN_NAMES = frozenset(dir(builtins))
BUILTIN_TYPES = frozenset(
    {"int", "float", "str", "bool", "list", "dict", "tuple", "set", "frozenset", "bytes"}
    | {"complex", "bytearray"}
)
# Names a notebook has without importing them that generated code imports from capture.py,
# the module `nbops run` takes them from too.
KERNEL_NAMES = frozenset({"display"})
ANY: Import = ("typing", "Any")
MAPPING: Import = ("collections.abc", "Mapping")

# The files every build has, and the template each is rendered from.
PIPELINE_FILES = {
    "ruff.toml": "pipeline/ruff.toml.j2",
    "pipeline/__init__.py": "pipeline/__init__.py.j2",
    "pipeline/__main__.py": "pipeline/__main__.py.j2",
    "pipeline/dag.py": "pipeline/dag.py.j2",
    "pipeline/parameters.py": "pipeline/parameters.py.j2",
    "pipeline/runner.py": "pipeline/runner.py.j2",
    "pipeline/shared.py": "pipeline/shared.py.j2",
    "pipeline/steps/__init__.py": "pipeline/steps/__init__.py.j2",
    "pipeline/task.py": "pipeline/task.py.j2",
}


def render_pipeline(pipeline: Pipeline) -> dict[str, str]:
    """The package `pipeline/` and its `ruff.toml`, as {path relative to the build: text}."""
    context = template_context(pipeline)
    files = {path: render(template, context) for path, template in PIPELINE_FILES.items()}
    for module in (capture, metric_values, store):  # copied as they are: it runs as nbops runs
        name = Path(str(module.__file__)).name
        files[f"pipeline/{name}"] = Path(str(module.__file__)).read_text(encoding="utf-8")
    for step in context["steps"]:
        path = f"pipeline/steps/{step['module']}.py"
        files[path] = render("pipeline/steps/step.py.j2", {**context, "step": step})
    if context["metrics"] is not None:
        files["pipeline/metrics.py"] = render("pipeline/metrics.py.j2", context)
    return dict(sorted(files.items()))


def render_tests(pipeline: Pipeline) -> dict[str, str]:
    """`tests/test_<step>.py` for the test cells, and their conftest; empty without test cells.

    The tests read the run's artifacts through tests/artifacts.json, and the parameters that
    run used through tests/parameters.json (defaults when absent); the build writes both.
    """
    context = template_context(pipeline)
    if not context["tests"]:
        return {}
    files = {"tests/conftest.py": render("tests/conftest.py.j2", context)}
    for module in context["tests"]:
        path = f"tests/{module['module']}.py"
        files[path] = render("tests/test_step.py.j2", {**context, "module": module})
    return dict(sorted(files.items()))


def write_pipeline(pipeline: Pipeline, out_dir: str | Path) -> list[Path]:
    """Write the package and its tests under `out_dir` (a fresh folder), then `ruff format` them.

    The templates write formatted code, but cells are kept as the notebook has them.
    """
    root = Path(out_dir)
    written: list[Path] = []
    for relative, text in {**render_pipeline(pipeline), **render_tests(pipeline)}.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    format_files(root / "ruff.toml", [path for path in written if path.suffix == ".py"])
    return written


def format_files(config: Path, files: list[Path]) -> None:
    command = [sys.executable, "-m", "ruff", "format", "--quiet", "--config", str(config)]
    result = subprocess.run(
        [*command, *map(str, files)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise PipelineError(
            f"ruff could not format the generated code: {result.stderr.strip()}",
            where=str(config.parent),
            fix="This is a bug in nbops; please report it with the notebook.",
        )


# the context: plain data for the templates


def template_context(pipeline: Pipeline) -> dict[str, Any]:
    """Everything the templates show, as plain data; raises when the notebook has errors."""
    if pipeline.errors:
        count = len(pipeline.errors)
        raise PipelineError(
            f"the notebook has {count} error{'s' if count > 1 else ''}, "
            "so nbops cannot generate its pipeline.",
            where=pipeline.notebook.path,
            fix=f"Run `nbops check {pipeline.notebook.path}` and fix them.",
        )
    scope = Scope(pipeline)
    steps = [_step(scope, step) for step in pipeline.steps]
    return {
        "name": pipeline.notebook.name,
        "notebook": pipeline.notebook.display_name,
        "version": __version__,
        "line_length": LINE_LENGTH,
        "parameters": [_parameter(p) for p in pipeline.parameters],
        "setup": _setup(scope),
        "steps": steps,
        "edges": [(edge.source, edge.target, edge.artifacts) for edge in pipeline.edges],
        "metrics": _metrics(scope),
        "tests": _tests(scope),
    }


class Scope:
    """Where the names a section reads come from: parameters, setup, builtins."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.parameters = {p.name: p for p in pipeline.parameters}
        self.setup = _scan_cells(pipeline, pipeline.setup)
        computed = [n for part in pipeline.parameter_code for n in part.writes]
        self.setup_names = tuple(dict.fromkeys([*computed, *self.setup.writes]))

    def shared_names(self, reads: Iterable[str], taken: set[str]) -> list[str]:
        """What a section imports from shared.py: the setup names it reads, bar its arguments.

        After a star import in setup nobody knows its names, so every other read is imported.
        """
        known = set(self.setup_names)
        return _sorted_names(
            n
            for n in reads
            if n not in taken
            and (n in known or (self.setup.opaque and n not in BUILTIN_NAMES | KERNEL_NAMES))
        )

    def kernel_names(self, reads: Iterable[str], taken: set[str]) -> list[str]:
        """The kernel's names (`display`) among `reads` that setup does not define."""
        return sorted(set(reads) & KERNEL_NAMES - taken - set(self.setup_names))

    def parameter_arguments(self, reads: Iterable[str], taken: set[str]) -> list[dict[str, str]]:
        """The parameters among `reads`, in the parameters cell's order."""
        read = set(reads) - taken
        return [_parameter(p) for p in self.pipeline.parameters if p.name in read]


def _parameter(parameter: Parameter) -> dict[str, Any]:
    return {
        "name": parameter.name,
        "default": parameter.default,
        "annotation": parameter.type if parameter.type in BUILTIN_TYPES else "Any",
        "help": parameter.help,
    }


def _setup(scope: Scope) -> dict[str, Any]:
    pipeline = scope.pipeline
    cells, imports = cell_code(pipeline, pipeline.setup)
    reads = [*(n for part in pipeline.parameter_code for n in part.reads), *scope.setup.reads]
    from_parameters = [n for n in dict.fromkeys(reads) if n in scope.parameters]
    local = [(".parameters", name) for name in from_parameters]
    local += [
        (".capture", n) for n in scope.kernel_names(_kernel_reads(pipeline, pipeline.setup), set())
    ]
    return {
        "parameter_code": parameter_code(pipeline),
        "cells": cells,
        "names": _sorted_names(scope.setup_names),
        "imports": import_groups(imports, local),
    }


def parameter_code(pipeline: Pipeline) -> list[dict[str, Any]]:
    """The parameters cells' other statements: shared.py runs them first, after parameters.py
    has the values (`--param` sets them before shared.py is imported), as `nbops run` does."""
    return [
        {"index": part.cell.index, "id": part.cell.id, "code": part.source.strip()}
        for part in pipeline.parameter_code
    ]


def _step(scope: Scope, step: Step) -> dict[str, Any]:
    pipeline = scope.pipeline
    inputs = [(name, _producer(pipeline, name, step)) for name in step.inputs]
    section = _section(scope, step.cells, inputs, step.reads, step.parameters)
    return {
        **section,
        "name": step.name,
        "module": step.name,
        "function": step.name,
        "outputs": [{"name": n, "readers": _readers(pipeline, step.name, n)} for n in step.outputs],
        "imports": _module_imports(section, package=".."),
    }


def _producer(pipeline: Pipeline, artifact: str, step: Step) -> str:
    producer = pipeline.producer(artifact, step.name)
    if producer is None:  # analysis gives every input an edge; without one the dag would lie
        raise ValueError(f"no edge brings {artifact!r} to step {step.name!r}")
    return producer


def _metrics(scope: Scope) -> dict[str, Any] | None:
    metrics = scope.pipeline.metrics
    if not metrics.names:
        return None
    section = _section(scope, metrics.cells, list(metrics.inputs), metrics.reads, metrics.reads)
    return {
        **section,
        "names": list(metrics.names),
        "imports": _module_imports(section, package="."),
    }


def _section(
    scope: Scope,
    refs: tuple[CellRef, ...],
    inputs: list[tuple[str, str]],
    reads: Iterable[str],
    parameters_read: Iterable[str],
) -> dict[str, Any]:
    """What a step, the metrics and a test have alike: cells run with arguments and imports.

    `inputs` pairs each artifact read with the step that made it.
    """
    parameters = scope.parameter_arguments(parameters_read, {name for name, _ in inputs})
    taken = {*(name for name, _ in inputs), *(p["name"] for p in parameters)}
    rebound = _rebound(scope, refs, taken)
    cells, imports = cell_code(scope.pipeline, refs)
    return {
        "cells": cells,
        "inputs": [{"name": n, "producer": p, "key": f"{p}.{n}"} for n, p in inputs],
        "input_map": dict(inputs),
        "parameters": parameters,
        "arguments": [{"name": name, "annotation": "Any"} for name, _ in inputs]
        + [{"name": p["name"], "annotation": p["annotation"]} for p in parameters],
        "rebound": rebound,
        "shared": scope.shared_names(reads, taken | {r["name"] for r in rebound}),
        "kernel": scope.kernel_names(_kernel_reads(scope.pipeline, refs), taken),
        "cell_imports": imports,
        # ruff wants a blank line between a docstring and a def; a function needs a statement.
        "gap": not rebound and bool(cells) and cells[0]["opens_with_definition"],
        "empty": not inputs and not parameters and not any(c["statements"] for c in cells),
    }


def _module_imports(section: dict[str, Any], package: str) -> list[list[dict[str, Any]]]:
    """A step's or the metrics' imports; `package` is where shared.py is, relative to them."""
    rebound = section["rebound"]
    return import_groups(
        [*section["cell_imports"], ANY, *_rebound_imports(rebound, package, standard=True)],
        [
            *_rebound_imports(rebound, package),
            *((f"{package}shared", name) for name in section["shared"]),
            *((f"{package}capture", name) for name in section["kernel"]),
        ],
    )


def _tests(scope: Scope) -> list[dict[str, Any]]:
    """One module per step tested, in step order; one function per test section."""
    order = {step.name: index for index, step in enumerate(scope.pipeline.steps)}
    modules: dict[str, list[dict[str, Any]]] = {}
    for test in scope.pipeline.tests:
        step = test.step or "notebook"
        section = _section(scope, test.cells, list(test.inputs), test.reads, test.reads)
        function = f"test_cell_{test.cells[0].index}_{step}"
        modules.setdefault(step, []).append({**section, "function": function})
    return [
        _test_module(step, functions)
        for step, functions in sorted(modules.items(), key=lambda item: order.get(item[0], -1))
    ]


def _test_module(step: str, functions: list[dict[str, Any]]) -> dict[str, Any]:
    standard: list[Import] = [i for f in functions for i in f["cell_imports"]]
    local: list[Import] = [("pipeline.shared", n) for f in functions for n in f["shared"]]
    local += [("pipeline.capture", n) for f in functions for n in f["kernel"]]
    if any(f["inputs"] or f["parameters"] for f in functions):
        standard += [MAPPING, ANY]
    for function in functions:
        standard += _rebound_imports(function["rebound"], "pipeline", standard=True)
        local += _rebound_imports(function["rebound"], "pipeline")
    return {
        "module": f"test_{step}",
        "step": step,
        "functions": functions,
        "imports": import_groups(standard, local),
    }


# pieces


def cell_code(
    pipeline: Pipeline, refs: Iterable[CellRef]
) -> tuple[list[dict[str, Any]], list[Import]]:
    """Each cell's plain Python with its index and id, and the imports that code needs."""
    cells: list[dict[str, Any]] = []
    imports: list[Import] = []
    for ref in refs:
        code = pipeline.code(ref).plain
        cells.append(
            {
                "index": ref.index,
                "id": ref.id,
                "code": code.code,
                "string_lines": sorted(code.string_lines),
                **_shape(code),
            }
        )
        imports.extend(code.imports)
    return cells, imports


def _shape(code: PlainPython) -> dict[str, bool]:
    """Whether the code has statements (not just comments) and opens with a def or class.

    The templates need both for blank lines and bodies: ruff wants a blank line between a
    docstring and a def, and a function needs a statement.
    """
    if code.syntax is None:
        return {"statements": True, "opens_with_definition": False}
    statements = code.syntax[0].body
    definitions = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    return {
        "statements": bool(statements),
        "opens_with_definition": bool(statements) and isinstance(statements[0], definitions),
    }


def _scan_cells(pipeline: Pipeline, refs: Iterable[CellRef]) -> Names:
    """Names read before the cells bind them, and the names they bind, in order."""
    reads: dict[str, int] = {}
    writes: dict[str, int] = {}
    opaque = False
    for ref in refs:
        names = pipeline.code(ref).names
        reads.update({n: line for n, line in names.reads.items() if n not in writes})
        writes.update({n: line for n, line in names.writes.items() if n not in writes})
        opaque |= names.opaque
    return Names(reads=reads, writes=writes, opaque=opaque)


def _kernel_reads(pipeline: Pipeline, refs: Iterable[CellRef]) -> set[str]:
    """The kernel's names the cells read, now or in the functions they define: the model leaves
    them out of a section's reads, as the kernel has them, but generated code imports them."""
    names = (pipeline.code(ref).names for ref in refs)
    return {n for found in names for n in (*found.reads, *found.deferred_reads)} & KERNEL_NAMES


def _rebound(scope: Scope, refs: Iterable[CellRef], taken: set[str]) -> list[dict[str, str]]:
    """Setup names and builtins the cells read and then assign.

    At module level `x = x + 1` reads the old `x`; in a function the assignment makes `x` local
    from the start, so the function begins by binding it to the value the notebook would read.
    """
    names = _scan_cells(scope.pipeline, refs)
    rebound: list[dict[str, str]] = []
    for name in names.reads:
        if name in names.writes and name not in taken:
            if name in scope.setup_names:
                rebound.append({"name": name, "module": "shared"})
            elif name in BUILTIN_NAMES:
                rebound.append({"name": name, "module": "builtins"})
    return rebound


def _rebound_imports(
    rebound: list[dict[str, str]], package: str, *, standard: bool = False
) -> list[Import]:
    """`import builtins` (standard) or `from <package> import shared`, for rebound names."""
    modules = {entry["module"] for entry in rebound}
    if standard:
        return [("builtins", None)] if "builtins" in modules else []
    return [(package, "shared")] if "shared" in modules else []


def _readers(pipeline: Pipeline, step: str, name: str) -> list[str]:
    """Who reads a step's output: later steps, the metrics, the tests, served endpoints."""
    readers = [e.target for e in pipeline.edges if e.source == step and name in e.artifacts]
    if (name, step) in pipeline.metrics.inputs:
        readers.append("the metrics")
    if any((name, step) in test.inputs for test in pipeline.tests):
        readers.append("the tests")
    readers += [f"endpoint {e.name}" for e in pipeline.endpoints if (name, step) in e.inputs]
    return readers


def import_groups(*groups: Iterable[Import]) -> list[list[dict[str, Any]]]:
    """Import statements as isort writes them: `import x` first, then `from` imports, sorted."""
    rendered: list[list[dict[str, Any]]] = []
    for group in groups:
        modules: dict[str, set[str]] = {}
        plain: set[str] = set()
        for module, name in group:
            if name is None:
                plain.add(module)
            else:
                modules.setdefault(module, set()).add(name)
        entries = [{"module": m, "names": []} for m in sorted(plain)]
        entries += [{"module": m, "names": _sorted_names(modules[m])} for m in sorted(modules)]
        if entries:
            rendered.append(entries)
    return rendered


def _sorted_names(names: Iterable[str]) -> list[str]:
    """isort's order: CONSTANTS, then Classes, then everything else, each alphabetical."""

    def kind(name: str) -> int:
        if name.isupper() and len(name) > 1:
            return 0
        return 1 if name[:1].isupper() else 2

    return sorted(set(names), key=lambda name: (kind(name), name))


# rendering


def python_literal(value: Any) -> str:
    """A parameter's default (or any literal data) as Python source, in ruff's style."""
    if isinstance(value, str):
        return string_literal(value)
    if isinstance(value, float) and not math.isfinite(value):
        return f'float("{value}")'
    if isinstance(value, list):
        return "[" + ", ".join(python_literal(v) for v in value) + "]"
    if isinstance(value, tuple):
        items = [python_literal(v) for v in value]
        return f"({items[0]},)" if len(items) == 1 else "(" + ", ".join(items) + ")"
    if isinstance(value, (set, frozenset)):
        items = sorted(python_literal(v) for v in value)
        body = "{" + ", ".join(items) + "}" if items else "set()"
        return body if isinstance(value, set) else f"frozenset({body if items else ''})"
    if isinstance(value, Mapping):
        pairs = (f"{python_literal(k)}: {python_literal(v)}" for k, v in value.items())
        return "{" + ", ".join(pairs) + "}"
    return repr(value)


FILTERS: dict[str, Callable[..., Any]] = {
    "py": python_literal,
    "indent_code": indent_code,
    "tuple": tuple,
}


@functools.lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    return new_environment(filters=FILTERS)


def render(template: str, context: dict[str, Any]) -> str:
    """A code template rendered with the build's filters (`py`, `indent_code`, `tuple`)."""
    text: str = _environment().get_template(template).render(context)
    return text
