"""Monitoring of the churn service: each route's recent requests, and how far they drift.

Each route keeps a window of its last requests, bounded by count (NBOPS_MONITOR_WINDOW) and age
(NBOPS_MONITOR_WINDOW_SECONDS): per request its time, whether it failed (5xx) and its latency,
and, on a route whose serve cell names reference rows, the bin of each input field and output
in the reference profile the build made (`service/profile.py` bins them). The request path does
little: a serve route puts its request's bins in the request's scope (`Monitor.observe`) and
RequestContext appends one entry (`Monitor.record`); the window adds the entry's bins to its
counts and takes off those of the entries it evicts. The scores (PSI and a chi-square p-value
per field, error rate, latency quantiles) are worked out when /metrics or /monitoring is read,
at most every NBOPS_MONITOR_INTERVAL_SECONDS. Each worker process watches its own requests.

Generated from churn.ipynb by nbops 0.1.0; edit the notebook, not this file.
"""

import hashlib
import importlib
import json
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.types import Scope

from .profile import NUMERIC, FieldProfile, bin_total, binner, psi
from .settings import Settings

# Each serve route by the name nbops.json gives it, and its path.
ROUTES: dict[str, str] = {
    "predict": "/predict",
    "predict_batch": "/predict_batch",
}
# Where a serve route leaves its request's bins for RequestContext to record.
ROWS = "nbops_monitoring_rows"
QUANTILES = (("p50", 0.5), ("p90", 0.9), ("p99", 0.99))
DIGITS = 6

log = logging.getLogger("service")

# A request's slot per field, inputs then outputs: a bin's index, or -1 for the slot after the
# bins, which counts the missing values (and those of a field the reference never saw).
Row = tuple[int, ...]
# time (monotonic), failed (5xx), latency in seconds (None for a batch), answered, rows
Entry = tuple[float, bool, float | None, int, Sequence[Row] | None]


class Window:
    """One route's last requests, bounded by count and by age, with the per-field bin counts of
    the requests it holds kept up to date as entries come and go."""

    def __init__(self, max_requests: int, max_seconds: float, fields: int) -> None:
        self.max_requests = max_requests
        self.max_seconds = max_seconds
        self.entries: deque[Entry] = deque()
        self.errors = 0
        self.answered = 0
        # Per field, as long as its bins plus one: see Row. Sized when the profile is read.
        self.counts: list[list[int]] = [[] for _ in range(fields)]

    def append(self, entry: Entry) -> None:
        self.entries.append(entry)
        self.errors += entry[1]
        self.answered += entry[3]
        if entry[4]:
            self._count(entry[4], 1)
        self.evict(entry[0])

    def evict(self, now: float) -> None:
        """Drop the entries beyond the count or older than the age, and their counts."""
        entries, oldest = self.entries, now - self.max_seconds
        while entries and (len(entries) > self.max_requests or entries[0][0] < oldest):
            _, failed, _, answered, rows = entries.popleft()
            self.errors -= failed
            self.answered -= answered
            if rows:
                self._count(rows, -1)

    def _count(self, rows: Sequence[Row], sign: int) -> None:
        counts = self.counts
        for row in rows:
            for field, slot in enumerate(row):
                counts[field][slot] += sign


class Route:
    """A serve route's window, and the reference profile its drift is measured against (none,
    and `reason` says why, when drift is not watched)."""

    def __init__(self, name: str, settings: Settings) -> None:
        self.name = name
        self.window = Window(settings.monitor_window, settings.monitor_window_seconds, 0)
        self.reference: str | None = None
        self.reason: str | None = "the service is starting"
        self.inputs: tuple[FieldProfile, ...] = ()
        self.outputs: tuple[FieldProfile, ...] = ()
        self._input_bins: list[tuple[str, Callable[[Any], int | None]]] = []
        self._output_bins: list[tuple[str, Callable[[Any], int | None]]] = []

    @property
    def watched(self) -> bool:
        return bool(self.inputs or self.outputs)

    def use(
        self, reference: str, inputs: Sequence[FieldProfile], outputs: Sequence[FieldProfile]
    ) -> None:
        """Watch drift against this profile, from an empty window."""
        self.reference, self.reason = reference, None
        self.inputs, self.outputs = tuple(inputs), tuple(outputs)
        self._input_bins = [(f.name, binner(f)) for f in self.inputs]
        self._output_bins = [(f.name, binner(f)) for f in self.outputs]
        fields = (*self.inputs, *self.outputs)
        self.window = Window(self.window.max_requests, self.window.max_seconds, len(fields))
        self.window.counts = [[0] * (bin_total(f) + 1) for f in fields]

    def row(self, inputs: Any, result: Any) -> Row:
        """The slot of each field for one answered request: what the function was given, and
        what it returned (a dict's values by key, or the value itself as `output`)."""
        given = inputs if isinstance(inputs, Mapping) else {}
        returned = result if isinstance(result, Mapping) else {"output": result}
        slots = [_slot(place(given.get(name))) for name, place in self._input_bins]
        slots += [_slot(place(returned.get(name))) for name, place in self._output_bins]
        return tuple(slots)


def _slot(index: int | None) -> int:
    return -1 if index is None else index


class Monitor:
    """Every serve route's window, fed from the request path, and the scores of them all,
    worked out at most every NBOPS_MONITOR_INTERVAL_SECONDS."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.enabled = settings.monitoring
        self.routes = {name: Route(name, settings) for name in ROUTES} if self.enabled else {}
        # path -> its route, and whether the path is the route's batch form
        self.paths: dict[str, tuple[Route, bool]] = {}
        for name, route in self.routes.items():
            self.paths[ROUTES[name]] = (route, False)
            self.paths[f"{ROUTES[name]}/batch"] = (route, True)
        self._report: dict[str, Any] | None = None
        self._computed = -math.inf

    def use_references(self, manifest: dict[str, Any] | None, root: Path) -> None:
        """Read each route's reference profile named in nbops.json, checked against its
        sha256; a route whose profile is missing or altered is served, its drift unwatched."""
        entries = {e.get("route"): e for e in (manifest or {}).get("endpoints", [])}
        for name, route in self.routes.items():
            reference = (entries.get(name) or {}).get("reference")
            if manifest is None:
                route.reason = "nbops.json cannot be read, so neither can the reference profile"
            elif not reference:
                route.reason = "the serve cell names no reference rows (reference=<artifact>)"
            else:
                _use_profile(route, reference, root)
        if any(route.watched for route in self.routes.values()):
            _chi_square()  # imported now, not at the first read of /monitoring

    def observe(self, request: Request, route: str, inputs: Any, result: Any) -> None:
        """Keep the bins of one answered request, for RequestContext to record."""
        watched = self.routes.get(route)
        if watched is not None and watched.watched:
            request.scope.setdefault("state", {})[ROWS] = (watched.row(inputs, result),)

    def observe_batch(
        self, request: Request, route: str, inputs: Sequence[Any], answer: dict[str, Any]
    ) -> None:
        """Keep the bins of each request of a batch the function answered."""
        watched = self.routes.get(route)
        if watched is None or not watched.watched:
            return
        failed = {error["index"] for error in answer["errors"]}
        rows = [
            watched.row(given, result)
            for index, (given, result) in enumerate(zip(inputs, answer["results"], strict=True))
            if index not in failed
        ]
        request.scope.setdefault("state", {})[ROWS] = rows

    def record(self, scope: Scope, status: int, seconds: float) -> None:
        """Append a serve route's request to its window; any other path is left alone."""
        found = self.paths.get(scope["path"])
        if found is None:
            return
        route, batch = found
        rows = scope.get("state", {}).pop(ROWS, None) if status < 500 else None
        answered = len(rows) if rows is not None else int(200 <= status < 300)
        route.window.append(
            (time.monotonic(), status >= 500, None if batch else seconds, answered, rows)
        )

    def report(self) -> dict[str, Any]:
        """The scores, worked out again once the last are NBOPS_MONITOR_INTERVAL_SECONDS old."""
        now = time.monotonic()
        if self._report is None or now - self._computed >= self.settings.monitor_interval_seconds:
            self._report = self._scores(now)
            self._computed = now
        return self._report

    def _scores(self, now: float) -> dict[str, Any]:
        settings = self.settings
        return {
            "enabled": self.enabled,
            "window": {
                "max_requests": settings.monitor_window,
                "max_seconds": settings.monitor_window_seconds,
                "min_requests": settings.monitor_min_requests,
            },
            "max_drift": settings.max_drift,
            "computed_at": round(time.time(), 3),
            "routes": [route_scores(route, settings, now) for route in self.routes.values()],
        }


def _use_profile(route: Route, reference: dict[str, Any], root: Path) -> None:
    route.reference = str(reference.get("artifact"))
    path = root / str(reference.get("profile"))
    try:
        data = path.read_bytes()
    except OSError as error:
        route.reason = f"the reference profile {path} cannot be read ({error.strerror})"
        return
    actual, expected = hashlib.sha256(data).hexdigest(), reference.get("sha256")
    if actual != expected:
        route.reason = (
            f"the reference profile {path} was altered: its sha256 is {actual}, "
            f"nbops.json records {expected}"
        )
        return
    try:
        profile = json.loads(data)
        inputs = [FieldProfile.from_dict(f) for f in profile["inputs"]]
        outputs = [FieldProfile.from_dict(f) for f in profile["outputs"]]
    except (ValueError, KeyError, TypeError) as error:
        route.reason = f"{path} is not a reference profile ({type(error).__name__}: {error})"
        return
    route.use(route.reference, inputs, outputs)
    fields = {"route": route.name, "reference": route.reference, "profile": str(path)}
    log.info("monitoring drift against the reference profile", extra={"fields": fields})


def route_scores(route: Route, settings: Settings, now: float) -> dict[str, Any]:
    """One route's window as /monitoring shows it. The error rate and latency are null while
    the window holds fewer than NBOPS_MONITOR_MIN_REQUESTS requests, the drift scores while it
    holds fewer answered ones."""
    window = route.window
    window.evict(now)
    requests, enough = len(window.entries), settings.monitor_min_requests
    drift = window.answered >= enough
    counts = iter(window.counts)
    inputs = [field_scores(f, next(counts), drift, settings.max_drift) for f in route.inputs]
    outputs = [field_scores(f, next(counts), drift, settings.max_drift) for f in route.outputs]
    return {
        "route": route.name,
        "requests": requests,
        "errors": window.errors,
        "error_rate": round(window.errors / requests, DIGITS) if requests >= enough else None,
        "latency_ms": latency_ms(window.entries) if requests >= enough else _no_latency(),
        "reference": route.reference,
        "reason": route.reason,
        "drift": _largest(inputs) if drift and route.watched else None,
        "output_drift": _largest(outputs) if drift and route.watched else None,
        "flagged": [f["name"] for f in (*inputs, *outputs) if f["flagged"]],
        "inputs": inputs,
        "outputs": outputs,
    }


def field_scores(
    field: FieldProfile, counts: list[int], ready: bool, max_drift: float
) -> dict[str, Any]:
    """A field's window next to its reference: shares per bin, PSI, p-value, missing rates."""
    present, missing = counts[:-1], counts[-1]
    total = sum(present)
    seen = total + missing
    score = round(psi(field.shares, present), DIGITS) if ready and field.shares and total else None
    return {
        "name": field.name,
        "kind": field.kind,
        "psi": score,
        "p_value": p_value(field, present) if score is not None else None,
        "flagged": score is not None and score > max_drift,
        "edges": list(field.edges) if field.kind == NUMERIC else None,
        "categories": None if field.kind == NUMERIC else list(field.categories),
        "reference_shares": list(field.shares),
        "window_shares": [round(c / total, DIGITS) if total else 0.0 for c in present],
        "window_count": seen,
        "reference_missing_rate": field.missing_rate,
        "window_missing_rate": round(missing / seen, DIGITS) if ready and seen else None,
    }


def p_value(field: FieldProfile, window: list[int]) -> float | None:
    """A chi-square test of the window's bin counts against the reference's: how likely
    counts this far apart are from one distribution. None without scipy, or with one bin."""
    test = _chi_square()
    if test is None:
        return None
    reference_total = field.count * (1 - field.missing_rate)
    pairs = [
        (share * reference_total, seen)
        for share, seen in zip(field.shares, window, strict=True)
        if share or seen
    ]
    if len(pairs) < 2:
        return None
    try:
        found = test([list(column) for column in zip(*pairs, strict=True)])
    except ValueError:
        return None
    return round(float(found.pvalue), DIGITS)


# scipy.stats.chi2_contingency once looked up (None without scipy): it takes a while to import.
_scipy: dict[str, Callable[..., Any] | None] = {}


def _chi_square() -> Callable[..., Any] | None:
    """scipy's chi2_contingency, or None when scipy is not installed."""
    if "test" not in _scipy:
        try:
            _scipy["test"] = importlib.import_module("scipy.stats").chi2_contingency
        except ImportError:
            _scipy["test"] = None
    return _scipy["test"]


def latency_ms(entries: Sequence[Entry]) -> dict[str, float | None]:
    """The quantiles of the window's latencies (nearest rank), in milliseconds; a batch's
    latency is left out, being many calls' worth."""
    seconds = sorted(entry[2] for entry in entries if entry[2] is not None)
    if not seconds:
        return _no_latency()
    last = len(seconds) - 1
    return {
        name: round(seconds[min(max(math.ceil(q * len(seconds)) - 1, 0), last)] * 1000, 3)
        for name, q in QUANTILES
    }


def _no_latency() -> dict[str, float | None]:
    return {name: None for name, _ in QUANTILES}


def _largest(fields: list[dict[str, Any]]) -> float | None:
    scores = [f["psi"] for f in fields if f["psi"] is not None]
    return max(scores) if scores else None
