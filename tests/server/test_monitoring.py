"""GET /nbops/api/deployments/<name>/monitoring: a deployment's status row, its serving version's
/monitoring and its proxy's stats, through a real jupyter_server and a real deployment."""

from __future__ import annotations

import asyncio
import http.server
import json
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_server import Fetch, cli, finished, get, refused, stable, write
from traitlets.config import Config

from nbops.deploy import local as deploy
from nbops.deploy import records
from nbops.deploy.processes import free_port
from nbops.deploy.records import Deployment
from nbops.run.home import Home
from nbops.run.pids import start_time

# A served function with a reference: the build profiles `x` (0..9) and its output.
DRIFTING = [
    ("factor = 2", ["parameters"]),
    ("rows = [{'x': float(i % 10)} for i in range(200)]", ["step:load"]),
    (
        "def predict(x: float) -> float:\n    '''Scale x.'''\n    return x * factor",
        ["serve:predict", "reference=load.rows"],
    ),
    "predict(3.0)",
]


@pytest.fixture
def jp_server_config() -> Config:
    return Config({"ServerApp": {"jpserver_extensions": {"nbops": True}}})


@pytest.fixture
def root(jp_root_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.delenv("NBOPS_HOME", raising=False)
    monkeypatch.chdir(jp_root_dir)
    write(jp_root_dir / "drifting.ipynb", DRIFTING)
    yield jp_root_dir
    home = Home(jp_root_dir / ".nbops")
    for row in deploy.status(home=home):
        if row["status"] == "healthy":
            deploy.stop(row["name"], home=home)


async def test_an_unknown_deployment_is_404(jp_fetch: Fetch, root: Path) -> None:
    code, reply = await refused(jp_fetch("nbops", "api", "deployments", "nope", "monitoring"))

    assert (code, reply["message"]) == (
        404,
        "nothing named 'nope' was ever deployed. `nbops status` lists them.",
    )


async def test_the_route_needs_the_token(jp_fetch: Fetch, root: Path) -> None:
    request = jp_fetch(
        "nbops", "api", "deployments", "nope", "monitoring", headers={"Authorization": ""}
    )
    code, _ = await refused(request)

    assert code == 403


@pytest.mark.slow
async def test_monitoring_shows_the_versions_drift_and_what_its_proxy_saw(
    jp_fetch: Fetch, root: Path
) -> None:
    port = free_port()
    body = json.dumps({"path": "drifting.ipynb", "name": "drifting", "port": port})
    started = await jp_fetch("nbops", "api", "deployments", method="POST", body=body)
    job = await finished(jp_fetch, json.loads(started.body)["job_id"])
    assert job["state"] == "succeeded", job

    for i in range(120):  # x tripled, and beyond the reference's 0..9
        await asyncio.to_thread(call, f"http://127.0.0.1:{port}/predict", {"x": 30.0 + i % 10})
    view = await drift_computed(jp_fetch, "drifting")

    assert set(view) == {"deployment", "monitoring", "monitoring_error", "proxy"}
    assert stable(view["deployment"]) == stable(cli(root, "status", "drifting")[0])
    assert view["monitoring_error"] is None
    (route,) = view["monitoring"]["routes"]
    assert (route["route"], route["errors"]) == ("predict", 0)
    assert route["requests"] >= 120  # and the deploy's smoke request, sent to the version
    (x,) = route["inputs"]
    assert (x["name"], x["kind"], x["flagged"]) == ("x", "numeric", True)
    assert x["psi"] > 0.25 and x["window_count"] >= 120
    assert x["window_shares"][-1] >= 0.99  # what is beyond the reference counts in its last bin
    assert view["proxy"]["version"] == 1
    assert view["proxy"]["versions"]["1"]["requests"] == 120


async def drift_computed(fetch: Fetch, name: str, timeout: float = 20.0) -> dict[str, Any]:
    """The monitoring view once the service has scored its window (every few seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        view: dict[str, Any] = await get(fetch, f"deployments/{name}/monitoring")
        routes = (view["monitoring"] or {}).get("routes", [])
        if (routes and routes[0]["drift"] is not None) or time.monotonic() > deadline:
            return view
        await asyncio.sleep(0.5)


def call(url: str, body: dict[str, Any]) -> None:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


# a version that does not answer /monitoring


@pytest.fixture
def older_build() -> Iterator[int]:
    """A service built before /monitoring existed, as far as nbops can tell: every path 404."""

    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_error(404)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def older_build_process() -> Iterator[subprocess.Popen[bytes]]:
    """A process to stand for the older build's service (stopping the deployment ends it)."""
    process = subprocess.Popen(["sleep", "120"])
    yield process
    process.kill()
    process.wait()


async def test_a_version_without_monitoring_says_why(
    jp_fetch: Fetch, root: Path, older_build: int, older_build_process: subprocess.Popen[bytes]
) -> None:
    now = time.time()
    serving = Deployment(
        name="old", version=3, status="healthy", build_dir=str(root), build_id="b",
        notebook_sha256="s", run_id=None, port=older_build, pid=older_build_process.pid,
        url="http://127.0.0.1:1", reason=None, log_tail=None, started_by="test",
        created_at=now, updated_at=now, healthy_at=now, current=1,
        pid_started=start_time(older_build_process.pid),
    )  # fmt: skip
    records.insert(Home(root / ".nbops").db(), serving)

    view = await get(jp_fetch, "deployments/old/monitoring")

    assert (view["deployment"]["name"], view["deployment"]["version"]) == ("old", 3)
    assert view["monitoring"] is None
    assert view["monitoring_error"] == (
        "v3 has no /monitoring (built before nbops monitored services)"
    )
    assert view["proxy"] is None  # no proxy was ever started for it
