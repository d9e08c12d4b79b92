"""The `nbops` command group and the options its commands share; user mistakes become one line."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from nbops import __version__
from nbops.errors import NbopsError

# Plain strings: nbops itself explains a missing file or a folder (exit 2, one line).
NOTEBOOK = click.STRING
F = TypeVar("F", bound=Callable[..., Any])


class _Group(click.Group):
    """Turns a user mistake (an NbopsError) into one line on stderr and exit code 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except NbopsError as error:
            from rich.markup import escape

            from nbops.cli.terminal import console

            console(stderr=True).print(f"[bold red]error:[/] {escape(error.render())}")
            sys.exit(error.exit_code)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="nbops")
def cli() -> None:
    """Take a tagged Jupyter notebook to production without a rewrite.

    Tag cells (parameters, setup, step:<name>, test, metrics, serve, example, skip); nbops
    reads the tags and the code to find the pipeline's steps and what flows between them.
    """


PARAM = click.option(
    "-p",
    "--param",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="Set a parameter (repeatable); values are Python literals, else text.",
)


def format_option(*choices: str) -> Callable[[F], F]:
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(list(choices)),
        default=choices[0],
        show_default=True,
        help="text for people, json for scripts.",
    )


REQUIRE = click.option(
    "--require",
    "gates",
    multiple=True,
    metavar="GATE",
    help='A metric gate such as "accuracy>=0.9" (>=, <=, >, <, ==, !=); repeatable.',
)
