"""Example calls of serve functions found in the notebook, as request bodies for smoke tests."""

from __future__ import annotations

import ast
from typing import Any

from nbops.model.pipeline import Endpoint, Pipeline


def example_request(pipeline: Pipeline, endpoint: Endpoint) -> dict[str, Any] | None:
    """The arguments of the first call `name(...)` with literal arguments in any code cell,
    tagged or not, as {parameter: value}; None when the notebook never calls it that way."""
    for cell in pipeline.notebook.cells:
        if not cell.is_code or endpoint.name not in cell.source:
            continue
        for node in ast.walk(pipeline.code_at(cell.index).python.tree):
            if _calls(node, endpoint.name):
                body = _arguments(node, endpoint)  # type: ignore[arg-type]
                if body is not None:
                    return body
    return None


def _calls(node: ast.AST, name: str) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == name


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
