"""`nbops deploy`, `status`, `history`, `rollback`, `stop`, `logs`: deployments and their life."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from nbops.cli.app import NOTEBOOK, cli, format_option, params_options
from nbops.cli.executing import execution_options, executor_from


@cli.command()
@click.argument("target", metavar="NOTEBOOK_OR_BUILD", type=NOTEBOOK)
@click.option("--name", help="Deployment name.  [default: the notebook's name]")
@click.option("--port", type=int, help="Stable port of the service.  [default: as before, or 8000]")
@params_options
@click.option(
    "--target",
    "where",
    type=click.Choice(["local", "docker", "k8s"]),
    default="local",
    show_default=True,
    help="local runs it here; docker and k8s use the build's Dockerfile and k8s/ manifests.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="uvicorn worker processes serving the version on its port, each with the artifacts "
    "loaded; it is promoted only once all of them are ready. --target docker runs that many in "
    "the container; with k8s the pods scale instead (k8s/hpa.yaml).",
)
@click.option(
    "--watch",
    "watch",
    metavar="DURATION",
    help="Bake period after promotion (5m, 90s; 0 turns the watch off): the version serving "
    "before stays up, and a breach of the thresholds below switches back to it by itself.  "
    "[default: 3m, or NBOPS_WATCH]",
)
@click.option(
    "--max-error-rate",
    metavar="SHARE",
    default="2%",
    show_default=True,
    help="Roll back when more of the new version's requests than this answer 5xx.",
)
@click.option(
    "--max-p99-ratio",
    type=click.FloatRange(min=1.0),
    default=2.0,
    show_default=True,
    help="Roll back when its p99 latency is more than this times the previous version's.",
)
@click.option(
    "--max-drift",
    type=click.FloatRange(min=0.0),
    default=0.25,
    show_default=True,
    help="Roll back when an input or output drifts more than this (PSI against the build's "
    "reference profile; needs a serve cell with reference=).",
)
@click.option(
    "--canary",
    metavar="PERCENT",
    help="During the watch, send only this share of requests (10%) to the new version and the "
    "rest to the previous one; then all, or none if it breaches.",
)
@click.option(
    "--require",
    "gates",
    multiple=True,
    metavar="GATE",
    help="A metric gate the new version's run must pass, like 'test_accuracy>=0.8'; "
    "else it is not started (repeat for more).",
)
@click.option(
    "--must-beat",
    "rivals",
    multiple=True,
    metavar="METRICS",
    help="Metrics (comma-separated) the new version must not be worse at than the version "
    "serving, higher is better; '-rmse' where lower is better.",
)
@click.option(
    "--tolerance",
    type=click.FloatRange(min=0.0),
    default=0.0,
    show_default=True,
    help="How much worse than the version serving a --must-beat metric may be.",
)
@click.option(
    "--gates/--no-gates",
    "declared",
    default=True,
    show_default=True,
    help="Without --require or --must-beat, apply the gates the notebook declares (its "
    "[tool.nbops.notebooks] entry in pyproject.toml, or its metadata.nbops), as the sidebar "
    "and CI do.",
)
@execution_options
@format_option("text", "json")
def deploy(
    target: str,
    name: str | None,
    port: int | None,
    params: tuple[str, ...],
    where: str,
    fmt: str,
    step_timeout: float | None,
    watch: str | None,
    max_error_rate: str,
    max_p99_ratio: float,
    max_drift: float,
    canary: str | None,
    gates: tuple[str, ...],
    rivals: tuple[str, ...],
    tolerance: float,
    declared: bool,
    workers: int,
    **execution: Any,
) -> None:
    """Deploy a notebook (built first, cached) or a build folder. The new version is started
    beside the one serving, and promoted to the stable URL only once /readyz answers and its
    smoke requests pass: each route's example request (a cell tagged `example`, else the
    notebook's own literal call), as the build's smoke tests sent it; a route without one is
    checked through its schema only. Otherwise it is stopped and the old one keeps serving.
    With --require or --must-beat (else the gates the notebook declares, unless --no-gates), a
    version whose run's metrics fail them is `refused` and never started. Once promoted, it is
    watched for the bake period (see --watch); the watch goes on when this command has ended.
    With --workers N, the version runs N worker processes on its port and is promoted only when
    all N have loaded their artifacts. Exit 1 if the new version failed or was refused."""
    import json

    from nbops.cli.terminal import console
    from nbops.deploy import local as deploying

    out = console(stderr=fmt == "json")
    policy = _policy(watch, max_error_rate, max_p99_ratio, max_drift, canary)
    analysed = _analysis(target)
    keeper = _gatekeeper(target, gates, rivals, tolerance, analysed)
    if not keeper and declared and not Path(target).is_dir():
        keeper = _declared_gatekeeper(Path(target), where, out, analysed())

    def stage(step: str, message: str) -> None:
        out.print(f"[dim]{step}:[/] {message}", highlight=False)

    if where != "local":
        from nbops.deploy.remote import remote_deploy

        err = console(stderr=True)
        say = functools.partial(err.print, highlight=False, markup=False)
        if keeper.must_beat:
            raise click.BadParameter(
                f"--must-beat needs the version serving, which only the local target knows; "
                f"with --target {where}, gate the run with --require instead"
            )
        if where == "k8s" and workers > 1:
            raise click.BadParameter(
                "with --target k8s the HorizontalPodAutoscaler in k8s/hpa.yaml scales the pods "
                "(2 to 10, by CPU); give --workers to the local or docker target",
                param_hint="--workers",
            )
        folder = _build_folder(target, analysed, params, execution, step_timeout)
        if keeper.require:
            _gate_remote(folder, keeper, say)
        sys.exit(remote_deploy(where, folder, name=name, port=port, say=say, workers=workers))
    if Path(target).is_dir():
        deployment = deploying.deploy(
            Path(target),
            name=name,
            port=port,
            on_stage=stage,
            policy=policy,
            gatekeeper=keeper,
            workers=workers,
        )
    else:
        with executor_from(**execution) as executor:
            deployment = _deploy_notebook(
                analysed(),
                params,
                name,
                port,
                stage,
                out,
                executor,
                step_timeout,
                (policy, keeper, workers),
            )
    if fmt == "json":
        click.echo(json.dumps(deployment.as_dict(), indent=2))
    elif deployment.status == "healthy":
        many = f" ({deployment.workers} workers)" if deployment.workers > 1 else ""
        out.print(
            f"[green]healthy[/] {deployment.name} v{deployment.version}{many}: {deployment.url}"
        )
        out.print(f"  docs: {deployment.url}/docs   status: nbops status {deployment.name}")
        out.print(f"  stop: nbops stop {deployment.name}")
    else:
        reason = (deployment.reason or "").removeprefix(f"{deployment.status}: ")
        out.print(
            f"[bold red]{deployment.status}[/] {deployment.name} v{deployment.version}: {reason}"
        )
        if deployment.log_tail:
            out.print(deployment.log_tail, style="dim", markup=False)
        out.print("the version that was serving (if any) still serves.")
    sys.exit(0 if deployment.status == "healthy" else 1)


def _analysis(target: str) -> Callable[[], Any]:
    """The notebook's analysis, made once however many parts of the deploy need it (the
    gates' metric names, the build, the deploy)."""

    @functools.cache
    def analysed() -> Any:
        from nbops.model.notebook import load_notebook
        from nbops.run.home import analyse_with_runs

        return analyse_with_runs(load_notebook(target))

    return analysed


def _deploy_notebook(
    pipeline: Any,
    params: tuple[str, ...],
    name: str | None,
    port: int | None,
    stage: Any,
    out: Any,
    executor: Any,
    step_timeout: float | None,
    how: tuple[Any, Any, int],
) -> Any:
    """`how`: the watch policy, the gatekeeper and the number of workers."""
    from nbops.cli.terminal import StepProgress
    from nbops.deploy import local as deploying
    from nbops.model.parameters import parse_overrides

    pipeline.raise_for_errors()
    overrides = parse_overrides(params, pipeline.parameters)
    policy, keeper, workers = how
    with StepProgress([s.name for s in pipeline.steps], out) as progress:
        return deploying.deploy_notebook(
            pipeline,
            parameters=overrides,
            name=name,
            port=port,
            on_stage=stage,
            listener=progress,
            executor=executor,
            step_timeout=step_timeout,
            policy=policy,
            gatekeeper=keeper,
            workers=workers,
        )


def _gate_remote(folder: Path, keeper: Any, say: Any) -> None:
    """--require for a Docker or Kubernetes deploy: the build's recorded metrics must pass the
    gates before anything is built or applied; exit 1 otherwise."""
    from nbops.deploy import promotion
    from nbops.deploy.local import read_manifest

    verdict = promotion.judge(keeper, read_manifest(folder), None)
    say(f"metrics: {verdict.reason()}")
    if verdict.refused:
        sys.exit(1)


def _gatekeeper(
    target: str,
    gates: tuple[str, ...],
    rivals: tuple[str, ...],
    tolerance: float,
    analysed: Callable[[], Any],
) -> Any:
    """The gates and rivals, their metric names checked against the notebook's metrics cells
    when a notebook is deployed (a build's names are checked against what it recorded)."""
    from nbops.ci.gates import (
        check_gate_metrics,
        check_metric_names,
        parse_gates,
        parse_must_beat,
    )
    from nbops.deploy.promotion import Gatekeeper

    keeper = Gatekeeper(parse_gates(gates), parse_must_beat(rivals), tolerance)
    if not keeper:
        return keeper
    if Path(target).is_dir():
        from nbops.deploy.local import read_manifest

        names = list(read_manifest(Path(target)).get("metrics") or {})
        notebook = target
    else:
        pipeline = analysed()
        names, notebook = list(pipeline.metrics.names), pipeline.notebook.display_name
    check_gate_metrics(keeper.require, names, notebook)
    wanted = [(r.metric, f"--must-beat {str(r)!r}") for r in keeper.must_beat]
    check_metric_names(wanted, names, notebook)
    return keeper


def _declared_gatekeeper(notebook: Path, where: str, out: Any, pipeline: Any) -> Any:
    """The gates the notebook declares (keyed from the folder this runs in, as the sidebar's
    from the one Jupyter serves), as a sidebar deploy applies them; said aloud, with where each
    came from. Away from the local target there is no version serving to beat, so only the
    required gates apply there."""
    from nbops.ci.repository import notebook_gates
    from nbops.deploy.promotion import Gatekeeper

    names, label = pipeline.metrics.names, pipeline.notebook.display_name
    gates = notebook_gates(notebook, Path.cwd(), names, label)
    keeper = Gatekeeper.declared(gates)
    if where != "local" and keeper.must_beat:
        keeper = Gatekeeper(keeper.require, (), keeper.tolerance)
        out.print(f"[dim]gates:[/] must_beat applies to local deploys only (--target {where})")
    listed = ", ".join([*map(str, keeper.require), *(f"must beat {r}" for r in keeper.must_beat)])
    if listed:
        from rich.markup import escape

        sources = "; ".join(gates.sources)
        told = escape(f"{listed}, declared in {sources} (--no-gates: none)")
        out.print(f"[dim]gates:[/] {told}", highlight=False)
    return keeper


def _policy(
    watch: str | None,
    max_error_rate: str,
    max_p99_ratio: float,
    max_drift: float,
    canary: str | None,
) -> Any:
    """The watch policy the options describe; a value that does not parse is a usage error."""
    from nbops.deploy.watch import Policy, parse_canary, parse_share, parse_watch

    try:
        default = Policy.default()
        watch_s = parse_watch(watch) if watch is not None else default.watch_s
        percent = parse_canary(canary) if canary is not None else None
        share = parse_share(max_error_rate)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None
    if percent is not None and not watch_s:
        raise click.BadParameter("a canary needs a watch: give --watch a duration, not 0")
    return Policy(
        watch_s=watch_s,
        max_error_rate=share,
        max_p99_ratio=max_p99_ratio,
        max_drift=max_drift,
        canary=percent,
    )


def _build_folder(
    target: str,
    analysed: Callable[[], Any],
    params: tuple[str, ...],
    execution: dict[str, Any],
    step_timeout: float | None,
) -> Path:
    """A build folder as given, or the notebook built into build/<name> first."""
    path = Path(target)
    if path.is_dir():
        return path
    from nbops.build import builder as building
    from nbops.model.parameters import parse_overrides

    pipeline = analysed()
    out = building.default_build_dir(pipeline)
    with executor_from(**execution) as executor:
        building.build(
            pipeline,
            out=out,
            parameters=parse_overrides(params, pipeline.parameters),
            executor=executor,
            step_timeout=step_timeout,
        )
    return out


@cli.command()
@click.argument("name", required=False)
@format_option("text", "json")
def status(name: str | None, fmt: str) -> None:
    """Deployments, checked now: status, version, URL, uptime, health (the version's process
    and /healthz; the proxy on the stable port when it does not answer), requests served."""
    import json

    from nbops.deploy import local as deploying

    rows = deploying.status(name=name)
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    from nbops.cli.terminal import console, deployments_table, show

    for row in rows:
        if row["proxy"] not in ("up", "-"):  # the stable URL does not answer, whatever the version
            row["health"] = f"{row['health']}; proxy {row['proxy']}"
        if row["supervisor"] == "down":
            row["health"] = f"{row['health']}; unsupervised"
    show(console(), deployments_table(rows))


@cli.command()
@click.argument("name")
@click.option(
    "--every",
    default=2.0,
    show_default=True,
    type=click.FloatRange(min=0.2),
    help="Seconds between refreshes of the live view.",
)
@click.option("--once", is_flag=True, help="Print the view once and exit, rather than live.")
@format_option("text", "json")
def monitor(name: str, every: float, once: bool, fmt: str) -> None:
    """Watch deployment NAME live: drift of each input field and output against the build's
    reference (PSI, as bars), error rate, latency, the window's size, the watch and the
    proxy's split, refreshed until Ctrl-C. `--format json` prints one snapshot for scripts."""
    import json
    import time

    from nbops.cli.terminal import console, monitor_view
    from nbops.deploy.health import monitoring

    if fmt == "json":
        click.echo(json.dumps(monitoring(name), indent=2))
        return
    out = console()
    if once:
        out.print(monitor_view(monitoring(name)))
        return
    from rich.live import Live

    with Live(monitor_view(monitoring(name)), console=out, auto_refresh=False) as live:
        try:
            while True:
                time.sleep(every)
                live.update(monitor_view(monitoring(name)), refresh=True)
        except KeyboardInterrupt:
            pass


@cli.command()
@click.argument("name")
@format_option("text", "json")
def history(name: str, fmt: str) -> None:
    """Every version of deployment NAME: its status (and why), the metrics its run recorded,
    its build and who started it."""
    import json

    from nbops.deploy import records
    from nbops.deploy.promotion import recorded_metrics
    from nbops.run.home import Home

    rows = [
        {**d.as_dict(), "metrics": recorded_metrics(d)}
        for d in records.history(Home.default().db(), name)
    ]
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    from nbops.cli.terminal import console, history_table, show

    show(console(), history_table(name, rows))


@cli.command()
@click.argument("name")
@click.option("--to", "version", type=int, help="The version to serve.  [default: the one before]")
@format_option("text", "json")
def rollback(name: str, version: int | None, fmt: str) -> None:
    """Serve an earlier version of NAME again, health-gated like a deploy. Exit 1 if it fails."""
    import json

    from nbops.cli.terminal import console
    from nbops.deploy import local as deploying

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
@format_option("text", "json")
def stop(name: str, fmt: str) -> None:
    """Stop deployment NAME: its serving version and its stable port."""
    import json

    from nbops.deploy import local as deploying

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
@format_option("text", "json")
def logs(name: str, follow: bool, lines: int, fmt: str) -> None:
    """The log of the version serving NAME (else its newest): JSON lines the service writes."""
    import json

    from nbops.deploy import records
    from nbops.deploy.processes import log_tail
    from nbops.errors import NbopsError
    from nbops.run.home import Home

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
