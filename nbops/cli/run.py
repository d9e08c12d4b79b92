"""`nbops run` and `nbops runs`: the pipeline run locally with its cache, and the runs recorded."""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any

import click

from nbops.cli.app import NOTEBOOK, PARAM, REQUIRE, cli, format_option


@cli.command()
@click.argument("notebook", type=NOTEBOOK)
@PARAM
@REQUIRE
@click.option("--force", is_flag=True, help="Re-run every step, cached or not.")
@click.option("--from", "from_step", metavar="STEP", help="Re-run STEP and every step after it.")
@click.option("--no-tests", is_flag=True, help="Do not run the test cells after their steps.")
@format_option("text", "json")
def run(
    notebook: str,
    params: tuple[str, ...],
    gates: tuple[str, ...],
    force: bool,
    from_step: str | None,
    no_tests: bool,
    fmt: str,
) -> None:
    """Run NOTEBOOK's pipeline locally; steps whose code, parameters and inputs did not change
    are taken from the cache. Each step's test cells run after it. Records the run in .nbops/
    (see `nbops runs`). Exit 1 if a step or a test cell fails or a --require gate does not
    hold."""
    import json

    from nbops.errors import StepFailed
    from nbops.model.notebook import load_notebook
    from nbops.model.parameters import parse_overrides
    from nbops.run.home import Home, analyse_with_runs
    from nbops.run.runner import run_pipeline

    pipeline = analyse_with_runs(load_notebook(notebook))
    overrides = parse_overrides(params, pipeline.parameters)
    required = _parse_gates(pipeline, gates)
    home = Home.default()
    # The same run either way; only where progress goes differs.
    start = functools.partial(
        run_pipeline,
        pipeline,
        parameters=overrides,
        force=force,
        from_step=from_step,
        home=home,
        tests=not no_tests,
    )
    if fmt == "json":
        try:
            record = start()
        except StepFailed:
            failed = home.db().runs(str(Path(notebook).resolve()), limit=1)[0]
            click.echo(json.dumps(failed.as_dict(), indent=2))
            sys.exit(1)
        results = _evaluate(required, record.metrics, record.metric_problems)
        click.echo(
            json.dumps({**record.as_dict(), "gates": [r.as_dict() for r in results]}, indent=2)
        )
        sys.exit(1 if any(r.failed for r in results) else 0)
    from nbops.cli.terminal import StepProgress, console, print_failure, run_summary

    out = console()
    try:
        with StepProgress([s.name for s in pipeline.steps], out) as progress:
            record = start(listener=progress)
    except StepFailed as failure:
        print_failure(failure, notebook)
        sys.exit(failure.exit_code)
    out.print(run_summary(record), highlight=False)
    from nbops.run.metric_values import metric_warning

    for name, problem in record.metric_problems.items():
        out.print(f"[yellow]warning:[/] {metric_warning(name, problem)}", highlight=False)
    results = _evaluate(required, record.metrics, record.metric_problems)
    for result in results:
        mark = "[green]passed[/]" if not result.failed else "[bold red]failed[/]"
        out.print(f"gate {result.gate} {mark}: {result.reason}", highlight=False)
    sys.exit(1 if any(r.failed for r in results) else 0)


def _parse_gates(pipeline: Any, texts: tuple[str, ...]) -> Any:
    from nbops.ci.gates import check_gate_metrics, parse_gates

    required = parse_gates(texts)
    check_gate_metrics(required, pipeline.metrics.names, pipeline.notebook.display_name)
    return required


def _evaluate(required: Any, metrics: dict[str, float], problems: dict[str, str]) -> Any:
    from nbops.ci.gates import evaluate_gates

    return evaluate_gates(required, metrics, problems)


class _RunsGroup(click.Group):
    """`runs [NOTEBOOK] [OPTIONS]` lists runs and `runs show RUN_ID` shows one.

    Click reads the first word as the optional NOTEBOOK; when that word names a subcommand, it
    was the subcommand. Otherwise nothing follows but options, wherever they stand.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.allow_interspersed_args = not (args and args[0] in self.commands)
        return super().parse_args(ctx, args)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = ctx.params.get("notebook")
        if isinstance(name, str) and name in self.commands:
            ctx.params["notebook"] = None
            return name, self.commands[name], args
        return super().resolve_command(ctx, args)


class _ListArgument(click.Argument):
    """NOTEBOOK only lists; `nbops runs show --help` should not show it in its usage."""

    def get_usage_pieces(self, ctx: click.Context) -> list[str]:
        return super().get_usage_pieces(ctx) if isinstance(ctx.command, _RunsGroup) else []


@cli.group(cls=_RunsGroup, invoke_without_command=True)
@click.argument("notebook", cls=_ListArgument, required=False, type=NOTEBOOK)
@click.option("--limit", default=20, show_default=True, help="How many runs to list.")
@format_option("text", "json")
@click.pass_context
def runs(ctx: click.Context, notebook: str | None, limit: int, fmt: str) -> None:
    """List recorded runs, newest first (of NOTEBOOK only, if given).
    `nbops runs show RUN_ID` shows one run."""
    if ctx.invoked_subcommand is not None:
        return
    if notebook is not None and notebook in runs.commands:  # `runs show` without its RUN_ID
        runs.commands[notebook].make_context(notebook, [], parent=ctx)
    import json

    from nbops.run.home import Home

    key = str(Path(notebook).resolve()) if notebook else None
    records = Home.default().db().runs(key, limit=limit)
    if fmt == "json":
        click.echo(json.dumps([r.as_dict() for r in records], indent=2))
        return
    from nbops.cli.terminal import console, runs_table, show

    show(console(), runs_table(records))


@runs.command("show")
@click.argument("run_id")
@format_option("text", "json")
def runs_show(run_id: str, fmt: str) -> None:
    """Show one run: its steps, durations, cache hits, parameters, artifacts and metrics."""
    import json

    from nbops.errors import NbopsError
    from nbops.run.home import Home

    record = Home.default().db().run(run_id)
    if record is None:
        raise NbopsError(f"no run {run_id!r} is recorded.", fix="`nbops runs` lists them.")
    if fmt == "json":
        click.echo(json.dumps(record.as_dict(), indent=2))
        return
    from nbops.cli.terminal import console, run_details, show

    show(console(), run_details(record))
