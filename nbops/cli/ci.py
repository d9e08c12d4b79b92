"""`nbops test`: the notebook executed headlessly with papermill, as CI runs it."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from nbops.cli.app import NOTEBOOK, cli, format_option, params_options


@cli.command("test")
@click.argument("notebook", type=NOTEBOOK)
@params_options
@click.option(
    "--require",
    "gates",
    multiple=True,
    metavar="GATE",
    help='A metric gate such as "accuracy>=0.9" (>=, <=, >, <, ==, !=); repeatable.',
)
@click.option("--junit", metavar="FILE", help="Write JUnit XML: a testcase per test cell and gate.")
@click.option("--report", metavar="FILE", help="Write an HTML report of the executed notebook.")
@click.option(
    "-o",
    "--output",
    metavar="FILE",
    help="Keep the executed copy here, with papermill's error markers (default: deleted).",
)
@click.option(
    "--timeout",
    type=click.IntRange(min=0),
    metavar="SECONDS",
    default=600,
    show_default=True,
    help="Seconds a cell may run; 0 for no limit.",
)
@click.option("--kernel", metavar="NAME", help="Kernel to run on  [default: the notebook's]")
@click.option(
    "--keep-going/--stop-at-first",
    default=None,
    help="After a failing test cell, run the cells after it, so every failing test cell is "
    "reported (a step that fails still ends the run).  [default: --keep-going where the CI "
    "variable is set, as CI services set it; else --stop-at-first]",
)
@format_option("text", "json")
def test_notebook(
    notebook: str,
    params: tuple[str, ...],
    gates: tuple[str, ...],
    junit: str | None,
    report: str | None,
    output: str | None,
    timeout: int,
    kernel: str | None,
    keep_going: bool | None,
    fmt: str,
) -> None:
    """Execute NOTEBOOK headlessly with papermill, as CI does, and check its test cells and
    metric gates. Skip cells are left out, -p values are injected after the parameters cell,
    and the notebook file itself is never written. Exit 1 if a cell fails or a gate does not
    hold, 2 on a usage error."""
    import json

    from nbops.ci.gates import evaluate_gates
    from nbops.ci.headless import RunOptions, execute_headless, run_status

    pipeline, overrides, required = _test_plan(notebook, params, gates, [output, junit, report])
    _warn_analysis_errors(pipeline)
    if keep_going is None:
        keep_going = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
    options = RunOptions(
        overrides, timeout, kernel, Path(output) if output else None, keep_going=keep_going
    )
    if fmt == "text":
        _test_start(pipeline.notebook.display_name, overrides)
    status, on_cell = _cell_status()
    with status:
        run = execute_headless(pipeline, options, on_cell)
    results = evaluate_gates(required, run.metrics, run.metric_problems)
    written = _write_test_files(run, results, junit, report)
    if fmt == "json":
        click.echo(json.dumps(run.as_dict(results), indent=2))
    else:
        _print_test_run(run, results, written)
    sys.exit(0 if run_status(run, results) == "passed" else 1)


def _test_plan(
    notebook: str, params: tuple[str, ...], gates: tuple[str, ...], outputs: list[str | None]
) -> tuple[Any, dict[str, Any], Any]:
    """Everything checked before a kernel starts: gates, notebook, parameters, output paths."""
    from nbops.ci.gates import check_gate_metrics, parse_gates
    from nbops.ci.headless import check_output_paths
    from nbops.model.analysis import analyse
    from nbops.model.notebook import load_notebook
    from nbops.model.parameters import parse_overrides

    required = parse_gates(gates)
    pipeline = analyse(load_notebook(notebook))
    overrides = parse_overrides(params, pipeline.parameters)
    check_gate_metrics(required, pipeline.metrics.names, pipeline.notebook.display_name)
    check_output_paths(pipeline.notebook, outputs)
    return pipeline, overrides, required


def _warn_analysis_errors(pipeline: Any, shown: int = 5) -> None:
    """`nbops test` runs the notebook as it is; analysis errors are worth a look, not a stop."""
    from rich.markup import escape

    from nbops.cli.terminal import console

    errors = pipeline.errors
    if not errors:
        return
    err = console(stderr=True)
    name = pipeline.notebook.display_name
    for d in errors[:shown]:
        err.print(f"[yellow]warning[/] {escape(d.location(name))}: {escape(d.message)}")
    more = f" ({len(errors) - shown} more)" if len(errors) > shown else ""
    err.print(f"[yellow]warning[/] nbops check finds errors{more}; running the notebook as it is.")


def _test_start(name: str, overrides: dict[str, Any]) -> None:
    from rich.markup import escape

    from nbops.cli.terminal import console

    values = ", ".join(f"{key}={value!r}" for key, value in overrides.items())
    with_values = f" with {escape(values)}" if values else ""
    console(stderr=True).print(f"Running {escape(name)}{with_values} headlessly with papermill")


def _cell_status() -> tuple[Any, Callable[[Any], None] | None]:
    """A one-line `cell 7 [step:train] (3 of 12)` status in a terminal; nothing in CI logs.

    Returns the context to run in and the per-cell callback (None when there is no terminal).
    """
    import contextlib

    from rich.markup import escape

    from nbops.cli.terminal import console

    err = console(stderr=True)
    if not err.is_terminal:
        return contextlib.nullcontext(), None
    status = err.status("starting the kernel")

    def started(progress: Any) -> None:
        where = f"{progress.cell} ({progress.position} of {progress.total})"
        status.update(f"running {escape(where)}")

    return status, started


def _write_test_files(
    run: Any, results: Any, junit: str | None, report: str | None
) -> list[tuple[str, str]]:
    """The JUnit XML and the HTML report, written whether or not the run passed."""
    from nbops.errors import OutputPathError

    written: list[tuple[str, str]] = []
    try:
        if junit:
            from nbops.ci.junit import write_junit

            written.append(("JUnit XML", str(write_junit(junit, run, results))))
        if report:
            from nbops.ci.report import report_of, write_report

            summary = report_of(run, results)
            written.append(("report", str(write_report(report, run.executed, summary))))
    except OSError as error:
        raise OutputPathError(
            f"cannot be written ({error.strerror}).",
            where=str(error.filename or junit or report),
            fix="Choose a file in a folder you can write to.",
        ) from None
    if run.output is not None:
        written.append(("executed copy", str(run.output)))
    return written


def _print_test_run(run: Any, results: Any, written: list[tuple[str, str]]) -> None:
    from rich.markup import escape

    from nbops.ci.gates import measured_text
    from nbops.cli.terminal import console

    out = console()
    if run.stopped is not None:
        _print_cell_failure(out, run.stopped)  # not a test cell: a step, setup, ... raised
    for outcome in run.tests:
        if outcome.failure is not None:
            _print_cell_failure(out, outcome.failure)
        else:
            style = "green" if outcome.status.value == "passed" else "dim"
            out.print(f"[{style}]{outcome.status.value:<7}[/] {escape(str(outcome.cell))}")
    values = [f"{n} = {measured_text(v)}" for n, v in run.metrics.items()]
    values += [f"{n} {why}" for n, why in run.metric_problems.items()]
    if values:
        out.print(f"[bold]metrics[/] {escape(', '.join(values))}")
    labels = {True: "[green]passed [/]", False: "[bold red]FAILED [/]", None: "[dim]not run[/]"}
    for result in results:
        gate = f"gate {escape(str(result.gate))}: {escape(result.reason)}"
        out.print(f"{labels[result.passed]} {gate}")
    out.print(escape(_test_summary(run, results)), highlight=False)
    for what, path in written:
        out.print(f"{what}: {escape(path)}", highlight=False)


def _print_cell_failure(out: Any, failure: Any) -> None:
    from rich.markup import escape

    out.print(f"[bold red]FAILED [/] {escape(failure.where)}: {escape(failure.message)}")
    if failure.evalue and failure.source_line:
        out.print(f"        {escape(failure.source_line)}", highlight=False)
    if failure.ename not in ("AssertionError", "TimeoutError"):  # its traceback says where
        tail = failure.traceback.strip().splitlines()[-12:]
        out.print(escape("\n".join(f"    {line}" for line in tail)), style="dim")


def _test_summary(run: Any, results: Any) -> str:
    from collections import Counter

    from nbops.ci.headless import run_status

    status = run_status(run, results)
    parts: list[str] = []
    if run.stopped is not None:
        parts.append(f"{run.stopped.cell} raised")
    tests = Counter(t.status.value for t in run.tests)
    parts.append("test cells " + _counts(tests) if tests else "no test cells")
    checked = Counter({True: "passed", False: "failed", None: "not run"}[r.passed] for r in results)
    if checked:
        parts.append("gates " + _counts(checked))
    seconds = f"{run.duration:.1f} s on kernel {run.kernel}"
    return f"{run.notebook.display_name} {status.upper()}: {'; '.join(parts)} ({seconds})"


def _counts(counter: Any) -> str:
    order = ("failed", "not run", "passed")
    return ", ".join(f"{counter[key]} {key}" for key in order if counter[key])
