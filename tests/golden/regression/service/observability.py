"""What the regression service tells its operators: JSON log lines, Prometheus metrics, request ids.

Every request passes RequestContext, which also hands each serve route's request to the monitor
(service/monitoring.py); the monitor's scores become gauges when /metrics is read.

Generated from regression.ipynb by nbops 0.1.0; edit the notebook, not this file.
"""

import asyncio
import json
import logging
import os
import re
import sys
import time
import uuid
from datetime import datetime, timezone
from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter, FastAPI
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .monitoring import Monitor

log = logging.getLogger("service")
# A caller's X-Request-ID is kept when it is this tame, so it can be logged as it is.
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
# Routes polled by probes and scrapers: their requests are logged at DEBUG, not INFO.
QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics", "/monitoring"})
# Seconds: one prediction takes milliseconds; a slow model or a large batch, seconds.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# The monitor's latency quantiles as the `quantile` label gives them, Prometheus's way.
QUANTILE_LABELS = {"p50": "0.5", "p90": "0.9", "p99": "0.99"}


class JsonFormatter(logging.Formatter):
    """A record as one JSON line: time, level, logger, message, its `fields`, any traceback."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **getattr(record, "fields", {}),
        }
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str) -> None:
    """The service's, uvicorn's and Python's warnings as JSON lines on stderr.

    Each request is logged once, here, with its id, so uvicorn's own access log is off.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    logging.captureWarnings(True)
    for name in ("service", "uvicorn", "py.warnings"):
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.setLevel(level)
        logger.propagate = False
    logging.getLogger("uvicorn.error").handlers = []
    logging.getLogger("uvicorn.error").propagate = True
    logging.getLogger("uvicorn.access").disabled = True


class Metrics:
    """The service's Prometheus metrics, in a registry of their own.

    With several workers, PROMETHEUS_MULTIPROC_DIR (which `nbops serve --workers N` sets) makes
    /metrics add up what every worker counted.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "nbops_http_requests",
            "HTTP requests answered, by route, method and status code.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "nbops_http_request_duration_seconds",
            "Seconds from a request's arrival to its answer, by route and method.",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.errors = Counter(
            "nbops_function_errors",
            "Exceptions raised by a serve function (each answered 500), by route.",
            ["route"],
            registry=self.registry,
        )
        self.ready = Gauge(
            "nbops_ready",
            "1 when every artifact is loaded and checked, else 0.",
            registry=self.registry,
            multiprocess_mode="min",
        )
        self.build = Gauge(
            "nbops_build_info",
            "The build served (always 1): its id, notebook sha256, run and nbops version.",
            ["name", "build_id", "notebook_sha256", "run_id", "nbops_version"],
            registry=self.registry,
            multiprocess_mode="max",
        )

        # The monitor's window scores: set when /metrics is read, from the last report.
        self.feature_drift = Gauge(
            "nbops_feature_drift",
            "PSI of an input field's window against the reference profile, by route and field.",
            ["route", "feature"],
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )
        self.output_drift = Gauge(
            "nbops_output_drift",
            "PSI of an output's window against the reference profile, by route and output.",
            ["route", "output"],
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )
        self.window_requests = Gauge(
            "nbops_window_requests",
            "Requests in the monitoring window, by route.",
            ["route"],
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )
        self.window_error_rate = Gauge(
            "nbops_window_error_rate",
            "Share of the window's requests answered 5xx, by route.",
            ["route"],
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )
        self.window_latency = Gauge(
            "nbops_window_latency_seconds",
            "Latency quantiles of the window's requests, by route and quantile.",
            ["route", "quantile"],
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )

    def monitored(self, report: dict[str, Any]) -> None:
        """Set the window gauges from the monitor's report; a score that is null is left out."""
        gauges = (self.feature_drift, self.output_drift, self.window_requests)
        for gauge in (*gauges, self.window_error_rate, self.window_latency):
            gauge.clear()
        for scores in report["routes"]:
            route = scores["route"]
            self.window_requests.labels(route=route).set(scores["requests"])
            if scores["error_rate"] is not None:
                self.window_error_rate.labels(route=route).set(scores["error_rate"])
            for name, value in scores["latency_ms"].items():
                if value is not None:
                    quantile = QUANTILE_LABELS[name]
                    self.window_latency.labels(route=route, quantile=quantile).set(value / 1e3)
            for field in scores["inputs"]:
                if field["psi"] is not None:
                    self.feature_drift.labels(route=route, feature=field["name"]).set(field["psi"])
            for field in scores["outputs"]:
                if field["psi"] is not None:
                    self.output_drift.labels(route=route, output=field["name"]).set(field["psi"])

    def served(self, manifest: dict[str, Any] | None, ready: bool) -> None:
        """Record what start-up found: the build's version, and whether it can serve."""
        self.ready.set(1 if ready else 0)
        if manifest is not None:
            self.build.labels(
                name=str(manifest.get("name")),
                build_id=str(manifest.get("build_id")),
                notebook_sha256=str((manifest.get("notebook") or {}).get("sha256")),
                run_id=str(manifest.get("run_id")),
                nbops_version=str(manifest.get("nbops_version")),
            ).set(1)

    def exposition(self) -> bytes:
        """The metrics in Prometheus's text format."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)


def internal_error(request_id: str) -> JSONResponse:
    """The one answer to an exception: no traceback, the id the log lines carry instead."""
    return JSONResponse({"detail": "internal error", "request_id": request_id}, status_code=500)


def stopping() -> JSONResponse:
    """The answer to a request cut off because the server is stopping."""
    detail = "the service stopped before this request was done; send it again"
    return JSONResponse({"detail": detail}, status_code=503, headers={"Connection": "close"})


class RequestContext:
    """Each request gets an id (the caller's X-Request-ID, or a new one), returned as a header.

    The request is timed, counted by route and status, recorded in its route's monitoring
    window (a serve route's), and logged as one JSON line; an
    exception nothing below answered is logged with its traceback and answered 500, and a
    request cut off by the server stopping is answered 503.
    """

    def __init__(
        self, app: ASGIApp, metrics: Metrics, paths: frozenset[str], monitor: Monitor
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.paths = paths
        self.monitor = monitor

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status, responded = 500, False

        async def send_with_id(message: Message) -> None:
            nonlocal status, responded
            if message["type"] == "http.response.start":
                status, responded = message["status"], True
                MutableHeaders(scope=message).append("X-Request-ID", request_id)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("unhandled error", extra={"fields": {"request_id": request_id}})
            if responded:  # too late for another answer: the server closes the connection
                raise
            await internal_error(request_id)(scope, receive, send_with_id)
        except asyncio.CancelledError:
            # uvicorn cancels what still runs when a SIGTERM's drain time is over: the client
            # gets a 503 it can retry elsewhere, rather than a connection closed on it.
            log.warning(
                "cut off: the server is stopping", extra={"fields": {"request_id": request_id}}
            )
            if responded:
                raise
            await stopping()(scope, receive, send_with_id)
        finally:
            self._record(scope, request_id, status, time.perf_counter() - started)

    def _record(self, scope: Scope, request_id: str, status: int, seconds: float) -> None:
        path, method = scope["path"], scope["method"]
        route = path if path in self.paths else "unmatched"
        self.metrics.requests.labels(route=route, method=method, status=str(status)).inc()
        self.metrics.latency.labels(route=route, method=method).observe(seconds)
        self.monitor.record(scope, status, seconds)
        fields = {
            "request_id": request_id,
            "method": method,
            "path": path,
            "route": route,
            "status": status,
            "duration_ms": round(seconds * 1000, 2),
        }
        level = logging.DEBUG if route in QUIET_ROUTES else logging.INFO
        log.log(level, f"{method} {path} {status}", extra={"fields": fields})


def _request_id(scope: Scope) -> str:
    given = Headers(scope=scope).get("x-request-id", "")
    return given if REQUEST_ID.fullmatch(given) else uuid.uuid4().hex


def route_paths(app: FastAPI, routers: Iterable[APIRouter]) -> frozenset[str]:
    """The paths requests are counted under: the routes' and the docs'. Any other path is
    "unmatched", so that requests for random URLs cannot grow the metrics without bound."""
    paths = {getattr(route, "path", "") for router in routers for route in router.routes}
    paths |= {app.openapi_url or "", app.docs_url or "", app.redoc_url or ""}
    return frozenset(paths - {""})
