"""Operational routes of the regression service: liveness, readiness, metrics and version.

/healthz, /readyz and /metrics answer without the API key, for probes and scrapers.

Generated from regression.ipynb by nbops 0.1.0; edit the notebook, not this file.
"""

from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from .artifacts import NotReady
from .schemas import Health, Problem, Readiness, Version
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
    """Requests and latency per route, serve function errors, readiness, and the build served
    (nbops_build_info), in Prometheus's text format."""
    return Response(request.app.state.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


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
