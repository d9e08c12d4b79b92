"""What the REST API and the widgets do: the calls the CLI makes, with progress going to a Job.

Checks that can fail at once (analysis errors, unknown parameters, a bad name) run before a job
exists, so the caller gets the error in its answer rather than as a failed job a moment later.
A job's work (`deploy_work`, `run_work`, `rollback_work`) runs in a child process: it is a
module-level function given plain data, and analyses the notebook again there.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbops.deploy.promotion import Gatekeeper, Verdict
from nbops.errors import NbopsError, NotebookNotFound, ParameterError, StepFailed
from nbops.lab.server.jobs import JobRegistry
from nbops.lab.server.progress import Job, Outcome, Progress
from nbops.lab.server.reconcile import Footprint
from nbops.model.notebook import Notebook
from nbops.model.pipeline import Pipeline
from nbops.run.executors import Executor
from nbops.run.home import Home

# A deployment's name becomes a folder under .nbops/deployments/: no separators, no dot-dot.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class DeploymentNotFound(NbopsError):
    """No deployment of that name was ever recorded."""


class InvalidTarget(NbopsError):
    """A deployment name that cannot name a folder safely, or a port number that cannot be."""


def lineage_of_file(notebook: Path, label: str, home: Home | None = None) -> dict[str, Any]:
    """`nbops lineage --format json` of a file; `label` is the path the JSON names. With a
    `home`, in-place changes its runs saw are part of the lineage, as the CLI shows them."""
    from nbops.model.analysis import analyse
    from nbops.model.lineage import lineage_dict

    observed = home.observed_changes(notebook) if home is not None else ()
    return lineage_dict(analyse(_read(notebook, label), observed))


def lineage_of_content(
    content: dict[str, Any], label: str, on_disk: Path | None = None, home: Home | None = None
) -> dict[str, Any]:
    """The same JSON for a notebook's current content, unsaved edits included; `on_disk` is
    its file, whose runs in `home` may have seen in-place changes."""
    from nbops.model.analysis import analyse
    from nbops.model.lineage import lineage_dict
    from nbops.model.notebook import notebook_from_dict

    observed = home.observed_changes(on_disk) if home and on_disk else ()
    return lineage_dict(analyse(notebook_from_dict(content, label), observed))


@dataclass(frozen=True)
class DeploySpec:
    """A deploy job's request, plain data: its child process analyses the notebook again."""

    notebook: Path
    label: str
    home: Home
    via: str
    name: str | None
    port: int | None
    parameters: dict[str, Any]
    out: Path
    gatekeeper: Gatekeeper = dataclasses.field(default_factory=Gatekeeper)


@dataclass(frozen=True)
class RunSpec:
    notebook: Path
    label: str
    home: Home
    parameters: dict[str, Any]


@dataclass(frozen=True)
class RollbackSpec:
    name: str
    home: Home
    via: str
    to: int | None


def start_deploy(
    registry: JobRegistry,
    notebook: Path,
    label: str,
    *,
    home: Home,
    via: str,
    name: str | None = None,
    port: int | None = None,
    parameters: dict[str, Any] | None = None,
    root: Path | None = None,
    gated: bool = True,
) -> Job:
    """`nbops deploy NOTEBOOK` as a job; its result is the deployment, as `nbops status` shows,
    with the `verdict` of its metric gates. Unless `gated` is False, the gates are those the
    notebook declares (pyproject.toml under `root`, or its metadata), as CI deploys it."""
    from nbops.lab.server import challenger

    check_name(name)
    check_port(port)
    pipeline = runnable(notebook, label, home)
    overrides = parameter_values(parameters, pipeline)
    deployment = name or pipeline.notebook.name
    # Beside the state db, in the server's root, as the CLI run from there would.
    server_root = root or home.root.parent
    out = server_root / "build" / pipeline.notebook.name
    keeper = challenger.gatekeeper(notebook, server_root, pipeline) if gated else Gatekeeper()
    spec = DeploySpec(notebook, label, home, via, name, port, overrides, out, keeper)
    return registry.submit(
        "deploy",
        label,
        functools.partial(deploy_work, spec),
        steps=[s.name for s in pipeline.steps],
        keys=(notebook_key(pipeline), f"deployment:{deployment}"),
        footprint=Footprint(str(home.root), pipeline.notebook.path, (deployment,)),
    )


def deploy_work(spec: DeploySpec, job: Progress) -> Outcome:
    """A deploy job's work, in its child process."""
    from nbops.deploy import local as deploy

    pipeline = runnable(spec.notebook, spec.label, spec.home)
    verdicts: list[Verdict] = []
    with step_executor() as executor:
        deployment = deploy.deploy_notebook(
            pipeline,
            parameters=spec.parameters,
            name=spec.name,
            port=spec.port,
            home=spec.home,
            via=spec.via,
            on_stage=job.on_stage,
            listener=job.on_step,
            out=spec.out,
            executor=executor,
            gatekeeper=spec.gatekeeper,
            on_verdict=verdicts.append,
        )
    job.add_log(deployment.log_tail)
    healthy = deployment.status == "healthy"
    reason = None if healthy else deployment.reason or f"it ended {deployment.status}"
    result = with_metrics(deployment.as_dict(), spec.home)
    result["verdict"] = verdicts[-1].report() if verdicts else None
    return Outcome(healthy, result, reason)


def challenger(notebook: Path, label: str, name: str, *, home: Home, root: Path) -> dict[str, Any]:
    """GET deployments/<name>/challenger?notebook=P: what a deploy of the notebook as `name`
    would be judged on now (README, "JupyterLab")."""
    from nbops.lab.server import challenger as comparing
    from nbops.run.home import analyse_with_runs

    check_name(name)
    read = dataclasses.replace(_read(notebook, label), path=str(notebook.resolve()))
    pipeline = analyse_with_runs(read, home)
    gates = comparing.declared_gates(notebook, root, pipeline)
    return comparing.comparison(pipeline, label, name, gates, home)


def start_run(
    registry: JobRegistry,
    notebook: Path,
    label: str,
    *,
    home: Home,
    parameters: dict[str, Any] | None = None,
) -> Job:
    """`nbops run NOTEBOOK` as a job; its result is the run record, failed or not."""
    pipeline = runnable(notebook, label, home)
    spec = RunSpec(notebook, label, home, parameter_values(parameters, pipeline))
    return registry.submit(
        "run",
        label,
        functools.partial(run_work, spec),
        steps=[s.name for s in pipeline.steps],
        keys=(notebook_key(pipeline),),
        footprint=Footprint(str(home.root), pipeline.notebook.path),
    )


def run_work(spec: RunSpec, job: Progress) -> Outcome:
    """A run job's work, in its child process."""
    from nbops.run.runner import run_pipeline

    pipeline = runnable(spec.notebook, spec.label, spec.home)
    try:
        with step_executor() as executor:
            record = run_pipeline(
                pipeline,
                parameters=spec.parameters,
                home=spec.home,
                listener=job.on_step,
                executor=executor,
            )
    except StepFailed as failure:
        job.add_log(failure.details)
        failed = spec.home.db().runs(pipeline.notebook.path, limit=1)
        return Outcome(False, failed[0].as_dict() if failed else None, failure.render())
    return Outcome(True, record.as_dict())


@contextlib.contextmanager
def step_executor() -> Iterator[Executor]:
    """Steps of a job run in worker processes, always: a cell that ends its process, or the
    kernel's out-of-memory killer, fails that step, not the job's process."""
    from nbops.run.executors import make_executor

    executor = make_executor("process")
    try:
        yield executor
    finally:
        executor.close()


def start_rollback(
    registry: JobRegistry, name: str, *, home: Home, via: str, to: int | None = None
) -> Job:
    """`nbops rollback NAME [--to V]` as a job; its result is the deployment brought back."""
    _known(name, home)
    return registry.submit(
        "rollback",
        name,
        functools.partial(rollback_work, RollbackSpec(name, home, via, to)),
        keys=(f"deployment:{name}",),
        footprint=Footprint(str(home.root), None, (name,)),
    )


def rollback_work(spec: RollbackSpec, job: Progress) -> Outcome:
    """A rollback job's work, in its child process."""
    from nbops.deploy import local as deploy

    deployment = deploy.rollback(
        spec.name, to=spec.to, home=spec.home, via=spec.via, on_stage=job.on_stage
    )
    job.add_log(deployment.log_tail)
    healthy = deployment.status == "healthy"
    reason = None if healthy else deployment.reason or f"it ended {deployment.status}"
    return Outcome(healthy, with_metrics(deployment.as_dict(), spec.home), reason)


def cancel(registry: JobRegistry, job_id: str) -> dict[str, Any]:
    """Cancel a job (POST /nbops/api/jobs/<id>/cancel): the job as it is now; it ends
    `cancelled` once its process has gone."""
    return registry.cancel(job_id).snapshot()


def notebook_key(pipeline: Pipeline) -> str:
    """What jobs of one notebook share, so they run one after another."""
    return f"notebook:{pipeline.notebook.path}"


def stop(name: str, *, home: Home) -> dict[str, Any]:
    """`nbops stop NAME --format json`."""
    from nbops.deploy import local as deploy

    _known(name, home)
    deployment = deploy.stop(name, home=home)
    return deployment.as_dict() if deployment else {"name": name, "status": "stopped"}


def deployments(home: Home) -> list[dict[str, Any]]:
    """`nbops status --format json`, each with its run's metrics and its `nbops history`."""
    from nbops.deploy import local as deploy
    from nbops.deploy import records

    db = home.db()
    rows = []
    for row in deploy.status(home=home):
        versions = [with_metrics(d.as_dict(), home) for d in records.history(db, row["name"])]
        rows.append({**with_metrics(row, home), "history": versions})
    return rows


def monitoring(name: str, *, home: Home) -> dict[str, Any]:
    """A deployment's watch and drift (GET deployments/<name>/monitoring): its status row, its
    serving version's `/monitoring` (or null and `monitoring_error`) and its proxy's stats."""
    from nbops.deploy import health

    _known(name, home)
    return health.monitoring(name, home)


def with_metrics(deployment: dict[str, Any], home: Home) -> dict[str, Any]:
    """The deployment with the metrics of the run its build came from ({} if none is known)."""
    run_id = deployment.get("run_id")
    record = home.db().run(run_id) if run_id else None
    return {**deployment, "metrics": record.metrics if record else {}}


def parameter_values(values: Any, pipeline: Pipeline) -> dict[str, Any]:
    """JSON parameter values, checked as `-p NAME=VALUE` is: each JSON value is a literal."""
    from nbops.model.parameters import parse_overrides

    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ParameterError(
            "parameters must be a JSON object of name: value.", fix='Send {"n_estimators": 200}.'
        )
    return parse_overrides(tuple(f"{k}={v!r}" for k, v in values.items()), pipeline.parameters)


def check_name(name: str | None) -> None:
    if name is not None and not NAME.fullmatch(name):
        raise InvalidTarget(
            f"{name!r} cannot name a deployment.",
            fix="Use letters, digits, '_', '.' and '-' (64 at most), starting with a letter or "
            "digit.",
        )


def check_port(port: int | None) -> None:
    if port is not None and not 1 <= port <= 65535:
        raise InvalidTarget(f"{port} is not a port number.", fix="Use one from 1 to 65535.")


def runnable(notebook: Path, label: str, home: Home) -> Pipeline:
    """The analysed notebook, refused (as `nbops run` refuses it) when analysis finds errors.

    Its path is the absolute one, as the CLI records runs by (`nbops runs NOTEBOOK` finds them).
    """
    from nbops.run.home import analyse_with_runs

    read = dataclasses.replace(_read(notebook, label), path=str(notebook.resolve()))
    pipeline = analyse_with_runs(read, home)
    pipeline.raise_for_errors()
    return pipeline


def _read(notebook: Path, label: str) -> Notebook:
    """The notebook file, named `label` in messages: the path the caller knows, which for a
    browser is not where the file sits on the server's disk."""
    from nbops.model.notebook import parse_notebook

    if not notebook.is_file():
        raise NotebookNotFound(
            "no such notebook file." if not notebook.exists() else "is a folder, not a notebook.",
            where=label,
            fix="Check the path; nbops takes the path of an .ipynb file.",
        )
    return parse_notebook(notebook.read_bytes(), label)


def _known(name: str, home: Home) -> None:
    from nbops.deploy import records

    if not records.history(home.db(), name):
        raise DeploymentNotFound(
            f"nothing named {name!r} was ever deployed.", fix="`nbops status` lists them."
        )
