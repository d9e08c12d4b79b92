"""`nbops run` and `nbops runs`: the pipeline run locally with its cache, and the runs recorded."""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any

import click

from nbops.cli.app import NOTEBOOK, PARAM, REQUIRE, cli, format_option
from nbops.cli.executing import execution_options, executor_from


@cli.command()
@click.argument("notebook", type=NOTEBOOK)
@PARAM
@click.option(
    "--params-file",
    type=click.Path(dir_okay=False),
    help="Parameters from a YAML file (NAME: VALUE); a list of values sweeps that parameter.",
)
@REQUIRE
@click.option("--force", is_flag=True, help="Re-run every step, cached or not.")
@click.option("--from", "from_step", metavar="STEP", help="Re-run STEP and every step after it.")
@click.option("--no-tests", is_flag=True, help="Do not run the test cells after their steps.")
@click.option(
    "--sort",
    metavar="METRIC",
    help="A sweep's table, best first by METRIC (highest first; -METRIC for lowest first).",
)
@execution_options
@format_option("text", "json")
def run(
    notebook: str,
    params: tuple[str, ...],
    params_file: str | None,
    gates: tuple[str, ...],
    force: bool,
    from_step: str | None,
    no_tests: bool,
    sort: str | None,
    fmt: str,
    step_timeout: float | None,
    **execution: Any,
) -> None:
    """Run NOTEBOOK's pipeline; steps whose code, parameters and inputs did not change are
    taken from the cache, independent steps run side by side. Each step's test cells run after
    it. Records the run in .nbops/ (see `nbops runs`). Exit 1 if a step or a test cell fails or
    a --require gate does not hold.

    A parameter given several values (-p n_estimators=10,50,100 -p max_depth=4,8, or lists in
    --params-file) runs the grid, one run per combination, sharing every cached step, and
    prints a table of the runs."""
    from nbops.model.notebook import load_notebook
    from nbops.model.parameters import parse_sweep
    from nbops.run.home import Home, analyse_with_runs

    pipeline = analyse_with_runs(load_notebook(notebook))
    grid = parse_sweep(params, pipeline.parameters, _params_file(params_file))
    required = _parse_gates(pipeline, gates)
    with executor_from(**execution) as executor:
        home = Home.default()
        # The same run either way; only where progress goes differs.
        start = functools.partial(
            _run_one,
            pipeline,
            force=force,
            from_step=from_step,
            home=home,
            tests=not no_tests,
            executor=executor,
            step_timeout=step_timeout,
        )
        if len(grid) > 1:
            _sweep(start, grid, required, sort, fmt, notebook)
        else:
            _single(start, grid[0], required, fmt, notebook, pipeline)


def _run_one(pipeline: Any, parameters: dict[str, Any], **options: Any) -> Any:
    from nbops.run.runner import run_pipeline

    return run_pipeline(pipeline, parameters=parameters, **options)


def _params_file(path: str | None) -> dict[str, Any] | None:
    from nbops.cli.app import read_params_file

    return read_params_file(path)


def _single(
    start: Any, parameters: dict[str, Any], required: Any, fmt: str, notebook: str, pipeline: Any
) -> None:
    import json

    from nbops.errors import StepFailed

    home = start.keywords["home"]
    if fmt == "json":
        try:
            record = start(parameters)
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
            record = start(parameters, listener=progress)
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


def _sweep(
    start: Any,
    grid: list[dict[str, Any]],
    required: Any,
    sort: str | None,
    fmt: str,
    notebook: str,
) -> None:
    """One run per combination, one after the other (each with its steps side by side); a
    failing run is reported in the table and the sweep goes on."""
    import json

    from nbops.errors import StepFailed

    home = start.keywords["home"]
    out = None
    if fmt == "text":
        from nbops.cli.terminal import console

        out = console()
    records = []
    for number, parameters in enumerate(grid, start=1):
        shown = ", ".join(f"{k}={v!r}" for k, v in parameters.items())
        if out is not None:
            out.print(f"run {number} of {len(grid)}: {shown}", highlight=False)
        try:
            records.append(start(parameters))
        except StepFailed as failure:
            records.append(home.db().runs(str(Path(notebook).resolve()), limit=1)[0])
            if out is not None:
                out.print(f"  [bold red]failed[/]: {failure.render()}", highlight=False)
    records = _sorted_runs(records, sort)
    gates = [_evaluate(required, r.metrics, r.metric_problems) for r in records]
    failed = any(r.status != "succeeded" for r in records) or any(
        g.failed for found in gates for g in found
    )
    if fmt == "json":
        click.echo(json.dumps([r.as_dict() for r in records], indent=2))
    else:
        from nbops.cli.terminal import show, sweep_table

        assert out is not None
        show(out, sweep_table(records, list(grid[0]), sort))
    sys.exit(1 if failed else 0)


def _sorted_runs(records: list[Any], sort: str | None) -> list[Any]:
    """Best first by the metric (highest, or lowest for -METRIC); runs without it last."""
    if not sort:
        return records
    lowest = sort.startswith("-")
    metric = sort.lstrip("-+")
    if not any(metric in r.metrics for r in records):
        from nbops.errors import NbopsError

        known = sorted({m for r in records for m in r.metrics}) or ["none"]
        raise NbopsError(
            f"--sort {sort!r}: no run recorded a metric {metric!r}.",
            fix=f"Metrics are: {', '.join(known)}.",
        )

    def key(record: Any) -> tuple[bool, float]:
        value = record.metrics.get(metric)
        if value is None:
            return (True, 0.0)
        return (False, value if lowest else -value)

    return sorted(records, key=key)


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


@runs.command("diff")
@click.argument("run_a")
@click.argument("run_b")
@format_option("text", "json")
def runs_diff(run_a: str, run_b: str, fmt: str) -> None:
    """Compare two runs (ids or their prefixes): parameters, metrics with their deltas, which
    steps ran and which were cached, cache keys and output hashes, and the code cells that
    changed between them."""
    import json

    from nbops.errors import NbopsError
    from nbops.run.comparison import diff_runs
    from nbops.run.home import Home

    db = Home.default().db()
    records = []
    for run_id in (run_a, run_b):
        record = db.run(run_id)
        if record is None:
            raise NbopsError(f"no run {run_id!r} is recorded.", fix="`nbops runs` lists them.")
        records.append(record)
    diff = diff_runs(records[0], records[1])
    if fmt == "json":
        click.echo(json.dumps(diff.as_dict(), indent=2, default=repr))
        return
    from nbops.cli.terminal import console, run_diff_view, show

    show(console(), run_diff_view(diff))


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
