"""The `nbops` command group and the options its commands share; user mistakes become one line."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

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


def params_options(command: F) -> F:
    """`-p NAME=VALUE` and `--params-file FILE` for a command that makes one run: the file's
    values come first, so a `-p` of the same name wins."""

    @functools.wraps(command)
    def with_file(*args: Any, params_file: str | None = None, **kwargs: Any) -> Any:
        found = read_params_file(params_file) or {}
        pairs = tuple(f"{name}={value!r}" for name, value in found.items())
        kwargs["params"] = (*pairs, *kwargs.get("params", ()))
        return command(*args, **kwargs)

    option = click.option(
        "--params-file",
        type=click.Path(dir_okay=False),
        help="Parameters from a YAML file (NAME: VALUE lines); -p wins over it.",
    )
    return cast(F, PARAM(option(with_file)))


def read_params_file(path: str | None) -> dict[str, Any] | None:
    """A YAML file of NAME: VALUE lines, or None without one."""
    if path is None:
        return None
    import yaml

    from nbops.errors import ParameterError

    try:
        found = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ParameterError(
            f"--params-file {path}: {error}", fix="Give a YAML file of NAME: VALUE lines."
        ) from None
    if found is None:
        return {}
    if not isinstance(found, dict):
        raise ParameterError(
            f"--params-file {path} holds a {type(found).__name__}, not NAME: VALUE lines.",
            fix="Write one parameter per line, e.g. `n_estimators: [10, 50]`.",
        )
    return found


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
