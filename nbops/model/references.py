"""Which value could be an endpoint's reference rows, for `nbops check` to suggest `reference=`.

A serve cell without `reference=` builds a service that cannot tell when its inputs drift from
the data the model was built on. When a step makes a table (a value assigned from
`pd.DataFrame(...)` or a `read_csv`-like call), the check says so at the serve cell, naming the
first such table: the raw rows a model is trained on usually come first.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator

from nbops.model.diagnostic import Diagnostic, Severity
from nbops.model.pipeline import CellRef, Pipeline

# The last part of a call's dotted name that makes a table (pandas' constructors and readers).
TABLE_CALLS = frozenset(
    {
        "DataFrame",
        "read_csv",
        "read_parquet",
        "read_json",
        "read_excel",
        "read_feather",
        "read_sql",
        "read_table",
        "read_orc",
    }
)


def reference_hints(pipeline: Pipeline) -> tuple[Diagnostic, ...]:
    """An INFO diagnostic at each serve cell without `reference=`, when a step makes a table."""
    table = next(table_values(pipeline), None)
    if table is None:
        return ()
    step, name, where = table
    found: list[Diagnostic] = []
    for endpoint in pipeline.endpoints:
        if endpoint.reference is not None:
            continue
        cell = endpoint.cells[0]
        found.append(
            Diagnostic(
                Severity.INFO,
                f"serve function {endpoint.name!r} has no reference rows, so its service "
                "cannot tell when its inputs drift from the data it was built on.",
                f"Add the tag 'reference={step}.{name}' to this cell (the table step {step!r} "
                f"makes in cell {where.index}) if its columns hold {endpoint.name}'s input "
                "fields; nbops build then stores their profile and the service compares its "
                "requests with it.",
                cell_index=cell.index,
                cell_id=cell.id,
                line=endpoint.line,
                tag="serve",
            )
        )
    return tuple(found)


def table_values(pipeline: Pipeline) -> Iterator[tuple[str, str, CellRef]]:
    """(step, name, cell) of each value a step keeps that a table-making call assigned, in
    notebook order."""
    for step in pipeline.steps:
        kept = set(step.outputs) | set(step.writes)
        for ref in step.cells:
            for node in ast.walk(pipeline.code(ref).python.tree):
                name = _assigned_table(node)
                if name is not None and name in kept:
                    yield step.name, name, ref


def _assigned_table(node: ast.AST) -> str | None:
    if not isinstance(node, ast.Assign) or len(node.targets) != 1:
        return None
    target, value = node.targets[0], node.value
    if not isinstance(target, ast.Name) or not isinstance(value, ast.Call):
        return None
    func = value.func
    called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    return target.id if called in TABLE_CALLS else None
