"""`nbops export`: the pipeline as another engine's pipeline (Kubeflow Pipelines, Airflow, ...)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from nbops.cli.app import NOTEBOOK, cli


@cli.command()
@click.argument("target", metavar="NOTEBOOK_OR_BUILD", type=NOTEBOOK, required=False)
@click.option("--to", "engine", metavar="NAME", help="The exporter: kfp, airflow, ... (--list).")
@click.option(
    "-o", "--output", "out", metavar="PATH", help="The file (kfp) or folder (airflow) to write."
)
@click.option(
    "--image",
    metavar="IMAGE",
    help="Where the build's image is pushed (kfp, airflow --kubernetes).  "
    "[default: a <registry>/<name>:<build_id> placeholder]",
)
@click.option(
    "--store",
    metavar="URL",
    help="The artifact store every task reads and writes, e.g. s3://bucket/prefix.",
)
@click.option("--kubernetes", is_flag=True, help="Airflow: KubernetesPodOperator tasks.")
@click.option(
    "--option",
    "extra",
    multiple=True,
    metavar="KEY=VALUE",
    help="An exporter's own setting, e.g. airflow python=/opt/venv/bin/python (the Python "
    "that runs the tasks) or secret=aws-keys (pods' env from that Kubernetes Secret).",
)
@click.option("--no-run", is_flag=True, help="Build from the latest run of the notebook.")
@click.option("--list", "show_list", is_flag=True, help="List the installed exporters and exit.")
def export(
    target: str | None,
    engine: str | None,
    out: str | None,
    image: str | None,
    store: str | None,
    kubernetes: bool,
    extra: tuple[str, ...],
    no_run: bool,
    show_list: bool,
) -> None:
    """Export a notebook (built first, into build/<name>) or a build folder to another engine:
    every task runs the generated package's step entry point (`python -m pipeline step NAME`),
    with the dependencies, parameters and metrics of the notebook's pipeline."""
    from nbops.build import exporters
    from nbops.build.exporters.exporting import check_before_build

    if show_list:
        _print_list(exporters.installed())
        return
    if target is None or engine is None or out is None:
        raise click.UsageError("give NOTEBOOK_OR_BUILD, --to NAME and -o PATH (or --list).")
    chosen = exporters.exporter(engine)
    options = _options(extra) | ({"kubernetes": "true"} if kubernetes else {})
    check_before_build(chosen, store=store)
    pipeline, folder = _pipeline_and_build(target, no_run)
    request = exporters.ExportRequest(
        pipeline, folder, Path(out), image=image, store=store, options=options
    )
    written = chosen.export(request)
    from nbops.cli.terminal import console

    say = console()
    for path in written:
        say.print(f"wrote {path} ({chosen.name}, from {folder}/)", highlight=False)
    if image is None and (chosen.name == "kfp" or kubernetes):
        say.print(
            f"[yellow]note:[/] no --image: the tasks run {exporters.placeholder_image(folder)}. "
            f"Build the image from {folder}/Dockerfile, push it, and export again with --image.",
            highlight=False,
        )


def _options(pairs: tuple[str, ...]) -> dict[str, str]:
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE.", param_hint="--option")
        options[key.strip()] = value
    return options


def _print_list(found: dict[str, Any]) -> None:
    from nbops.build.exporters.exporting import unavailable_reason

    for name, exporter in found.items():
        click.echo(f"{name}\t{exporter.description}\t{unavailable_reason(exporter) or 'available'}")


def _pipeline_and_build(target: str, no_run: bool) -> tuple[Any, Path]:
    """The analysed pipeline (refused with its first error) and its build folder: the folder
    as given, or the notebook built into build/<name> first, as `nbops build` does."""
    from nbops.build import builder as building
    from nbops.model.notebook import load_notebook
    from nbops.run.home import analyse_with_runs

    folder = Path(target)
    if folder.is_dir():
        from nbops.build.exporters.exporting import pipeline_of_build

        return pipeline_of_build(folder), folder
    pipeline = analyse_with_runs(load_notebook(target))
    pipeline.raise_for_errors()
    out = building.default_build_dir(pipeline)
    from nbops.cli.terminal import StepProgress, console

    with StepProgress([s.name for s in pipeline.steps], console(stderr=True)) as progress:
        building.build(pipeline, out=out, run=not no_run, listener=progress)
    return pipeline, out
