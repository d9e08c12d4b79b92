"""The route table of nbops's REST API under <base_url>/nbops/api/ (README, "JupyterLab")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jupyter_server.utils import url_path_join

from nbops.lab.server import handlers
from nbops.lab.server.jobs import JobRegistry
from nbops.lab.server.journal import Journal
from nbops.lab.server.paths import server_home

NAME = r"(?P<name>[^/]+)"
JOB_ID = r"(?P<job_id>[^/]+)"  # any id reaches the handler, so an unknown one is a JSON 404

ROUTES: tuple[tuple[str, type[handlers.NbopsHandler]], ...] = (
    ("lineage", handlers.LineageHandler),
    ("check", handlers.CheckHandler),
    ("deployments", handlers.DeploymentsHandler),
    (f"deployments/{NAME}/rollback", handlers.RollbackHandler),
    (f"deployments/{NAME}/stop", handlers.StopHandler),
    (f"deployments/{NAME}/monitoring", handlers.MonitoringHandler),
    (f"deployments/{NAME}/challenger", handlers.ChallengerHandler),
    ("runs", handlers.RunsHandler),
    ("exporters", handlers.ExportersHandler),
    ("exports", handlers.ExportsHandler),
    ("jobs", handlers.JobsHandler),
    (f"jobs/{JOB_ID}", handlers.JobHandler),
    (f"jobs/{JOB_ID}/cancel", handlers.CancelHandler),
)


def route_table(base_url: str) -> list[tuple[str, type[handlers.NbopsHandler]]]:
    api = url_path_join(base_url, "nbops", "api")
    return [(url_path_join(api, pattern), handler) for pattern, handler in ROUTES]


def setup_handlers(server_app: Any) -> None:
    """Add the routes, with the root folder they resolve paths in and a registry for jobs,
    whose journal (in the state's home) tells it which jobs an earlier server left running."""
    web_app = server_app.web_app
    root_dir = Path(server_app.root_dir).expanduser().resolve()
    registry = JobRegistry(journal=Journal(server_home(root_dir).root / "jobs"))
    interrupted = [job for job in registry.recover() if job.snapshot()["state"] == "interrupted"]
    web_app.settings["nbops"] = handlers.ServerState(root_dir, registry)
    web_app.add_handlers(".*$", route_table(web_app.settings["base_url"]))
    server_app.log.info(
        "nbops: REST API at %s, state in %s",
        url_path_join(web_app.settings["base_url"], "nbops", "api"),
        server_home(root_dir).root,
    )
    if interrupted:
        server_app.log.warning(
            "nbops: %d job(s) were cut off when the server stopped: %s",
            len(interrupted),
            ", ".join(f"{job.kind} of {job.target}" for job in interrupted),
        )
