"""The generated service: a FastAPI app serving the Pipeline's endpoints, from templates/service/.

`render_service` is pure, like codegen's renderers: a model in, file texts out. The templates
see a plain context built here; they write all the code. A notebook without a serve cell has no
service.
"""

from __future__ import annotations

import ast
import functools
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from nbops.build.codegen import (
    LINE_LENGTH,
    cell_code,
    template_context,
    format_files,
    import_groups,
    render,
    Scope,
    python_literal,
)
from nbops.model.dataflow import scan
from nbops.model.endpoints import class_name
from nbops.errors import PipelineError
from nbops.model.examples import smoke_example
from nbops.build import profile
from nbops.build.reference import call_plan
from nbops.build.hints import SHARED, TYPED_DICT, NotebookTypes, field_type, notebook_types
from nbops.model.pipeline import Argument, CellRef, Endpoint, Pipeline
from nbops.model.plain_python import Import, PlainPython

# The files of the service, and the template each is rendered from.
SERVICE_FILES = {
    "service/__init__.py": "service/__init__.py.j2",
    "service/artifacts.py": "service/artifacts.py.j2",
    "service/batching.py": "service/batching.py.j2",
    "service/endpoints.py": "service/endpoints.py.j2",
    "service/errors.py": "service/errors.py.j2",
    "service/main.py": "service/main.py.j2",
    "service/monitoring.py": "service/monitoring.py.j2",
    "service/observability.py": "service/observability.py.j2",
    "service/operations.py": "service/operations.py.j2",
    "service/routes.py": "service/routes.py.j2",
    "service/schemas.py": "service/schemas.py.j2",
    "service/security.py": "service/security.py.j2",
    "service/settings.py": "service/settings.py.j2",
    "tests/test_service_smoke.py": "service/test_service_smoke.py.j2",
}
# Only a service with a batch function (`serve batch`) has it.
BATCHING = "service/batching.py"
# Modules of nbops the service holds verbatim copies of: they import only the standard library.
SERVICE_COPIES = {"service/profile.py": profile}
# What each request model has besides the function's arguments: its methods.
REQUEST_METHODS = frozenset({"call", "given"})


def render_service(pipeline: Pipeline) -> dict[str, str]:
    """`service/` and its smoke tests, as {path relative to the build: text}; empty without
    endpoints."""
    if not pipeline.endpoints:
        return {}
    context = service_context(pipeline)
    wanted = {p: t for p, t in SERVICE_FILES.items() if context["batching"] or p != BATCHING}
    files = {path: render(template, context) for path, template in wanted.items()}
    for path, module in SERVICE_COPIES.items():  # copied as they are, like pipeline/store.py
        files[path] = Path(str(module.__file__)).read_text(encoding="utf-8")
    return dict(sorted(files.items()))


def write_service(pipeline: Pipeline, build_dir: str | Path) -> list[Path]:
    """Write the service into a build beside its `pipeline/`, then `ruff format` it.

    The serve cells are kept as the notebook has them, so formatting may still change them.
    """
    root = Path(build_dir)
    written: list[Path] = []
    for relative, text in render_service(pipeline).items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    if written:
        format_files(_ruff_config(pipeline, root), [p for p in written if p.suffix == ".py"])
    return written


def _ruff_config(pipeline: Pipeline, root: Path) -> Path:
    """The build's ruff.toml; write_pipeline writes it, but the service may be written alone."""
    config = root / "ruff.toml"
    if not config.is_file():
        context = {"notebook": pipeline.notebook.display_name, "line_length": LINE_LENGTH}
        config.write_text(render("pipeline/ruff.toml.j2", context), encoding="utf-8")
    return config


# the context: plain data for the templates


def service_context(pipeline: Pipeline) -> dict[str, Any]:
    """Everything the service's templates show; raises when the notebook has errors."""
    base = template_context(pipeline)
    scope = Scope(pipeline)
    types = notebook_types(_trees(pipeline, pipeline.setup))
    endpoints = [_endpoint(pipeline, endpoint, types) for endpoint in pipeline.endpoints]
    return {
        "name": base["name"],
        "notebook": base["notebook"],
        "version": base["version"],
        "line_length": base["line_length"],
        "endpoints": endpoints,
        "module": _module(scope),
        "schema_imports": _schema_imports(endpoints),
        "typed_dicts": any(e["uses_typed_dict"] for e in endpoints),
        "batching": any(e["batch"] for e in endpoints),
    }


def _endpoint(pipeline: Pipeline, endpoint: Endpoint, types: NotebookTypes) -> dict[str, Any]:
    fields = [_field(endpoint, argument, types) for argument in endpoint.request_arguments()]
    result = field_type(endpoint.item_returns if endpoint.batch else endpoint.returns, types)
    kinds = {kind: [f for f in fields if f["kind"] == kind] for kind in _KINDS}
    texts = [f["type"] for f in fields] + [result.text]
    return {
        "name": endpoint.name,
        "route": endpoint.route,
        "path": f"/{endpoint.route}",
        "model": class_name(endpoint.name),
        "signature": endpoint.signature(),
        "docstring": _in_docstring(endpoint.docstring),
        "cells": [ref.as_dict() for ref in endpoint.cells],
        "artifacts": [{"name": n, "key": f"{p}.{n}"} for n, p in endpoint.inputs],
        "fields": fields,
        "call": {
            "positional": kinds["positional_only"],
            "star": next(iter(kinds["var_positional"]), None),
            "keywords": kinds["positional_or_keyword"] + kinds["keyword_only"],
            "double_star": next(iter(kinds["var_keyword"]), None),
        },
        "result": {"type": result.text, "note": result.note},
        "typing": sorted({name for f in fields for name in f["typing"]} | result.typing),
        "uses_shared": any(f"{SHARED}." in text for text in texts),
        "uses_typed_dict": any(f"{TYPED_DICT}(" in text for text in texts),
        "example": _example(pipeline, endpoint),
        "monitored": _monitored(pipeline, endpoint, fields),
        # A batch function takes a list: each request is one item, its one field's value.
        "batch": endpoint.batch,
        "item": fields[0]["attribute"] if endpoint.batch and fields else None,
    }


def _monitored(
    pipeline: Pipeline, endpoint: Endpoint, fields: list[dict[str, Any]]
) -> dict[str, Any] | None:
    """Where a request's input fields are, for an endpoint with a reference profile: the one
    argument whose dict holds them (its attribute), or the arguments that are the fields."""
    if not endpoint.reference:
        return None
    plan = call_plan(pipeline, endpoint)
    attributes = {f["name"]: f["attribute"] for f in fields}
    if plan["argument"]:
        return {"argument": attributes[plan["argument"]], "fields": []}
    named = [{"name": name, "attribute": attributes[name]} for name in plan["fields"]]
    return {"argument": None, "fields": named}


_KINDS = (
    "positional_only",
    "positional_or_keyword",
    "var_positional",
    "keyword_only",
    "var_keyword",
)


def _field(endpoint: Endpoint, argument: Argument, types: NotebookTypes) -> dict[str, Any]:
    """One argument as a request field: its type, default, and the attribute that holds it."""
    hint = field_type(argument.annotation, types)
    literal = _literal(argument.default)
    # A default computed from other names: a request that leaves the field out gets it.
    computed = argument.default if literal is None else None
    if argument.kind == "positional_only" and computed is not None:
        raise _unsupported(
            endpoint,
            f"its positional-only argument {argument.name!r} has a default that is not a "
            f"literal ({computed}), so a request cannot leave it out.",
            "Make the argument a normal one, or give it a literal default.",
        )
    attribute = f"arg_{argument.name}" if _clashes(argument.name) else argument.name
    return {
        "name": argument.name,
        "attribute": attribute,
        "alias": attribute != argument.name,
        "kind": argument.kind,
        "type": hint.text,
        "typing": sorted(hint.typing),
        "note": hint.note,
        "default": literal,
        "computed_default": computed,
    }


def _literal(default: str | None) -> str | None:
    """A literal default in ruff's style, as the module around it (`'a'` is written "a")."""
    if default is None:
        return None
    try:
        value = ast.literal_eval(default)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    return python_literal(value)


def _example(pipeline: Pipeline, endpoint: Endpoint) -> str | None:
    """The body of the endpoint's example request, as JSON, for the smoke tests (the manifest
    records the same one, and a deploy sends it); None without one."""
    example = smoke_example(pipeline, endpoint)
    return example.json if example else None


def _in_docstring(text: str) -> str:
    """The function's docstring as the body of the route's (FastAPI shows it in /docs): the
    same text once Python reads the literal, whatever quotes and backslashes it holds."""
    escaped = text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    return escaped[:-1] + '\\"' if escaped.endswith('"') else escaped


@functools.lru_cache(maxsize=1)
def _model_attributes() -> frozenset[str]:
    from pydantic import BaseModel

    return frozenset(dir(BaseModel)) | REQUEST_METHODS


def _clashes(name: str) -> bool:
    """Whether the name cannot be a pydantic field: private, pydantic's own, or a method."""
    return name.startswith(("_", "model_")) or name in _model_attributes()


def _unsupported(endpoint: Endpoint, message: str, fix: str) -> PipelineError:
    cell = endpoint.cells[0]
    return PipelineError(
        f"serve function {endpoint.name!r} cannot be served: {message}",
        where=f"cell {cell.index} [serve]",
        fix=fix,
    )


def _trees(pipeline: Pipeline, refs: Iterable[CellRef]) -> list[ast.Module]:
    return [pipeline.code(ref).python.tree for ref in refs]


def _module(scope: Scope) -> dict[str, Any]:
    """service/endpoints.py: the serve cells, once each, with what they read from elsewhere."""
    pipeline = scope.pipeline
    # An `example` cell is the endpoint's example request, not code the service runs.
    served = {ref for e in pipeline.endpoints for ref in e.cells}
    refs = sorted((r for r in served if not pipeline.code(r).tags.example), key=lambda r: r.index)
    artifacts = _artifacts(pipeline)
    reads, writes = _names(_trees(pipeline, refs))
    taken = set(artifacts) | writes
    parameters = scope.parameter_arguments(reads, taken)
    shared = scope.shared_names(reads, taken | {p["name"] for p in parameters})
    cells, imports = cell_code(pipeline, refs)
    functions = {endpoint.name for endpoint in pipeline.endpoints}
    cells = [
        _without_example_calls(cell, pipeline.code(ref).plain, functions)
        for cell, ref in zip(cells, refs, strict=True)
    ]
    local: list[Import] = [("pipeline.shared", name) for name in shared]
    local += [("pipeline.parameters", p["name"]) for p in parameters]
    local += [("pipeline.capture", name) for name in scope.kernel_names(reads, taken)]
    own: list[Import] = [(".artifacts", "loaded")] if artifacts else []
    groups = import_groups(imports, local, own)
    return {
        "cells": cells,
        "imports": groups,
        "artifacts": [{"name": name, "key": key} for name, key in sorted(artifacts.items())],
        "parameters": [p["name"] for p in parameters],
        # Hints such as Literal["a"] read as forward references to ruff, which cannot see that
        # pipeline.shared's Literal is typing's.
        "typing_from_shared": sorted({"Literal", "Annotated"} & set(shared)),
    }


def _without_example_calls(
    cell: dict[str, Any], plain: PlainPython, functions: set[str]
) -> dict[str, Any]:
    """The cell without its calls of serve functions as statements of their own.

    `predict({...})` under a serve cell shows a result in the notebook; run when the service
    imports the cells, it would only slow start-up, and fail it where the example does.
    """
    if plain.syntax is None:
        return {**cell, "left_out": []}
    tree, offset = plain.syntax
    calls: dict[str, list[ast.stmt]] = {}
    for node in tree.body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            function = node.value.func
            if isinstance(function, ast.Name) and function.id in functions:
                calls.setdefault(function.id, []).append(node)
    if not calls:
        return {**cell, "left_out": []}
    nodes = [node for found in calls.values() for node in found]
    dropped = {n - offset for node in nodes for n in range(node.lineno, (node.end_lineno or 0) + 1)}
    numbered = list(enumerate(cell["code"].split("\n"), start=1))
    kept = _trimmed_lines([(n, line) for n, line in numbered if n not in dropped])
    # The lines inside multi-line strings, renumbered for the code that is left.
    renumbered = {old: new for new, (old, _) in enumerate(kept, start=1)}
    strings = sorted(renumbered[n] for n in cell["string_lines"] if n in renumbered)
    code = "\n".join(line for _, line in kept)
    return {**cell, "code": code, "string_lines": strings, "left_out": sorted(calls)}


def _trimmed_lines(lines: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """Without the empty lines at either end, as `str.strip("\\n")` would leave the text."""
    start, end = 0, len(lines)
    while start < end and lines[start][1] == "":
        start += 1
    while end > start and lines[end - 1][1] == "":
        end -= 1
    return lines[start:end]


def _artifacts(pipeline: Pipeline) -> dict[str, str]:
    """Name -> "<step>.<name>" of every value the serve functions read from a step.

    The serve cells share one module, so one name can hold only one step's value.
    """
    keys: dict[str, str] = {}
    for endpoint in pipeline.endpoints:
        for name, producer in endpoint.inputs:
            key = f"{producer}.{name}"
            if keys.setdefault(name, key) != key:
                raise _unsupported(
                    endpoint,
                    f"it reads {name!r} as made by step {producer!r}, while another serve "
                    f"function reads the {keys[name]} value of that name.",
                    "Give the two values different names in the notebook.",
                )
    return keys


def _names(trees: list[ast.Module]) -> tuple[set[str], set[str]]:
    """Names the cells read from elsewhere (now or inside functions), and names they bind.

    A name read at module level before the cells bind it still comes from elsewhere.
    """
    reads: set[str] = set()
    writes: set[str] = set()
    for tree in trees:
        names = scan(tree)
        reads |= {n for n in names.reads if n not in writes}
        reads |= {n for n in names.deferred_reads if n not in writes and n not in names.writes}
        writes |= set(names.writes)
    return reads, writes - reads


def _schema_imports(endpoints: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """schemas.py's imports: typing's names the hints use, pydantic, the notebook's types."""
    standard: list[Import] = [("collections.abc", "Callable"), ("typing", "Any")]
    standard += [("typing", name) for e in endpoints for name in e["typing"]]
    standard.append(("typing", "Literal"))  # the service's own models use it
    third_party: list[Import] = [("pydantic", name) for name in ("BaseModel", "ConfigDict")]
    if any(f["alias"] for e in endpoints for f in e["fields"]):
        third_party.append(("pydantic", "Field"))
    if any(e["uses_typed_dict"] for e in endpoints):
        standard.append(("sys", None))
        standard += [("typing", name) for name in ("get_args", "get_origin", "get_type_hints")]
        standard.append(("typing", "is_typeddict"))
        third_party += [("typing_extensions", n) for n in ("NotRequired", "Required", "TypedDict")]
    local: list[Import] = (
        [("pipeline", "shared")] if any(e["uses_shared"] for e in endpoints) else []
    )
    return import_groups(standard, third_party, local)
