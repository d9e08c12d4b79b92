"""The REST API under /nbops/api/, through jupyter_server's own test fixtures (pytest-jupyter).

Each test gets a real ServerApp with the nbops extension enabled, a temporary root folder, and
the state db at its default place, `<root>/.nbops`.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from builders import notebook_json
from jupyter_server.auth import Authorizer
from tornado.httpclient import HTTPClientError, HTTPResponse
from traitlets.config import Config

import nbops
from nbops.deploy.processes import free_port
from nbops.run.home import Home

NBOPS = str(Path(sys.executable).parent / "nbops")
Fetch = Callable[..., Awaitable[HTTPResponse]]

MODEL = [
    ("factor = 2  # how steep", ["parameters"]),
    ("values = [1, 2, 3]", ["step:load"]),
    ("scale = factor * max(values)", ["step:fit"]),
    ("assert scale > 0", ["test"]),
    ("total = scale * len(values)", ["metrics"]),
    ("def predict(x: float) -> float:\n    '''Scale x.'''\n    return x * scale", ["serve"]),
    "predict(3.0)",
]


@pytest.fixture
def jp_server_config() -> Config:
    return Config({"ServerApp": {"jpserver_extensions": {"nbops": True}}})


@pytest.fixture
def root(jp_root_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The server's root folder, also the working folder: a deploy builds into ./build/<name>."""
    monkeypatch.delenv("NBOPS_HOME", raising=False)
    monkeypatch.chdir(jp_root_dir)
    write(jp_root_dir / "model.ipynb", MODEL)
    return jp_root_dir


def write(path: Path, cells: list[Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(notebook_json(cells)))
    return path


async def get(fetch: Fetch, route: str, **params: str) -> Any:
    response = await fetch("nbops", "api", route, params=params)
    return json.loads(response.body)


async def post(fetch: Fetch, route: str, body: Any) -> Any:
    response = await fetch("nbops", "api", route, method="POST", body=json.dumps(body))
    return json.loads(response.body)


async def refused(request: Awaitable[HTTPResponse]) -> tuple[int, dict[str, Any]]:
    """The status and JSON body of a request that must fail."""
    with pytest.raises(HTTPClientError) as caught:
        await request
    response = caught.value.response
    assert response is not None
    assert response.headers["Content-Type"].startswith("application/json")
    return caught.value.code, json.loads(response.body)


async def finished(fetch: Fetch, job_id: str, timeout: float = 120.0) -> dict[str, Any]:
    """Poll the job until it ends; the server runs on this very loop, so sleep, never block."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job: dict[str, Any] = await get(fetch, f"jobs/{job_id}")
        if job["state"] != "running":
            return job
        await asyncio.sleep(0.1)
    raise AssertionError(f"job {job_id} still running after {timeout} s: {job}")


def cli(root: Path, *args: str) -> Any:
    done = subprocess.run(
        [NBOPS, *args, "--format", "json"], cwd=root, capture_output=True, text=True, check=False
    )
    return json.loads(done.stdout)


def test_the_package_points_jupyter_at_the_extension() -> None:
    assert nbops._jupyter_server_extension_points() == [{"module": "nbops.lab.server"}]


# lineage and diagnostics


async def test_lineage_of_a_saved_notebook_is_what_the_cli_prints(jp_fetch: Fetch, root: Path):
    lineage = await get(jp_fetch, "lineage", path="model.ipynb")

    assert lineage == cli(root, "lineage", "model.ipynb")
    assert [s["name"] for s in lineage["steps"]] == ["load", "fit"]


async def test_lineage_of_a_notebook_in_a_folder_names_its_api_path(jp_fetch: Fetch, root: Path):
    write(root / "sub" / "deeper.ipynb", MODEL)

    lineage = await get(jp_fetch, "lineage", path="sub/../sub/deeper.ipynb")

    assert lineage["notebook"]["path"] == "sub/deeper.ipynb"


async def test_lineage_of_unsaved_content_shows_the_edits(jp_fetch: Fetch, root: Path):
    edited = notebook_json([*MODEL[:3], ("doubled = scale * 2", ["step:double"]), *MODEL[3:]])

    lineage = await post(jp_fetch, "lineage", {"notebook": edited, "path": "model.ipynb"})

    assert [s["name"] for s in lineage["steps"]] == ["load", "fit", "double"]
    assert {"source": "fit", "target": "double", "artifacts": ["scale"], "kind": "data"} in (
        lineage["edges"]
    )
    assert lineage["notebook"]["path"] == "model.ipynb"


async def test_check_answers_the_diagnostics_of_the_lineage(jp_fetch: Fetch, root: Path):
    write(root / "typo.ipynb", [("x = 1", ["step:a"]), ("y = X + 1", ["step:b"])])

    diagnostics = await get(jp_fetch, "check", path="typo.ipynb")

    assert diagnostics == (await get(jp_fetch, "lineage", path="typo.ipynb"))["diagnostics"]
    assert diagnostics == cli(root, "check", "typo.ipynb")
    errors = [d for d in diagnostics if d["severity"] == "error"]
    assert [(d["cell_index"], d["line"]) for d in errors] == [(1, 1)]
    assert "'X' is read" in errors[0]["message"]


@pytest.mark.parametrize(
    ("params", "status", "message"),
    [
        ({}, 400, "the query parameter 'path' is missing. Add ?path=..."),
        ({"path": "nope.ipynb"}, 404, "nope.ipynb: no such notebook file."),
        ({"path": "sub"}, 404, "sub: is a folder, not a notebook."),
        ({"path": "broken.ipynb"}, 422, "broken.ipynb: is not valid JSON (line 1, column 2"),
    ],
)
async def test_lineage_errors_are_json_with_a_message(
    jp_fetch: Fetch, root: Path, params: dict[str, str], status: int, message: str
):
    (root / "sub").mkdir()
    (root / "broken.ipynb").write_text("{oops")

    code, body = await refused(jp_fetch("nbops", "api", "lineage", params=params))

    assert code == status
    assert body["message"].startswith(message)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{oops", "the body is not JSON. Send a JSON object."),
        (b"[1]", "the body is not a JSON object. Send a JSON object."),
        (b'{"notebook": "text"}', "'notebook' must be the notebook's JSON."),
        (b'{"notebook": {"cells": []}}', "untitled.ipynb: is JSON but not a Jupyter notebook"),
    ],
)
async def test_posting_a_bad_body_is_refused(jp_fetch: Fetch, root: Path, body: bytes, message):
    code, reply = await refused(jp_fetch("nbops", "api", "lineage", method="POST", body=body))

    assert code in (400, 422)
    assert reply["message"].startswith(message)


# paths: everything resolves inside the root folder


@pytest.fixture
def outside(root: Path) -> Path:
    """A notebook next to the root folder, not inside it."""
    return write(root.parent / "outside.ipynb", MODEL)


def traversals(root: Path, outside: Path) -> list[str]:
    (root / "link.ipynb").symlink_to(outside)
    (root / "linked").symlink_to(outside.parent, target_is_directory=True)
    write(root / ".hidden" / "secret.ipynb", MODEL)
    return [
        "../outside.ipynb",
        "sub/../../outside.ipynb",
        str(outside),
        "/outside.ipynb",
        "link.ipynb",
        "linked/outside.ipynb",
        ".hidden/secret.ipynb",
    ]


async def test_paths_outside_the_root_are_refused(jp_fetch: Fetch, root: Path, outside: Path):
    for path in traversals(root, outside):
        for route, method, body in (
            ("lineage", "GET", None),
            ("check", "GET", None),
            ("deployments", "POST", {"path": path}),
            ("runs", "POST", {"path": path}),
            ("deployments/model/challenger", "GET", None),
        ):
            key = "notebook" if route.endswith("challenger") else "path"
            query = {key: path} if method == "GET" else {}
            data = json.dumps(body) if body else None
            request = jp_fetch("nbops", "api", route, method=method, params=query, body=data)
            code, reply = await refused(request)
            assert code == 403, (route, path, reply)
            assert (
                "Give the notebook's path relative to the folder Jupyter serves"
                in (reply["message"])
            )
    assert not (root / ".nbops").exists()  # nothing ran


# authentication and authorization

MODEL_PATH = {"path": "model.ipynb"}
ROUTES: list[tuple[str, dict[str, str], str, Any]] = [
    ("lineage", MODEL_PATH, "GET", None),
    ("lineage", {}, "POST", {"notebook": notebook_json(MODEL)}),
    ("check", MODEL_PATH, "GET", None),
    ("deployments", {}, "GET", None),
    ("deployments", {}, "POST", MODEL_PATH),
    ("deployments/model/rollback", {}, "POST", {}),
    ("deployments/model/stop", {}, "POST", {}),
    ("deployments/model/challenger", {"notebook": "model.ipynb"}, "GET", None),
    ("runs", {}, "POST", MODEL_PATH),
    ("exporters", {}, "GET", None),
    ("exports", {}, "POST", {"path": "model.ipynb", "to": "kfp", "store": "s3://b/p"}),
    ("jobs", {}, "GET", None),
    ("jobs/0123abcd", {}, "GET", None),
]


@pytest.mark.parametrize("token", ["", "token wrong"])
async def test_every_route_refuses_requests_without_the_token(
    jp_fetch: Fetch, root: Path, token: str
):
    for route, params, method, body in ROUTES:
        request = jp_fetch(
            f"nbops/api/{route}",
            params=params,
            method=method,
            body=json.dumps(body) if body is not None else None,
            headers={"Authorization": token},
        )
        code, reply = await refused(request)
        assert code == 403, (route, method, reply)
    assert not (root / ".nbops").exists()


async def test_a_post_with_a_login_cookie_needs_the_xsrf_token(
    jp_fetch: Fetch, jp_serverapp: Any, root: Path
):
    cookies = await login(jp_fetch, jp_serverapp.identity_provider.token)
    cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
    anonymous = {"Authorization": ""}
    request = jp_fetch(
        "nbops/api/runs",
        method="POST",
        body=json.dumps({"path": "nope.ipynb"}),
        headers={**anonymous, "Cookie": cookie},
    )
    code, reply = await refused(request)
    assert (code, reply["message"]) == (403, "'_xsrf' argument missing from POST")

    with_xsrf = {**anonymous, "Cookie": cookie, "X-XSRFToken": cookies["_xsrf"]}
    request = jp_fetch(
        "nbops/api/runs", method="POST", body=json.dumps({"path": "nope.ipynb"}), headers=with_xsrf
    )
    code, reply = await refused(request)
    assert (code, reply["message"]) == (
        404,
        "nope.ipynb: no such notebook file. "
        "Check the path; it is relative to the folder Jupyter serves.",
    )


async def login(fetch: Fetch, token: str) -> dict[str, str]:
    """Log in as a browser does, with the token as the password; returns the cookies."""
    page = await fetch("login", headers={"Authorization": ""})
    cookies = parse_cookies(page.headers.get_list("Set-Cookie"))
    form = urlencode({"password": token, "_xsrf": cookies["_xsrf"]})
    cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
    with pytest.raises(HTTPClientError) as redirect:  # 302 to the application
        await fetch(
            "login",
            method="POST",
            body=form,
            headers={"Authorization": "", "Cookie": cookie},
            follow_redirects=False,
        )
    assert redirect.value.response is not None
    return cookies | parse_cookies(redirect.value.response.headers.get_list("Set-Cookie"))


def parse_cookies(headers: list[str]) -> dict[str, str]:
    return dict(header.split(";", 1)[0].split("=", 1) for header in headers)


class RefuseToRunCode(Authorizer):  # type: ignore[misc]
    """A user who may read, but not execute code: a read-only JupyterHub role, say."""

    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        return action != "execute"


class TestAuthorization:
    @pytest.fixture
    def jp_server_config(self) -> Config:
        return Config(
            {
                "ServerApp": {
                    "jpserver_extensions": {"nbops": True},
                    "authorizer_class": RefuseToRunCode,
                }
            }
        )

    async def test_what_runs_code_needs_the_execute_permission(self, jp_fetch: Fetch, root: Path):
        assert (await get(jp_fetch, "lineage", path="model.ipynb"))["steps"]
        assert await get(jp_fetch, "deployments") == []
        for route, body in (
            ("deployments", {"path": "model.ipynb"}),
            ("runs", {"path": "model.ipynb"}),
            ("exports", {"path": "model.ipynb", "to": "kfp", "store": "s3://b/p"}),
            ("deployments/model/rollback", {}),
            ("deployments/model/stop", {}),
        ):
            request = jp_fetch("nbops", "api", route, method="POST", body=json.dumps(body))
            code, reply = await refused(request)
            assert code == 403
            assert reply["message"] == "User is not authorized to execute on resource: kernels."


# runs


async def test_a_run_job_reports_each_step_and_ends_with_the_run_record(
    jp_fetch: Fetch, root: Path
):
    started = await post(jp_fetch, "runs", {"path": "model.ipynb", "parameters": {"factor": 3}})
    job = await finished(jp_fetch, started["job_id"])

    assert job["state"] == "succeeded", job
    assert (job["kind"], job["target"], job["error"]) == ("run", "model.ipynb", None)
    assert [(s["name"], s["state"]) for s in job["stages"]] == [
        ("load", "succeeded"),
        ("fit", "succeeded"),
    ]
    assert job["step"] == {"index": 2, "total": 2, "name": "fit", "state": "ran"}
    assert job["result"]["metrics"] == {"total": 27.0}
    assert job["result"]["parameters"] == {"factor": 3}
    assert cli(root, "runs")[0]["run_id"] == job["result"]["run_id"]  # the CLI's state db
    assert await get(jp_fetch, "jobs") == [job]


async def test_a_failing_step_fails_the_job_with_the_cell_and_traceback(
    jp_fetch: Fetch, root: Path
):
    write(root / "fails.ipynb", [("x = 1", ["step:a"]), ("y = x / 0", ["step:b"])])

    job = await finished(
        jp_fetch, (await post(jp_fetch, "runs", {"path": "fails.ipynb"}))["job_id"]
    )

    assert job["state"] == "failed"
    assert job["error"].startswith(
        "fails.ipynb cell 1 [step:b] line 1: ZeroDivisionError: division by zero"
    )
    assert [(s["name"], s["state"]) for s in job["stages"]] == [("a", "succeeded"), ("b", "failed")]
    assert job["result"]["status"] == "failed"
    assert "    y = x / 0" in job["log"]


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({}, 400, "'path' must be a non-empty string."),
        ({"path": "model.ipynb", "parameters": {"nope": 1}}, 400, "there is no parameter 'nope'."),
        ({"path": "model.ipynb", "parameters": {"factor": "x"}}, 400, "-p factor"),
        ({"path": "model.ipynb", "parameters": [1]}, 400, "parameters must be a JSON object"),
        ({"path": "errors.ipynb"}, 400, "errors.ipynb cell 0 [step:a] line 1: 'nope' is read"),
    ],
)
async def test_a_run_that_cannot_start_is_refused_at_once(
    jp_fetch: Fetch, root: Path, body: dict[str, Any], status: int, message: str
):
    write(root / "errors.ipynb", [("x = nope", ["step:a"])])

    code, reply = await refused(
        jp_fetch("nbops", "api", "runs", method="POST", body=json.dumps(body))
    )

    assert code == status
    assert message in reply["message"]
    assert await get(jp_fetch, "jobs") == []


async def test_unknown_jobs_and_deployments_are_404(jp_fetch: Fetch, root: Path):
    for route in ("deployments/nope/rollback", "deployments/nope/stop"):
        code, reply = await refused(jp_fetch("nbops", "api", route, method="POST", body="{}"))
        assert (code, reply["message"]) == (
            404,
            "nothing named 'nope' was ever deployed. `nbops status` lists them.",
        )
    code, reply = await refused(jp_fetch("nbops", "api", "jobs", "0123abcd"))
    assert (code, reply["error"]) == (404, "JobNotFound")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"name": "../escape"}, "'../escape' cannot name a deployment."),
        ({"name": "a/b"}, "'a/b' cannot name a deployment."),
        ({"port": 70000}, "70000 is not a port number. Use one from 1 to 65535."),
        ({"port": "8000"}, "'port' must be a whole number."),
    ],
)
async def test_a_deploy_target_that_cannot_be_is_refused(
    jp_fetch: Fetch, root: Path, extra: dict[str, Any], message: str
):
    body = json.dumps({"path": "model.ipynb", **extra})
    code, reply = await refused(jp_fetch("nbops", "api", "deployments", method="POST", body=body))

    assert code == 400
    assert reply["message"].startswith(message)
    assert await get(jp_fetch, "jobs") == []


# deployments: real processes, stopped at the end


@pytest.fixture
def stopped_afterwards(root: Path) -> Iterator[None]:
    yield
    from nbops.deploy import local as deploy

    for row in deploy.status(home=Home(root / ".nbops")):
        if row["status"] == "healthy":
            deploy.stop(row["name"], home=Home(root / ".nbops"))


@pytest.mark.slow
async def test_deploy_status_rollback_and_stop(
    jp_fetch: Fetch, root: Path, stopped_afterwards: None
):
    port = free_port()
    first = await deploy(jp_fetch, {"path": "model.ipynb", "name": "model", "port": port})

    assert [s["name"] for s in first["stages"]] == [
        "building", "snapshot", "starting", "ready", "smoke", "promoting", "healthy",
    ]  # fmt: skip
    assert {s["state"] for s in first["stages"]} == {"succeeded"}
    assert first["step"] == {"index": 2, "total": 2, "name": "fit", "state": "ran"}
    assert first["result"]["url"] == f"http://127.0.0.1:{port}"
    assert first["result"]["started_by"].endswith(" via jupyter")
    assert first["result"]["metrics"] == {"total": 18.0}

    second = await deploy(jp_fetch, {"path": "model.ipynb", "parameters": {"factor": 3}})
    assert (second["result"]["version"], second["result"]["metrics"]) == (2, {"total": 27.0})

    listed = await get(jp_fetch, "deployments")
    status = cli(root, "status")  # the CLI, run in the root folder, sees the same state
    assert [stable(row) for row in listed] == [stable(row) for row in status]
    assert listed[0]["metrics"] == {"total": 27.0}
    assert [(v["version"], v["status"]) for v in listed[0]["history"]] == [
        (1, "stopped"),
        (2, "healthy"),
    ]
    assert listed[0]["history"][0]["metrics"] == {"total": 18.0}

    started = await post(jp_fetch, "deployments/model/rollback", {"to": 1})
    rolled_back = await finished(jp_fetch, started["job_id"])
    assert (rolled_back["kind"], rolled_back["state"]) == ("rollback", "succeeded"), rolled_back
    assert (rolled_back["result"]["version"], rolled_back["result"]["current"]) == (1, True)

    stopped = await post(jp_fetch, "deployments/model/stop", {})
    assert (stopped["version"], stopped["status"]) == (1, "stopped")
    assert cli(root, "status")[0]["status"] == "stopped"


def stable(row: dict[str, Any]) -> dict[str, Any]:
    """A status row without what changes between two checks, or only the API adds."""
    volatile = {"checked_at", "uptime_s", "requests", "history", "metrics", "updated_at"}
    return {key: value for key, value in row.items() if key not in volatile}


async def deploy(fetch: Fetch, body: dict[str, Any]) -> dict[str, Any]:
    response = await fetch("nbops", "api", "deployments", method="POST", body=json.dumps(body))
    assert response.code == 202
    job = await finished(fetch, json.loads(response.body)["job_id"])
    assert (job["kind"], job["state"], job["error"]) == ("deploy", "succeeded", None), job
    assert job["result"]["status"] == "healthy"
    return job


def test_the_installed_server_config_enables_the_extension() -> None:
    """What `pip install` puts in etc/jupyter (the wheel's shared data) turns the extension on,
    as `jupyter server extension list` reads it."""
    from jupyter_server.extension.config import ExtensionConfigManager
    from jupyter_server.extension.manager import ExtensionPackage

    config = Path(__file__).resolve().parents[2] / "jupyter-config" / "server-config"
    assert json.loads((config / "nbops.json").read_text()) == {
        "ServerApp": {"jpserver_extensions": {"nbops": True}}
    }
    installed = ExtensionConfigManager(read_config_path=[str(Path(sys.prefix, "etc", "jupyter"))])
    assert installed.enabled("nbops")
    assert ExtensionPackage(name="nbops", enabled=True).validate()
