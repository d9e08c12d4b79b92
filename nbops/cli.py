"""The `nbops` command line: parses arguments, calls the core, prints; heavy imports stay lazy."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
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


PARAM = click.option(
    "-p",
    "--param",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="Set a parameter (repeatable); values are Python literals, else text.",
)


def _format_option(*choices: str) -> Callable[[F], F]:
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


@cli.command()
@click.argument("notebook", type=NOTEBOOK)
@PARAM
@REQUIRE
@click.option("--force", is_flag=True, help="Re-run every step, cached or not.")
@click.option("--from", "from_step", metavar="STEP", help="Re-run STEP and every step after it.")
@_format_option("text", "json")
def run(
    notebook: str,
    params: tuple[str, ...],
    gates: tuple[str, ...],
    force: bool,
    from_step: str | None,
    fmt: str,
) -> None:
    """Run NOTEBOOK's pipeline locally; steps whose code, parameters and inputs did not change
    are taken from the cache. Records the run in .nbops/ (see `nbops runs`). Exit 1 if a step
    fails or a --require gate does not hold."""
    import json

    from nbops.analysis import analyse
    from nbops.errors import StepFailed
    from nbops.notebook import load_notebook
    from nbops.parameters import parse_overrides
    from nbops.runner import Home, run_pipeline

    pipeline = analyse(load_notebook(notebook))
    overrides = parse_overrides(params, pipeline.parameters)
    required = _parse_gates(pipeline, gates)
    home = Home.default()
    if fmt == "json":
        try:
            record = run_pipeline(
                pipeline, parameters=overrides, force=force, from_step=from_step, home=home
            )
        except StepFailed:
            failed = home.db().runs(str(Path(notebook).resolve()), limit=1)[0]
            click.echo(json.dumps(failed.as_dict(), indent=2))
            sys.exit(1)
        results = _evaluate(required, record.metrics)
        click.echo(
            json.dumps({**record.as_dict(), "gates": [r.as_dict() for r in results]}, indent=2)
        )
        sys.exit(1 if any(r.failed for r in results) else 0)
    from nbops.terminal import StepProgress, console, run_summary

    out = console()
    try:
        with StepProgress([s.name for s in pipeline.steps], out) as progress:
            record = run_pipeline(
                pipeline,
                parameters=overrides,
                force=force,
                from_step=from_step,
                home=home,
                listener=progress,
            )
    except StepFailed as failure:
        _print_failure(failure, notebook)
        sys.exit(failure.exit_code)
    out.print(run_summary(record), highlight=False)
    results = _evaluate(required, record.metrics)
    for result in results:
        mark = "[green]passed[/]" if not result.failed else "[bold red]failed[/]"
        out.print(f"gate {result.gate} {mark}: {result.reason}", highlight=False)
    sys.exit(1 if any(r.failed for r in results) else 0)


def _parse_gates(pipeline: Any, texts: tuple[str, ...]) -> Any:
    from nbops.gates import check_gate_metrics, parse_gates

    required = parse_gates(texts)
    check_gate_metrics(required, pipeline.metrics.names, pipeline.notebook.display_name)
    return required


def _evaluate(required: Any, metrics: dict[str, float]) -> Any:
    from nbops.gates import evaluate_gates

    return evaluate_gates(required, metrics, {})


def _print_failure(failure: Any, notebook: str) -> None:
    from rich.markup import escape

    from nbops.errors import StepFailed
    from nbops.terminal import console

    err = console(stderr=True)
    err.print(f"[bold red]error:[/] {escape(failure.where)}: {escape(failure.message)}")
    if failure.details:
        err.print(escape(failure.details.rstrip()), style="dim")
    err.print(f"  [dim]fix:[/] {escape(failure.fix)}")
    if isinstance(failure, StepFailed):
        err.print(f"  [dim]resume:[/] nbops run {escape(notebook)}")


@cli.command()
@click.argument("notebook", type=NOTEBOOK)
@click.option(
    "-o",
    "--output",
    "out",
    metavar="DIR",
    help="Where to write the build.  [default: build/<name>]",
)
@PARAM
@click.option("--no-run", is_flag=True, help="Use the latest run of this notebook; run nothing.")
@click.option(
    "--check", is_flag=True, help="Exit 1 if the build in DIR is out of date with the notebook."
)
@_format_option("text", "json")
def build(
    notebook: str, out: str | None, params: tuple[str, ...], no_run: bool, check: bool, fmt: str
) -> None:
    """Build NOTEBOOK: generated pipeline package and tests, the run's artifacts with their
    hashes, an HTML report and the nbops.json manifest, written whole into build/<name>/."""
    import json

    from nbops import build as building
    from nbops.analysis import analyse
    from nbops.errors import StepFailed
    from nbops.notebook import load_notebook
    from nbops.parameters import parse_overrides
    from nbops.runner import Home, _refuse_errors

    pipeline = analyse(load_notebook(notebook))
    target = Path(out) if out else building.default_build_dir(pipeline)
    if check:
        _refuse_errors(pipeline)
        stale = building.check_build(pipeline, target)
        if fmt == "json":
            click.echo(json.dumps({"build": str(target), "up_to_date": not stale, "stale": stale}))
        else:
            for path in stale:
                click.echo(f"out of date: {path}")
            click.echo(f"{target}: " + ("out of date" if stale else "up to date"))
        sys.exit(1 if stale else 0)
    overrides = parse_overrides(params, pipeline.parameters)
    from nbops.terminal import StepProgress, console

    out_console = console(stderr=fmt == "json")
    try:
        with StepProgress([s.name for s in pipeline.steps], out_console) as progress:
            result = building.build(
                pipeline,
                out=target,
                parameters=overrides,
                run=not no_run,
                home=Home.default(),
                listener=progress,
            )
    except (StepFailed, building.BuildFailed) as failure:
        _print_failure(failure, notebook)
        sys.exit(failure.exit_code)
    if fmt == "json":
        click.echo(json.dumps(result.manifest, indent=2))
        return
    artifacts = len(result.manifest["artifacts"])
    tests = result.tests_output.splitlines()[-1] if result.tests_output else "no test cells"
    out_console.print(
        f"build {result.manifest['build_id']} written to {target}/ "
        f"({artifacts} artifacts; tests: {tests}); report: {target}/report.html",
        highlight=False,
    )


@cli.group(invoke_without_command=True)
@click.argument("notebook", required=False, type=NOTEBOOK)
@click.option("--limit", default=20, show_default=True, help="How many runs to list.")
@_format_option("text", "json")
@click.pass_context
def runs(ctx: click.Context, notebook: str | None, limit: int, fmt: str) -> None:
    """List recorded runs, newest first (of NOTEBOOK only, if given)."""
    if ctx.invoked_subcommand is not None:
        return
    import json

    from nbops.runner import Home

    key = str(Path(notebook).resolve()) if notebook else None
    records = Home.default().db().runs(key, limit=limit)
    if fmt == "json":
        click.echo(json.dumps([r.as_dict() for r in records], indent=2))
        return
    from nbops.terminal import console, runs_table

    console().print(runs_table(records))


@runs.command("show")
@click.argument("run_id")
@_format_option("text", "json")
def runs_show(run_id: str, fmt: str) -> None:
    """Show one run: its steps, durations, cache hits, parameters, artifacts and metrics."""
    import json

    from nbops.errors import NbopsError
    from nbops.runner import Home

    record = Home.default().db().run(run_id)
    if record is None:
        raise NbopsError(f"no run {run_id!r} is recorded.", fix="`nbops runs` lists them.")
    if fmt == "json":
        click.echo(json.dumps(record.as_dict(), indent=2))
        return
    from nbops.terminal import console, run_details

    console().print(run_details(record))


@cli.command("test")
@click.argument("notebook", type=NOTEBOOK)
@PARAM
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
@_format_option("text", "json")
def test_notebook(
    notebook: str,
    params: tuple[str, ...],
    gates: tuple[str, ...],
    junit: str | None,
    report: str | None,
    output: str | None,
    timeout: int,
    kernel: str | None,
    fmt: str,
) -> None:
    """Execute NOTEBOOK headlessly with papermill, as CI does, and check its test cells and
    metric gates. Skip cells are left out, -p values are injected after the parameters cell,
    and the notebook file itself is never written. Exit 1 if a cell fails or a gate does not
    hold, 2 on a usage error."""
    import json

    from nbops.gates import evaluate_gates
    from nbops.headless import RunOptions, execute_headless, run_status

    pipeline, overrides, required = _test_plan(notebook, params, gates, [output, junit, report])
    _warn_analysis_errors(pipeline)
    options = RunOptions(overrides, timeout, kernel, Path(output) if output else None)
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
    from nbops.analysis import analyse
    from nbops.gates import check_gate_metrics, parse_gates
    from nbops.headless import check_output_paths
    from nbops.notebook import load_notebook
    from nbops.parameters import parse_overrides

    required = parse_gates(gates)
    pipeline = analyse(load_notebook(notebook))
    overrides = parse_overrides(params, pipeline.parameters)
    check_gate_metrics(required, pipeline.metrics.names, pipeline.notebook.display_name)
    check_output_paths(pipeline.notebook, outputs)
    return pipeline, overrides, required


def _warn_analysis_errors(pipeline: Any, shown: int = 5) -> None:
    """`nbops test` runs the notebook as it is; analysis errors are worth a look, not a stop."""
    from rich.markup import escape

    from nbops.terminal import console

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

    from nbops.terminal import console

    values = ", ".join(f"{key}={value!r}" for key, value in overrides.items())
    with_values = f" with {escape(values)}" if values else ""
    console(stderr=True).print(f"Running {escape(name)}{with_values} headlessly with papermill")


def _cell_status() -> tuple[Any, Callable[[Any], None] | None]:
    """A one-line `cell 7 [step:train] (3 of 12)` status in a terminal; nothing in CI logs.

    Returns the context to run in and the per-cell callback (None when there is no terminal).
    """
    import contextlib

    from rich.markup import escape

    from nbops.terminal import console

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
            from nbops.junit import write_junit

            written.append(("JUnit XML", str(write_junit(junit, run, results))))
        if report:
            from nbops.report import report_of, write_report

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

    from nbops.gates import measured_text
    from nbops.terminal import console

    out = console()
    failure = run.failure
    if failure is not None and all(t.cell.id != failure.cell.id for t in run.tests):
        _print_cell_failure(out, failure)  # not a test cell: a step, setup, ... raised
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
    out.print(_test_summary(run, results), highlight=False)
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

    from nbops.headless import run_status

    status = run_status(run, results)
    parts: list[str] = []
    if run.failure is not None and all(t.cell.id != run.failure.cell.id for t in run.tests):
        parts.append(f"{run.failure.cell} raised")
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


@cli.command()
@click.argument("target", metavar="NOTEBOOK_OR_BUILD", type=NOTEBOOK)
@click.option("--name", help="Deployment name.  [default: the notebook's name]")
@click.option("--port", type=int, help="Stable port of the service.  [default: as before, or 8000]")
@PARAM
@click.option(
    "--target",
    "where",
    type=click.Choice(["local", "docker", "k8s"]),
    default="local",
    show_default=True,
    help="local runs it here; docker and k8s use the build's Dockerfile and k8s/ manifests.",
)
@_format_option("text", "json")
def deploy(
    target: str,
    name: str | None,
    port: int | None,
    params: tuple[str, ...],
    where: str,
    fmt: str,
) -> None:
    """Deploy a notebook (built first, cached) or a build folder. The new version is started
    beside the one serving, and promoted to the stable URL only once /readyz answers and a smoke
    request (the notebook's own example call) succeeds; otherwise it is stopped and the old one
    keeps serving. Exit 1 if the new version failed."""
    import json

    from nbops import deploy as deploying
    from nbops.terminal import console

    out = console(stderr=fmt == "json")

    def stage(step: str, message: str) -> None:
        out.print(f"[dim]{step}:[/] {message}", highlight=False)

    if where != "local":
        from nbops.remote import remote_deploy

        sys.exit(remote_deploy(where, _build_folder(target, params), name=name, port=port))
    if Path(target).is_dir():
        deployment = deploying.deploy(Path(target), name=name, port=port, on_stage=stage)
    else:
        deployment = _deploy_notebook(target, params, name, port, stage, out)
    if fmt == "json":
        click.echo(json.dumps(deployment.as_dict(), indent=2))
    elif deployment.status == "healthy":
        out.print(f"[green]healthy[/] {deployment.name} v{deployment.version}: {deployment.url}")
        out.print(f"  docs: {deployment.url}/docs   status: nbops status {deployment.name}")
        out.print(f"  stop: nbops stop {deployment.name}")
    else:
        out.print(
            f"[bold red]failed[/] {deployment.name} v{deployment.version}: {deployment.reason}"
        )
        if deployment.log_tail:
            out.print(deployment.log_tail, style="dim", markup=False)
        out.print("the version that was serving (if any) still serves.")
    sys.exit(0 if deployment.status == "healthy" else 1)


def _deploy_notebook(
    notebook: str,
    params: tuple[str, ...],
    name: str | None,
    port: int | None,
    stage: Any,
    out: Any,
) -> Any:
    from nbops import deploy as deploying
    from nbops.analysis import analyse
    from nbops.notebook import load_notebook
    from nbops.parameters import parse_overrides
    from nbops.runner import _refuse_errors
    from nbops.terminal import StepProgress

    pipeline = analyse(load_notebook(notebook))
    _refuse_errors(pipeline)
    overrides = parse_overrides(params, pipeline.parameters)
    with StepProgress([s.name for s in pipeline.steps], out) as progress:
        return deploying.deploy_notebook(
            pipeline,
            parameters=overrides,
            name=name,
            port=port,
            on_stage=stage,
            listener=progress,
        )


def _build_folder(target: str, params: tuple[str, ...]) -> Path:
    """A build folder as given, or the notebook built into build/<name> first."""
    path = Path(target)
    if path.is_dir():
        return path
    from nbops import build as building
    from nbops.analysis import analyse
    from nbops.notebook import load_notebook
    from nbops.parameters import parse_overrides

    pipeline = analyse(load_notebook(target))
    out = building.default_build_dir(pipeline)
    building.build(pipeline, out=out, parameters=parse_overrides(params, pipeline.parameters))
    return out


@cli.command()
@click.argument("name", required=False)
@_format_option("text", "json")
def status(name: str | None, fmt: str) -> None:
    """Deployments, checked now: status, version, URL, uptime, health, requests served."""
    import json

    from nbops import deploy as deploying

    rows = deploying.status(name=name)
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    from nbops.terminal import console, deployments_table

    console().print(deployments_table(rows))


@cli.command()
@click.argument("name")
@_format_option("text", "json")
def history(name: str, fmt: str) -> None:
    """Every version of deployment NAME, with its status, build and who started it."""
    import json

    from nbops import deployments as records
    from nbops.runner import Home

    rows = [d.as_dict() for d in records.history(Home.default().db(), name)]
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    from nbops.terminal import console, history_table

    console().print(history_table(name, rows))


@cli.command()
@click.argument("name")
@click.option("--to", "version", type=int, help="The version to serve.  [default: the one before]")
@_format_option("text", "json")
def rollback(name: str, version: int | None, fmt: str) -> None:
    """Serve an earlier version of NAME again, health-gated like a deploy. Exit 1 if it fails."""
    import json

    from nbops import deploy as deploying
    from nbops.terminal import console

    out = console(stderr=fmt == "json")
    deployment = deploying.rollback(
        name, to=version, on_stage=lambda s, m: out.print(f"[dim]{s}:[/] {m}", highlight=False)
    )
    if fmt == "json":
        click.echo(json.dumps(deployment.as_dict(), indent=2))
    else:
        out.print(f"{deployment.name} v{deployment.version}: {deployment.status}", highlight=False)
    sys.exit(0 if deployment.status == "healthy" else 1)


@cli.command()
@click.argument("name")
@_format_option("text", "json")
def stop(name: str, fmt: str) -> None:
    """Stop deployment NAME: its serving version and its stable port."""
    import json

    from nbops import deploy as deploying

    deployment = deploying.stop(name)
    data = deployment.as_dict() if deployment else {"name": name, "status": "stopped"}
    if fmt == "json":
        click.echo(json.dumps(data, indent=2))
    else:
        click.echo(f"{name}: stopped")


@cli.command()
@click.argument("name")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines until Ctrl-C.")
@click.option("-n", "--lines", default=50, show_default=True, help="How many lines to show.")
@_format_option("text", "json")
def logs(name: str, follow: bool, lines: int, fmt: str) -> None:
    """The log of the version serving NAME (else its newest): JSON lines the service writes."""
    import json

    from nbops import deployments as records
    from nbops.errors import NbopsError
    from nbops.runner import Home
    from nbops.service_process import log_tail

    db = Home.default().db()
    versions = records.history(db, name)
    row = records.current(db, name) or (versions[-1] if versions else None)
    if row is None:
        raise NbopsError(f"nothing named {name!r} was ever deployed.", fix="`nbops status`.")
    path = Path(row.build_dir) / "service.log"
    if fmt == "json":
        text = log_tail(path, lines)
        click.echo(
            json.dumps(
                {"name": name, "version": row.version, "log": str(path), "lines": text.splitlines()}
            )
        )
        return
    click.echo(log_tail(path, lines))
    if follow:
        _follow(path)


def _follow(path: Path) -> None:
    import time

    with open(path, errors="replace") as handle:
        handle.seek(0, 2)
        try:
            while True:
                line = handle.readline()
                if line:
                    click.echo(line, nl=False)
                else:
                    time.sleep(0.2)
        except KeyboardInterrupt:
            return


@cli.command()
@click.argument("build_dir", metavar="BUILD_DIR", type=click.STRING)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="Port."
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Worker processes; each loads the artifacts once.",
)
def serve(build_dir: str, host: str, port: int, workers: int) -> None:
    """Serve BUILD_DIR's generated FastAPI service with uvicorn, in the foreground: a POST route
    per serve function (and its /batch form), /docs, /healthz, /readyz, /metrics, /version.
    Set NBOPS_API_KEY to require an X-API-Key header. Ctrl-C stops it."""
    from nbops.serve import serve as run_service

    run_service(Path(build_dir), host=host, port=port, workers=workers, announce=click.echo)


def main() -> None:
    cli()
