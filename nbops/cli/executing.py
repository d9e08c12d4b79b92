"""The options every command that runs a notebook takes (--executor, --jobs, --step-timeout,
--store, --scheduler, --retries), and the executor they make."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import click

from nbops.run.executors import EXECUTORS, Executor

F = TypeVar("F", bound=Callable[..., Any])


def _duration(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    if value is None:
        return None
    from nbops.model.durations import parse_duration

    try:
        return parse_duration(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


OPTIONS = (
    click.option(
        "--executor",
        type=click.Choice(EXECUTORS),
        default="process",
        show_default=True,
        help="Where steps run: inline (this process), process (worker processes; a crashing "
        "step fails alone), dask (a Dask cluster).",
    ),
    click.option(
        "--jobs",
        "-j",
        type=click.IntRange(min=1),
        help="Steps at once [default: the cores for process, the cluster's workers for dask].",
    ),
    click.option(
        "--step-timeout",
        callback=_duration,
        metavar="DURATION",
        help="Kill a step that runs longer (30s, 10m, 1h); a step's own timeout= tag wins.",
    ),
    click.option(
        "--store",
        metavar="URL",
        envvar="NBOPS_STORE",
        help="The artifact store: a folder or an fsspec URL such as s3://bucket/prefix "
        "[default: .nbops/artifacts; env NBOPS_STORE].",
    ),
    click.option(
        "--scheduler",
        metavar="ADDRESS",
        help="With --executor dask: a running scheduler (tcp://HOST:8786); without it a "
        "LocalCluster of worker processes is started.",
    ),
    click.option(
        "--retries",
        type=click.IntRange(min=0),
        default=0,
        show_default=True,
        help="With --executor dask: run a step that raised again, up to this many times.",
    ),
)


def execution_options(command: F) -> F:
    for option in reversed(OPTIONS):
        command = option(command)
    return command


@contextlib.contextmanager
def executor_from(
    executor: str,
    jobs: int | None,
    store: str | None,
    scheduler: str | None,
    retries: int,
    **_: Any,
) -> Iterator[Executor]:
    """The executor the options ask for, closed (its processes stopped) on the way out."""
    from nbops.run.executors import make_executor

    if store:  # every Home this process (and the workers it starts) opens uses it
        os.environ["NBOPS_STORE"] = store
    options: dict[str, Any] = {}
    if executor == "dask":
        from nbops.cli.terminal import console

        out = console(stderr=True)
        options = {
            "scheduler": scheduler,
            "retries": retries,
            "dashboard": lambda link: out.print(f"Dask dashboard: {link}", highlight=False),
        }
    elif scheduler:
        raise click.UsageError("--scheduler goes with --executor dask.")
    made = make_executor(executor, jobs=jobs, **options)
    try:
        yield made
    finally:
        made.close()
