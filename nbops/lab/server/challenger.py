"""The gates a sidebar deploy applies (the notebook's declared ones, as CI's `nbops deploy` gets
them) and the comparison the panel shows before a deploy: the serving version's recorded
metrics against this notebook's last successful run, each gate and duel judged.

The judging is `nbops.deploy.promotion.judge`, the function a deploy calls; nothing is decided
here that a deploy would decide otherwise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nbops.ci.gate_config import DeclaredGates
from nbops.ci.repository import notebook_gates
from nbops.deploy import records
from nbops.deploy.promotion import Gatekeeper, judge, recorded_metrics
from nbops.model.pipeline import Pipeline
from nbops.run.home import Home


def declared_gates(notebook: Path, server_root: Path, pipeline: Pipeline) -> DeclaredGates:
    """The notebook's declared gates, each metric checked against its metrics cells (a typo is
    a 400 before anything runs, as `nbops ci init` refuses it)."""
    return notebook_gates(
        notebook, server_root, pipeline.metrics.names, pipeline.notebook.display_name
    )


def gatekeeper(notebook: Path, server_root: Path, pipeline: Pipeline) -> Gatekeeper:
    """The Gatekeeper a deploy from the sidebar applies: the notebook's declared gates."""
    return Gatekeeper.declared(declared_gates(notebook, server_root, pipeline))


def comparison(
    pipeline: Pipeline, label: str, name: str, gates: DeclaredGates, home: Home
) -> dict[str, Any]:
    """GET deployments/<name>/challenger: the declared gates, the serving version and its
    recorded metrics, this notebook's last successful run and its metrics, and the verdict a
    deploy of that run would get now (null without a run)."""
    keeper = Gatekeeper.declared(gates)
    db = home.db()
    serving = records.current(db, name)
    run = db.latest_run(pipeline.notebook.path)
    verdict = judge(keeper, {"metrics": run.metrics}, serving) if run is not None else None
    return {
        "name": name,
        "notebook": label,
        "gated": bool(keeper),
        "gates": {**keeper.as_dict(), "sources": list(gates.sources)},
        "serving": None if serving is None else _serving(serving),
        "challenger": None
        if run is None
        else {
            "run_id": run.run_id,
            "started_at": run.started_at,
            "parameters": run.parameters,
            "metrics": run.metrics,
            # False when the notebook was edited since: a deploy runs it again first.
            "same_notebook": run.notebook_sha256 == pipeline.notebook.sha256,
        },
        "verdict": None if verdict is None else verdict.report(),
    }


def _serving(row: records.Deployment) -> dict[str, Any]:
    return {
        "version": row.version,
        "status": row.status,
        "run_id": row.run_id,
        "metrics": recorded_metrics(row),
    }
