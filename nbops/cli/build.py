"""`nbops build` and `nbops serve`: the generated package and service, and running it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from nbops.cli.app import NOTEBOOK, cli, format_option, params_options
from nbops.cli.executing import execution_options, executor_from


@cli.command()
@click.argument("notebook", type=NOTEBOOK)
@click.option(
    "-o",
    "--output",
    "out",
    metavar="DIR",
    help="Where to write the build.  [default: build/<name>]",
)
@params_options
@click.option("--no-run", is_flag=True, help="Use the latest run of this notebook; run nothing.")
@click.option(
    "--check", is_flag=True, help="Exit 1 if the build in DIR is out of date with the notebook."
)
@execution_options
@format_option("text", "json")
def build(
    notebook: str,
    out: str | None,
    params: tuple[str, ...],
    no_run: bool,
    check: bool,
    fmt: str,
    step_timeout: float | None,
    **execution: Any,
) -> None:
    """Build NOTEBOOK: generated pipeline package and tests, the run's artifacts with their
    hashes, an HTML report and the nbops.json manifest, written whole into build/<name>/.
    Exit 1, the previous build kept, when a generated test fails (the message names the test
    or serve cells to fix)."""
    import json

    from nbops.build import builder as building
    from nbops.errors import StepFailed
    from nbops.model.notebook import load_notebook
    from nbops.model.parameters import parse_overrides
    from nbops.run.home import Home, analyse_with_runs

    pipeline = analyse_with_runs(load_notebook(notebook))
    target = Path(out) if out else building.default_build_dir(pipeline)
    if check:
        pipeline.raise_for_errors()
        stale = building.check_build(pipeline, target)
        if fmt == "json":
            click.echo(json.dumps({"build": str(target), "up_to_date": not stale, "stale": stale}))
        else:
            for path in stale:
                click.echo(f"out of date: {path}")
            click.echo(f"{target}: " + ("out of date" if stale else "up to date"))
        sys.exit(1 if stale else 0)
    overrides = parse_overrides(params, pipeline.parameters)
    from nbops.cli.terminal import StepProgress, console, print_failure

    out_console = console(stderr=fmt == "json")
    try:
        with (
            executor_from(**execution) as executor,
            StepProgress([s.name for s in pipeline.steps], out_console) as progress,
        ):
            result = building.build(
                pipeline,
                out=target,
                parameters=overrides,
                run=not no_run,
                home=Home.default(),
                listener=progress,
                executor=executor,
                step_timeout=step_timeout,
            )
    except (StepFailed, building.BuildFailed) as failure:
        print_failure(failure, notebook)
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
    Set NBOPS_API_KEY to require an X-API-Key header. Ctrl-C stops it. A port another program
    listens on is refused at once (exit 2)."""
    from nbops.deploy.serve import serve as run_service

    run_service(Path(build_dir), host=host, port=port, workers=workers, announce=click.echo)
