"""Operational routes of the regression service: liveness, readiness, metrics, monitoring and
version.

/healthz, /readyz, /metrics and /monitoring answer without the API key, for probes, scrapers
and the deploy supervisor.

Generated from regression.ipynb by nbops 0.1.0; edit the notebook, not this file.
"""

from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from .artifacts import NotReady
from .schemas import Health, Monitoring, Problem, Readiness, Version
from .security import GuardedRoute

probes = APIRouter(tags=["operations"])
about = APIRouter(tags=["operations"], route_class=GuardedRoute)


@probes.get("/healthz", response_model=Health, summary="The process is alive")
async def healthz() -> dict[str, Any]:
    """Answers while the process runs, whether or not it can serve: a liveness probe."""
    return {"status": "ok"}


@probes.get(
    "/readyz",
    response_model=Readiness,
    summary="The artifacts are loaded and checked",
    responses={503: {"model": Readiness, "description": "Not ready, and why"}},
)
async def readyz(request: Request, response: Response) -> dict[str, Any]:
    """200 once every artifact the serve functions read is loaded and matches its sha256 in
    nbops.json; 503 with the reason (a missing or altered artifact, say) otherwise."""
    startup = request.app.state.startup
    if startup.endpoints is None:
        response.status_code = 503
        return {"status": "not ready", "reason": startup.reason}
    return {"status": "ready", "reason": None}


@probes.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text"}},
)
async def metrics(request: Request) -> Response:
    """Requests and latency per route, serve function errors, readiness, the build served
    (nbops_build_info), and the monitoring window's scores (nbops_feature_drift,
    nbops_output_drift, nbops_window_requests, nbops_window_error_rate,
    nbops_window_latency_seconds), in Prometheus's text format."""
    metrics, monitor = request.app.state.metrics, request.app.state.monitor
    if monitor.enabled:
        metrics.monitored(monitor.report())
    return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


@probes.get(
    "/monitoring",
    response_model=Monitoring,
    summary="Drift, error rate and latency of each route's recent requests",
)
async def monitoring(request: Request) -> dict[str, Any]:
    """For each serve route, its window of recent requests (NBOPS_MONITOR_WINDOW of them at
    most, none older than NBOPS_MONITOR_WINDOW_SECONDS): error rate, latency quantiles, and for
    a route with a reference profile each input field's and output's PSI and p-value against
    it, with both histograms. Worked out at most every NBOPS_MONITOR_INTERVAL_SECONDS; scores
    are null until the window holds NBOPS_MONITOR_MIN_REQUESTS requests."""
    report: dict[str, Any] = request.app.state.monitor.report()
    return report


@about.get(
    "/version",
    response_model=Version,
    summary="The build served and its lineage",
    responses={503: {"model": Problem, "description": "nbops.json cannot be read"}},
)
async def version(request: Request) -> dict[str, Any]:
    """The build id, the notebook and its sha256, the run the artifacts came from, the
    artifacts' hashes, and for each route the notebook cells it came from and the artifacts
    (each "<step>.<name>") it reads: lineage from the endpoint back to the notebook."""
    startup = request.app.state.startup
    if startup.manifest is None:
        raise NotReady(startup.reason)
    manifest: dict[str, Any] = startup.manifest
    return manifest
