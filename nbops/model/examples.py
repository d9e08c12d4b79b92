"""Example requests of serve functions: the calls the notebook makes with literal arguments.

One choice serves every face: the build's smoke tests send the example of each route, the
manifest records it, and a deploy sends the same body as its smoke request. A cell tagged
`example` names the call to use; without one, the first call anywhere in the notebook with
literal arguments is the example, as before the tag existed.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from nbops.model.diagnostic import Diagnostic, Severity
from nbops.model.pipeline import CellRef, Endpoint, Pipeline
from nbops.model.sections import CodeCell

EXAMPLE_TAG = "example"


@dataclass(frozen=True)
class Example:
    """A call of a serve function with literal arguments, as the JSON body of a request."""

    function: str
    body: dict[str, Any]
    cell: CellRef
    line: int
    tagged: bool  # made in a cell tagged `example`
    # A batch function's call passes a list: its items, each the body of one request (the
    # first is `body`'s), which the build calls the function with, together and alone.
    items: tuple[Any, ...] = ()

    @property
    def json(self) -> str:
        return json.dumps(self.body, allow_nan=False)


def smoke_example(pipeline: Pipeline, endpoint: Endpoint) -> Example | None:
    """The endpoint's example: its first call in a cell tagged `example`, else its first call
    in any code cell (tagged or not, skipped too); only calls whose arguments are literals that
    JSON keeps as they are. None when the notebook never calls it that way."""
    calls = [call for call in _calls(pipeline, endpoint) if call is not None]
    return next((call for call in calls if call.tagged), calls[0] if calls else None)


def example_request(pipeline: Pipeline, endpoint: Endpoint) -> dict[str, Any] | None:
    """The body of the endpoint's example request, or None."""
    example = smoke_example(pipeline, endpoint)
    return example.body if example else None


def example_diagnostics(pipeline: Pipeline) -> tuple[Diagnostic, ...]:
    """What is wrong with the cells tagged `example`: one that calls no serve function, or
    calls one with arguments a request cannot carry."""
    functions = {endpoint.name: endpoint for endpoint in pipeline.endpoints}
    found: list[Diagnostic] = []
    for code in pipeline.code_cells:
        if not code.tags.example:
            continue
        calls = [node for node in ast.walk(code.python.tree) if _called(node) in functions]
        if not calls:
            found.append(_no_call(code, sorted(functions)))
        for node in calls:
            assert isinstance(node, ast.Call)
            if _example(node, functions[_called(node) or ""], code, tagged=True) is None:
                found.append(_not_literal(code, node))
    return tuple(found)


def batch_hints(pipeline: Pipeline) -> tuple[Diagnostic, ...]:
    """An INFO diagnostic at each batch function the notebook never calls with a literal list:
    the build can check how it batches only with such a call."""
    found: list[Diagnostic] = []
    for endpoint in pipeline.endpoints:
        if not endpoint.batch or smoke_example(pipeline, endpoint) is not None:
            continue
        cell = endpoint.cells[0]
        found.append(
            Diagnostic(
                Severity.INFO,
                f"batch function {endpoint.name!r} has no example call, so the build cannot "
                "check that it answers each item of a list as it answers the item alone.",
                f"Call it with a literal list of inputs in a cell tagged 'example', e.g. "
                f"'{endpoint.name}([{{...}}, {{...}}])'; the build calls it with them, alone "
                "and together.",
                cell_index=cell.index,
                cell_id=cell.id,
                line=endpoint.line,
                tag="serve",
            )
        )
    return tuple(found)


def _calls(pipeline: Pipeline, endpoint: Endpoint) -> Iterator[Example | None]:
    """Every call of the endpoint's function in the notebook, in order, as an Example or None
    when its arguments cannot be a request."""
    for cell in pipeline.notebook.cells:
        if not cell.is_code or endpoint.name not in cell.source:
            continue
        code = pipeline.code_at(cell.index)
        for node in ast.walk(code.python.tree):
            if isinstance(node, ast.Call) and _called(node) == endpoint.name:
                yield _example(node, endpoint, code, tagged=code.tags.example)


def _called(node: ast.AST) -> str | None:
    """The name a call calls, when it calls a plain name."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return node.func.id
    return None


def _example(call: ast.Call, endpoint: Endpoint, code: CodeCell, *, tagged: bool) -> Example | None:
    body = _arguments(call, endpoint)
    if body is None or not _is_json(body):
        return None
    cell = CellRef(code.cell.index, code.cell.id)
    if endpoint.batch:
        return _batch_example(body, endpoint, cell, call.lineno, tagged=tagged)
    return Example(endpoint.name, body, cell, call.lineno, tagged)


def _batch_example(
    body: dict[str, Any], endpoint: Endpoint, cell: CellRef, line: int, *, tagged: bool
) -> Example | None:
    """A call of a batch function with a literal list alone: a request sends its first item."""
    first = endpoint.arguments[0].name if endpoint.arguments else ""
    items = body.get(first)
    if set(body) != {first} or not isinstance(items, list) or not items:
        return None
    return Example(endpoint.name, {first: items[0]}, cell, line, tagged, tuple(items))


def _arguments(call: ast.Call, endpoint: Endpoint) -> dict[str, Any] | None:
    names = [
        a.name for a in endpoint.arguments if a.kind in ("positional_only", "positional_or_keyword")
    ]
    if len(call.args) > len(names) or any(isinstance(a, ast.Starred) for a in call.args):
        return None
    try:
        body = {name: ast.literal_eval(arg) for name, arg in zip(names, call.args, strict=False)}
        for keyword in call.keywords:
            if keyword.arg is None:
                return None
            body[keyword.arg] = ast.literal_eval(keyword.value)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None
    return body


def _is_json(body: dict[str, Any]) -> bool:
    """Whether JSON carries the body unchanged: not a tuple, a set, bytes or NaN."""
    try:
        return bool(json.loads(json.dumps(body, allow_nan=False)) == body)
    except (TypeError, ValueError):
        return False


def _no_call(code: CodeCell, functions: list[str]) -> Diagnostic:
    known = ", ".join(f"{name}(...)" for name in functions) or "a serve function"
    return _diagnostic(
        code,
        1,
        "this cell is tagged 'example' but calls no serve function, so it is no route's example.",
        f"Call {known} here with literal arguments, or remove the 'example' tag.",
    )


def _not_literal(code: CodeCell, call: ast.Call) -> Diagnostic:
    text = ast.unparse(call)
    shown = text if len(text) <= 60 else text[:57] + "..."
    return _diagnostic(
        code,
        call.lineno,
        f"the example call {shown} has arguments that are not JSON literals, "
        "so it cannot be sent as a request.",
        "Write the arguments as literals, as a request carries them: numbers, strings, "
        "True, False, None, and lists and dicts of them.",
    )


def _diagnostic(code: CodeCell, line: int, message: str, fix: str) -> Diagnostic:
    return Diagnostic(
        Severity.ERROR,
        message,
        fix,
        cell_index=code.cell.index,
        cell_id=code.cell.id,
        line=line,
        tag=EXAMPLE_TAG,
    )
