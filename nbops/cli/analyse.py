"""`nbops check` and `nbops lineage`: what nbops reads in a notebook, without running it."""

from __future__ import annotations

import sys

import click

from nbops.cli.app import NOTEBOOK, cli


@cli.command()
@click.argument("notebook", type=NOTEBOOK)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text for people, json for scripts.",
)
def check(notebook: str, fmt: str) -> None:
    """Report problems in NOTEBOOK's tags and dataflow; exit 1 if there are errors."""
    from nbops.model.notebook import load_notebook
    from nbops.run.home import analyse_with_runs

    pipeline = analyse_with_runs(load_notebook(notebook))
    if fmt == "json":
        import json

        click.echo(json.dumps([d.as_dict() for d in pipeline.diagnostics], indent=2))
    else:
        from nbops.cli.terminal import console, print_diagnostics, summary_line

        out = console()
        print_diagnostics(out, pipeline.notebook.display_name, pipeline.diagnostics)
        out.print(summary_line(pipeline), highlight=False)
    sys.exit(1 if pipeline.errors else 0)


@cli.command()
@click.argument("notebook", type=NOTEBOOK)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["tree", "json", "mermaid", "dot"]),
    default="tree",
    show_default=True,
    help="tree for people; json (the documented contract), mermaid or dot for tools.",
)
def lineage(notebook: str, fmt: str) -> None:
    """Show NOTEBOOK's lineage: parameters, steps, the values flowing between them, endpoints."""
    from nbops.model.notebook import load_notebook
    from nbops.run.home import analyse_with_runs

    pipeline = analyse_with_runs(load_notebook(notebook))
    if fmt == "json":
        from nbops.model.lineage import to_json

        click.echo(to_json(pipeline))
    elif fmt == "mermaid":
        from nbops.model.lineage import to_mermaid

        click.echo(to_mermaid(pipeline), nl=False)
    elif fmt == "dot":
        from nbops.model.lineage import to_dot

        click.echo(to_dot(pipeline), nl=False)
    else:
        from nbops.cli.terminal import console, lineage_tree, show, summary_line

        out = console()
        show(out, lineage_tree(pipeline))
        out.print(summary_line(pipeline) + " (details: nbops check)", highlight=False)
