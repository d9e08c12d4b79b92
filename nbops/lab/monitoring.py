"""A deployment's watch and its version's monitoring as the ipywidgets show them: the JSON of
`GET /nbops/api/deployments/<name>/monitoring` turned into the plain context of
templates/widgets/monitoring.html.j2, with the same labels and bars the sidebar draws."""

from __future__ import annotations

from typing import Any

OTHER = "__other__"
DASH = "\u2013"  # between a bin's edges, and for a figure not known yet


def watch_view(row: dict[str, Any]) -> dict[str, str] | None:
    """`watching`/`degraded` with the watch's summary, else `rolled-back` with the reason of a
    rollback the watch made by itself, else `stable`; None for a version nobody watched."""
    summary = row.get("watch_summary") or "-"
    watch = row.get("watch")
    rolled = row.get("rolled_back")
    if watch in ("watching", "degraded"):
        return {"state": watch, "detail": summary if summary != "-" else watch}
    if rolled:
        return {"state": "rolled-back", "detail": rollback_message(row["name"], rolled)}
    if row.get("status") == "rolled-back":
        return {"state": "rolled-back", "detail": row.get("reason") or "rolled back"}
    if watch == "stable":
        return {"state": "stable", "detail": "stable: its watch saw no breach"}
    return None


def rollback_message(name: str, rolled: dict[str, Any]) -> str:
    return f"{name} v{rolled['version']} {rolled['reason']}"


def context(view: dict[str, Any]) -> dict[str, Any]:
    """What the template draws: the watch, the rollback, and per route its figures and a
    chart per input field and output."""
    row = view["deployment"]
    report = view.get("monitoring")
    return {
        "name": row["name"],
        "version": row["version"],
        "status": row["status"],
        "watch": watch_view(row),
        "rolled_back": row.get("rolled_back"),
        "error": view.get("monitoring_error") if report is None else None,
        "routes": [_route(route, report, row) for route in report["routes"]] if report else [],
    }


def _route(route: dict[str, Any], report: dict[str, Any], row: dict[str, Any]) -> dict[str, Any]:
    window = report["window"]
    policy = row.get("policy") or {}
    max_errors = policy.get("max_error_rate")
    rate = route.get("error_rate")
    drift = route.get("drift")
    figures = [
        ("window", f"{route['requests']} of {window['max_requests']} requests", False),
        ("error rate", percent(rate), max_errors is not None and (rate or 0) > max_errors),
        ("p99", milliseconds(route["latency_ms"].get("p99")), False),
        (
            "drift",
            f"scored from {window['min_requests']} requests" if drift is None else f"{drift:.2f}",
            drift is not None and drift > report["max_drift"],
        ),
    ]
    fields = [chart(f, "input") for f in route["inputs"]]
    fields += [chart(f, "output") for f in route["outputs"]]
    return {
        "route": route["route"],
        "figures": figures,
        "reference": route.get("reference"),
        "reason": route.get("reason"),
        "fields": fields,
    }


def chart(field: dict[str, Any], role: str) -> dict[str, Any]:
    """One field's bars: per bin its label, and the reference's and window's shares, each also
    as a percentage of the largest share (the bar's length)."""
    reference = field["reference_shares"]
    window = field["window_shares"]
    top = max([0.0, *reference, *window])
    bars = [
        {
            "label": label,
            "reference": percent(r),
            "window": percent(w),
            "reference_width": round(100 * r / top, 1) if top else 0.0,
            "window_width": round(100 * w / top, 1) if top else 0.0,
        }
        for label, r, w in zip(bin_labels(field), reference, window, strict=False)
    ]
    return {
        "name": field["name"],
        "role": role,
        "psi": DASH if field.get("psi") is None else f"{field['psi']:.2f}",
        "flagged": bool(field.get("flagged")),
        "window_count": field.get("window_count", 0),
        "bars": bars,
    }


def bin_labels(field: dict[str, Any]) -> list[str]:
    """`18\u201341.5` (its edges) per numeric bin, the category per categorical one."""
    size = len(field["reference_shares"])
    edges = field.get("edges") or []
    categories = field.get("categories") or []
    if len(edges) == size + 1:
        return [f"{compact(edges[i])}{DASH}{compact(edges[i + 1])}" for i in range(size)]
    if len(categories) == size:
        return ["other" if c == OTHER else str(c) for c in categories]
    return [f"bin {i + 1}" for i in range(size)]


def compact(value: float) -> str:
    return f"{value:.3g}"


def percent(rate: float | None) -> str:
    return DASH if rate is None else f"{round(rate * 100, 1):g}%"


def milliseconds(ms: float | None) -> str:
    if ms is None:
        return DASH
    return f"{round(ms)} ms" if ms >= 100 else f"{round(ms, 1):g} ms"
