"""`nbops ci init`: a CI workflow for the repository's notebooks (GitHub Actions or GitLab CI)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from nbops.cli.app import NOTEBOOK, cli

if TYPE_CHECKING:
    from nbops.ci.workflows import NotebookJob, Workflow


@cli.group("ci")
def ci_group() -> None:
    """CI for the repository's notebooks: `nbops ci init` writes the workflow."""


@ci_group.command("init")
@click.argument("notebooks", nargs=-1, type=NOTEBOOK, metavar="[NOTEBOOK]...")
@click.option(
    "--github",
    "flavour",
    flag_value="github",
    default=True,
    help="Write .github/workflows/nbops.yml (GitHub Actions).  [default]",
)
@click.option("--gitlab", "flavour", flag_value="gitlab", help="Write .gitlab-ci.yml (GitLab CI).")
@click.option("--force", is_flag=True, help="Replace a workflow that differs from this one.")
@click.option(
    "--schedule",
    metavar="CRON",
    default="0 6 * * 1",
    show_default=True,
    help="When the retrain job runs (minute hour day month weekday, UTC).",
)
def init(notebooks: tuple[str, ...], flavour: str, force: bool, schedule: str) -> None:
    """Write a CI workflow that tests NOTEBOOKs (default: every notebook under the repository
    with steps or serve cells): install nbops and the requirements (a committed build's
    requirements.lock first), nbops check, nbops build --check for each committed build, and
    nbops test with the notebook's gates, uploading the JUnit and HTML reports. A scheduled job
    retrains each notebook with its gates and uploads its build, or deploys it gated by
    --must-beat when [tool.nbops.ci] deploy is set.

    Gates come from pyproject.toml, [tool.nbops.notebooks."PATH"] require = [...] (also
    must_beat, tolerance, params_file), else from the notebook's metadata.nbops. Running it
    again changes nothing unless they changed; a workflow that differs is replaced only with
    --force (else exit 1)."""
    from nbops.ci.repository import plan_workflow, repository_root, write_workflow
    from nbops.ci.workflows import FLAVOURS, render_workflow

    root = repository_root(Path.cwd())
    workflow = plan_workflow(root, [Path(n) for n in notebooks], schedule=schedule)
    shown = FLAVOURS[flavour]
    outcome = write_workflow(root, shown, render_workflow(workflow, flavour), force=force)
    if outcome == "unchanged":
        click.echo(f"{shown} unchanged")
        return
    click.echo(f"{outcome} {shown}")
    for job in workflow.notebooks:
        click.echo(f"  {job.path}: {job_summary(job, deploy=workflow.deploy)}")
    if not installs_requirements(workflow):
        click.echo(
            "note: no requirements.txt, committed build/<name>/requirements.lock or [project] in "
            "pyproject.toml, so CI installs nbops alone: list what the notebooks import in one."
        )


def installs_requirements(workflow: Workflow) -> bool:
    install = workflow.install
    return bool(install.locks or install.requirements or install.project)


def job_summary(job: NotebookJob, *, deploy: str | None) -> str:
    """What the workflow does with one notebook, in a few words."""
    gates = ", ".join(str(gate) for gate in job.gates.require) or "no gates"
    build = f", {job.build} checked" if job.build else ""
    if deploy is None:
        return f"check, test ({gates}){build}; scheduled: retrain, build"
    beat = ",".join(map(str, job.gates.must_beat))
    gated = f" gated by --must-beat {beat}" if beat else ""
    return f"check, test ({gates}){build}; scheduled: retrain, deploy --target {deploy}{gated}"
