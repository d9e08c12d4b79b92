"""The `nbops` command line: parses arguments, calls the core, prints; heavy imports stay lazy."""

from __future__ import annotations

import sys
from typing import Any

import click

from nbops import __version__
from nbops.errors import NbopsError

# Plain strings: nbops itself explains a missing file or a folder (exit 2, one line).
NOTEBOOK = click.STRING


class _Group(click.Group):
    """Turns a user mistake (an NbopsError) into one line on stderr and exit code 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except NbopsError as error:
            from rich.markup import escape

            from nbops.terminal import console

            console(stderr=True).print(f"[bold red]error:[/] {escape(error.render())}")
            sys.exit(error.exit_code)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="nbops")
def cli() -> None:
    """Take a tagged Jupyter notebook to production without a rewrite.

    Tag cells (parameters, setup, step:<name>, test, metrics, serve, skip); nbops reads the
    tags and the code to find the pipeline's steps and what flows between them.
    """


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
    from nbops.analysis import analyse
    from nbops.notebook import load_notebook

    pipeline = analyse(load_notebook(notebook))
    if fmt == "json":
        import json

        click.echo(json.dumps([d.as_dict() for d in pipeline.diagnostics], indent=2))
    else:
        from nbops.terminal import console, print_diagnostics, summary_line

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
    from nbops.analysis import analyse
    from nbops.notebook import load_notebook

    pipeline = analyse(load_notebook(notebook))
    if fmt == "json":
        from nbops.lineage import to_json

        click.echo(to_json(pipeline))
    elif fmt == "mermaid":
        from nbops.lineage import to_mermaid

        click.echo(to_mermaid(pipeline), nl=False)
    elif fmt == "dot":
        from nbops.lineage import to_dot

        click.echo(to_dot(pipeline), nl=False)
    else:
        from nbops.terminal import console, lineage_tree, summary_line

        out = console()
        out.print(lineage_tree(pipeline))
        out.print(summary_line(pipeline) + " (details: nbops check)", highlight=False)


def main() -> None:
    cli()
