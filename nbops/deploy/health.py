"""What is true of each deployment now: its version's process and /healthz, its proxy on the
stable port, the requests it served; what an operation killed outright left is ended first."""

from __future__ import annotations

import json
import time
from typing import Any

from nbops.deploy import processes, records
from nbops.deploy.records import Deployment
from nbops.errors import NbopsError
from nbops.run.home import Home
from nbops.run.pids import pid_alive, same_process


class UnknownDeployment(NbopsError):
    """No deployment has the name asked for."""


OPERATIONAL_ROUTES = frozenset(
    {"/healthz", "/readyz", "/metrics", "/monitoring", "/version", "/docs", ""}
)


def status(home: Home | None = None, name: str | None = None) -> list[dict[str, Any]]:
    """Each name's current (else newest) version, checked now: its process, /healthz, requests
    served, and whether its proxy answers on the stable port."""
    home = home or Home.default()
    db = home.db()
    for row in records.latest_per_name(db):
        if name is None or row.name == name:
            _settle_abandoned(db, row.name)
    rows = records.latest_per_name(db)
    return [_checked(db, row) for row in rows if name is None or row.name == name]


def _settle_abandoned(db: Any, name: str) -> None:
    """What an operation killed outright left half-started is ended by the next command that
    finds its lease free; one still running keeps its versions."""
    if not any(row.status in records.UNFINISHED for row in records.history(db, name)):
        return
    try:
        lease = records.acquire(db, name, "status")
    except records.DeployBusy:
        return
    records.release(db, lease)


def _checked(db: Any, row: Deployment) -> dict[str, Any]:
    known = records.endpoint(db, row.name)
    supervised = known is not None and known.supervisor_alive
    health = "-"
    requests: float | None = None
    if row.status == "healthy":
        if not _runs(row):
            if supervised:
                health = "down (restarting)"
            else:
                reason = f"the service process (pid {row.pid}) died"
                records.update(db, row.name, row.version, status="failed", reason=reason, pid=None)
                row = records.get(db, row.name, row.version) or row
                health = "dead"
        else:
            code, _ = processes.get(f"http://127.0.0.1:{row.port}/healthz")
            health = "ok" if code == 200 else f"unhealthy ({code})"
            requests = _requests_served(row.port)
    standby = _standby_version(db, row)
    data = row.as_dict()
    data.update(
        health=health,
        proxy=_proxy_health(known),
        supervisor="-"
        if known is None or not known.supervisor_pid
        else ("up" if supervised else "down"),
        checked_at=time.time(),
        uptime_s=round(time.time() - row.healthy_at, 1)
        if row.healthy_at and row.status == "healthy"
        else None,
        requests=requests,
        standby=standby,
        watch_summary=watch_summary(row, standby),
        rolled_back=_rolled_back_since(db, row),
    )
    return data


def _standby_version(db: Any, row: Deployment) -> int | None:
    standby = records.standby(db, row.name)
    return standby[0].version if standby and row.current else None


def watch_summary(row: Deployment, standby: int | None, now: float | None = None) -> str:
    """The watch of a version in words: `watching (2m left; canary 20%, v2 serves the rest)`,
    `stable`, `degraded: why`; `-` when it is not watched."""
    if row.watch is None or row.status != "healthy":
        return "-"
    if row.watch == "degraded":
        return f"degraded: {row.reason}" if row.reason else "degraded"
    if row.watch != "watching":
        return row.watch
    left = max(0.0, (row.watch_until or 0.0) - (now or time.time()))
    parts = [f"{left:.0f}s left" if left else "ending"]
    if row.canary is not None and standby is not None:
        parts.append(f"canary {row.canary}%, v{standby} serves the rest")
    elif standby is not None:
        parts.append(f"v{standby} on standby")
    return f"watching ({'; '.join(parts)})"


def _rolled_back_since(db: Any, row: Deployment) -> dict[str, Any] | None:
    """The version a watch rolled back after `row` last became the one serving: its reason."""
    if not row.current or row.healthy_at is None:
        return None
    for other in reversed(records.history(db, row.name)):
        if other.status == "rolled-back" and other.updated_at >= row.healthy_at and other.reason:
            return {"version": other.version, "reason": other.reason, "at": other.updated_at}
    return None


def _runs(row: Deployment) -> bool:
    # Rows written before nbops recorded start times are judged by their pid alone.
    if row.pid_started is None:
        return pid_alive(row.pid)
    return same_process(row.pid, row.pid_started)


def _proxy_health(known: records.Endpoint | None) -> str:
    """`up` when the proxy answers on the stable port now; else why not."""
    if known is None or (known.proxy_pid is None and known.supervisor_pid is None):
        return "-"
    if known.proxy_state:
        return known.proxy_state
    if known.proxy_alive and upstream(known.port) is not None:
        return "up"
    return "down (restarting)" if known.supervisor_alive else "down (not supervised)"


def _requests_served(port: int | None) -> float | None:
    """The service's request count from its Prometheus /metrics, model routes only."""
    code, text = processes.get(f"http://127.0.0.1:{port}/metrics")
    if code != 200:
        return None
    total = 0.0
    for line in text.splitlines():
        if line.startswith("nbops_http_requests_total{"):
            route = line.split('route="', 1)[1].split('"', 1)[0] if 'route="' in line else ""
            if route not in OPERATIONAL_ROUTES:
                total += float(line.rsplit(" ", 1)[1])
    return total


def upstream(port: int) -> dict[str, Any] | None:
    """What the proxy on `port` forwards to, or None when it does not answer."""
    code, body = processes.get(f"http://127.0.0.1:{port}/_nbops/upstream")
    if code != 200:
        return None
    data: dict[str, Any] = json.loads(body)
    return data


def monitoring(name: str, home: Home | None = None) -> dict[str, Any]:
    """What `nbops monitor` and the sidebar show of `name`, now: its status row, its current
    version's own /monitoring (drift, error rate, latency over the service's window) and what
    the proxy counted per version. Either of the last two is None, with why, when it does not
    answer (a build from before /monitoring answers 404)."""
    rows = status(home, name)
    if not rows:
        raise UnknownDeployment(f"nothing named {name!r} is deployed.", fix="`nbops status`.")
    row = rows[0]
    found: dict[str, Any] = {"deployment": row, "monitoring": None, "monitoring_error": None}
    if row["status"] != "healthy" or row["port"] is None:
        found["monitoring_error"] = f"v{row['version']} is {row['status']}, not serving"
    else:
        code, body = processes.get(f"http://127.0.0.1:{row['port']}/monitoring")
        if code == 200:
            found["monitoring"] = json.loads(body)
        elif code == 404:
            found["monitoring_error"] = (
                f"v{row['version']} has no /monitoring (built before nbops monitored services)"
            )
        else:
            found["monitoring_error"] = f"/monitoring of v{row['version']} answered {code}"
    known = records.endpoint(home.db() if home else Home.default().db(), name)
    found["proxy"] = proxy_stats(known.port) if known else None
    return found


def proxy_stats(port: int) -> dict[str, Any] | None:
    """What the proxy on `port` counted of each version's requests, or None."""
    code, body = processes.get(f"http://127.0.0.1:{port}/_nbops/stats")
    if code != 200:
        return None
    data: dict[str, Any] = json.loads(body)
    return data
