"""CI workflows for a repository's notebooks (`nbops ci init`): settings in, YAML text out.

Pure: `Workflow` holds what was found in the repository (by `nbops.ci.repository`), and
`render_workflow` renders it through templates/ci/ (GitHub Actions or GitLab CI). The same
macros write each command for both, so the two run the same nbops commands.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from nbops.ci.gate_config import DeclaredGates
from nbops.ci.gates import measured_text
from nbops.errors import CiConfigError

# Where each flavour's workflow lives, from the repository's root.
FLAVOURS: dict[str, str] = {"github": ".github/workflows/nbops.yml", "gitlab": ".gitlab-ci.yml"}
# The step (GitHub) that installs from the network; tests that run the workflow skip it by name.
INSTALL_STEP = "Install nbops and the notebooks' requirements"
DEFAULT_SCHEDULE = "0 6 * * 1"  # Mondays 06:00 UTC
DEFAULT_PYTHON = "3.11"
DEPLOY_TARGETS = ("local", "docker", "k8s")
CRON_FIELD = re.compile(r"^[0-9A-Za-z*/,\-]+$")
# A command YAML reads back as the same text without quotes; anything else is double-quoted.
PLAIN = re.compile(r"^[\w./-][\w ./'=<>,+@%*-]*$")
NOT_TEXT = re.compile(r"^([-+.\d]+|true|false|yes|no|on|off|null|~)$", re.IGNORECASE)


@dataclass(frozen=True)
class NotebookJob:
    """One notebook the workflow tests: its path from the root (with `/`), its gates, and its
    committed build folder when there is one (checked with `nbops build --check`)."""

    path: str
    gates: DeclaredGates = field(default_factory=DeclaredGates)
    build: str | None = None

    @property
    def name(self) -> str:
        """The notebook's stem: it names build/<name>/ and reports/<name>.xml."""
        return PurePosixPath(self.path).stem


@dataclass(frozen=True)
class Install:
    """What the workflow installs: nbops (`requirement`), the committed builds' locks, the
    repository's requirements files, and the repository itself when it is a package."""

    requirement: str
    locks: tuple[str, ...] = ()
    requirements: tuple[str, ...] = ()
    project: bool = False
    pyproject: bool = False  # pyproject.toml exists: pip's cache is keyed on it too


@dataclass(frozen=True)
class Workflow:
    """Everything a workflow is rendered from; checked where it is built."""

    notebooks: tuple[NotebookJob, ...]
    install: Install
    version: str
    python: str = DEFAULT_PYTHON
    schedule: str = DEFAULT_SCHEDULE
    deploy: str | None = None
    runner: str | None = None
    nbops_home: str | None = None

    def __post_init__(self) -> None:
        _check_notebooks(self.notebooks)
        check_cron(self.schedule)
        _check_deploy(self.deploy, self.notebooks)
        if self.deploy == "local" and not self.nbops_home:
            raise CiConfigError(
                'deploy = "local" needs nbops_home: the state db of the versions serving, and '
                "their folders, must outlive the job's checkout.",
                where="pyproject.toml [tool.nbops.ci]",
                fix='Add nbops_home = "/srv/nbops" (a folder on the serving machine).',
            )


def _check_notebooks(notebooks: tuple[NotebookJob, ...]) -> None:
    if not notebooks:
        raise CiConfigError(
            "there is no notebook to test: none found has steps or serve cells.",
            fix="Name the notebooks (nbops ci init NOTEBOOK ...), or tag cells step:<name>.",
        )
    seen: dict[str, str] = {}
    for job in notebooks:
        if job.name in seen:
            raise CiConfigError(
                f"{seen[job.name]} and {job.path} would both build into build/{job.name}/.",
                fix="Rename one of them, or give ci init one of them.",
            )
        seen[job.name] = job.path


def check_cron(schedule: str) -> None:
    """Five cron fields (minute hour day month weekday), or a CiConfigError."""
    fields = schedule.split()
    if len(fields) != 5 or not all(CRON_FIELD.match(part) for part in fields):
        raise CiConfigError(
            f"{schedule!r} is not a cron schedule of five fields.",
            where="--schedule",
            fix="Write minute hour day-of-month month day-of-week, e.g. '0 6 * * 1' (Mondays).",
        )


def _check_deploy(deploy: str | None, notebooks: tuple[NotebookJob, ...]) -> None:
    if deploy is None:
        return
    if deploy not in DEPLOY_TARGETS:
        raise CiConfigError(
            f"deploy = {deploy!r} is not a deploy target.",
            where="pyproject.toml [tool.nbops.ci]",
            fix=f"Use one of: {', '.join(DEPLOY_TARGETS)}.",
        )
    beaten = [job.path for job in notebooks if job.gates.must_beat]
    if deploy != "local" and beaten:
        raise CiConfigError(
            f"nbops deploy --target {deploy} does not judge must_beat ({', '.join(beaten)}): "
            "the version serving is known only to the local target's state db.",
            where="pyproject.toml [tool.nbops.ci]",
            fix='Deploy with deploy = "local" on the serving machine\'s runner, or drop must_beat.',
        )


def render_workflow(workflow: Workflow, flavour: str) -> str:
    """The workflow's YAML for `flavour` (a key of FLAVOURS), comments included."""
    from nbops.templating import new_environment

    environment = new_environment(
        filters={"sh": shlex.quote, "yaml": yaml_scalar, "quoted": json.dumps}
    )
    template = environment.get_template(f"ci/{flavour}.yml.j2")
    return str(template.render(workflow_context(workflow, flavour)))


def workflow_context(workflow: Workflow, flavour: str) -> dict[str, Any]:
    """The plain context the templates render."""
    install = workflow.install
    cached = [*install.locks, *install.requirements]
    if install.pyproject:
        cached.append("pyproject.toml")
    return {
        "version": workflow.version,
        "path": FLAVOURS[flavour],
        "python": workflow.python,
        "schedule": workflow.schedule,
        "deploy": workflow.deploy,
        "runner": workflow.runner,
        "nbops_home": workflow.nbops_home,
        "install_step": INSTALL_STEP,
        "install": install,
        "cached": [*cached, FLAVOURS[flavour]],  # the workflow itself: never an empty list
        "notebooks": [_notebook_context(job) for job in workflow.notebooks],
        "builds": [job.build for job in workflow.notebooks if job.build],
    }


def _notebook_context(job: NotebookJob) -> dict[str, Any]:
    gates = job.gates
    return {
        "path": job.path,
        "name": job.name,
        "build": job.build,
        "require": [str(gate) for gate in gates.require],
        "must_beat": ",".join(str(rival) for rival in gates.must_beat),
        "tolerance": measured_text(gates.tolerance) if gates.tolerance else None,
        "params_file": gates.params_file,
    }


def yaml_scalar(text: str) -> str:
    """`text` as a YAML scalar: plain where YAML reads it back unchanged, else double-quoted
    (JSON's string syntax is YAML's too)."""
    plain = PLAIN.match(text) and not NOT_TEXT.match(text) and ": " not in text and " #" not in text
    return text if plain else json.dumps(text)
