"""What people see in a terminal: the lineage as a Rich tree, diagnostics as coloured lines."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nbops.diagnostic import Diagnostic, Severity
from nbops.lineage import endpoint_producer
from nbops.pipeline import CellRef, Pipeline

if TYPE_CHECKING:
    from rich.console import Console
    from rich.tree import Tree

STYLES = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}


def console(stderr: bool = False) -> Console:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def _cells(refs: tuple[CellRef, ...]) -> str:
    indexes = ", ".join(str(r.index) for r in refs)
    return f"cell {indexes}" if len(refs) == 1 else f"cells {indexes}"


def lineage_tree(pipeline: Pipeline) -> Tree:
    from rich.markup import escape
    from rich.tree import Tree

    tree = Tree(f"[bold]{escape(pipeline.notebook.display_name)}[/]")
    if pipeline.parameters:
        branch = tree.add("[bold]parameters[/]")
        for p in pipeline.parameters:
            help_text = f" [dim]— {escape(p.help)}[/]" if p.help else ""
            branch.add(f"{p.name} = {escape(repr(p.default))} [dim]({p.type})[/]{help_text}")
    if pipeline.setup:
        tree.add(f"[bold]setup[/] [dim]{_cells(pipeline.setup)}[/]")
    steps = tree.add("[bold]steps[/]")
    for step in pipeline.steps:
        node = steps.add(f"[bold cyan]{step.name}[/] [dim]{_cells(step.cells)}[/]")
        for edge in pipeline.edges:
            if edge.target == step.name:
                flow = ", ".join(edge.artifacts) if edge.artifacts else "[dim]after[/]"
                node.add(f"← {flow} [dim]from[/] {edge.source}")
        if step.parameters:
            node.add(f"[dim]parameters:[/] {', '.join(step.parameters)}")
        if step.outputs:
            node.add(f"→ {', '.join(step.outputs)}")
    for endpoint in pipeline.endpoints:
        node = tree.add(f"[bold green]POST /{endpoint.route}[/] {escape(endpoint.signature())}")
        for artifact in endpoint.artifacts:
            producer = endpoint_producer(pipeline, endpoint, artifact)
            node.add(f"← {artifact} [dim]from[/] {producer}")
    for test in pipeline.tests:
        tree.add(f"[bold]test[/] of {test.step or '?'} [dim]{_cells(test.cells)}[/]")
    if pipeline.metrics.names:
        names = ", ".join(pipeline.metrics.names)
        tree.add(f"[bold]metrics[/] {names} [dim]{_cells(pipeline.metrics.cells)}[/]")
    return tree


def print_diagnostics(out: Console, notebook: str, diagnostics: tuple[Diagnostic, ...]) -> None:
    from rich.markup import escape

    for d in diagnostics:
        label = f"[{STYLES[d.severity]}]{d.severity.value}[/]"
        out.print(f"{label} {escape(d.location(notebook))}: {escape(d.message)}")
        if d.fix:
            out.print(f"  [dim]fix:[/] {escape(d.fix)}")


def summary_line(pipeline: Pipeline) -> str:
    errors = sum(1 for d in pipeline.diagnostics if d.is_error)
    warnings = sum(1 for d in pipeline.diagnostics if d.severity is Severity.WARNING)
    parts = [
        _count(len(pipeline.steps), "step"),
        _count(len(pipeline.endpoints), "endpoint"),
        _count(errors, "error"),
        _count(warnings, "warning"),
    ]
    return f"{pipeline.notebook.display_name}: " + ", ".join(parts)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")
