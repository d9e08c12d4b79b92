"""Smoke tests of the churn service: it starts, loads and checks its artifacts, and answers.

The app runs in this process on the build's artifacts ($NBOPS_STORE when set), with no server.

Generated from churn.ipynb by nbops 0.1.0; edit the notebook, not this file.
"""

import json
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# Starlette is moving its test client from httpx to httpx2; either does here.
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "nbops.json"
RUN = Path(__file__).resolve().parent  # artifacts.json and parameters.json, of the run
# Each serve route and the notebook cells it comes from.
ROUTES = {
    "/predict": [22, 26],
    "/predict_batch": [28, 29],
}
# The request bodies of the notebook's own example calls.
EXAMPLES = {
    "/predict": '{"features": {"tenure_months": 3, "monthly_charges": 95.5, "support_calls": 4, "contract": "monthly"}}',
    "/predict_batch": '{"features": {"tenure_months": 3, "monthly_charges": 95.5, "support_calls": 4, "contract": "monthly"}}',
}

# The service imports the generated package as `pipeline`, which sits in the build's root folder.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    from service.main import create_app
    from service.settings import Settings

    store = Path(os.environ.get("NBOPS_STORE", ROOT / "artifacts"))
    manifest = MANIFEST if MANIFEST.is_file() else _run_manifest(tmp_path_factory.mktemp("run"))
    settings = Settings(api_key=None, artifacts_dir=store, manifest=manifest, log_level="WARNING")
    with TestClient(create_app(settings)) as client:
        yield client


def _run_manifest(folder: Path) -> Path:
    """nbops build runs these tests before it writes nbops.json: until then, a manifest of the
    run's artifacts and parameters stands in for it."""
    if not (RUN / "artifacts.json").is_file():
        pytest.fail(f"{MANIFEST} and {RUN / 'artifacts.json'} are missing; build again.")
    parameters = RUN / "parameters.json"
    manifest: dict[str, Any] = {
        "name": "churn",
        "build_id": "not built yet",
        "notebook": {"path": "churn.ipynb", "sha256": ""},
        "artifacts": json.loads((RUN / "artifacts.json").read_text(encoding="utf-8")),
        "parameters": json.loads(parameters.read_text()) if parameters.is_file() else {},
    }
    path = folder / "nbops.json"
    path.write_text(json.dumps(manifest), encoding="utf-8")
    return path


def test_the_service_lives_and_its_artifacts_load(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.json()


def test_each_serve_function_has_a_route_and_a_batch_route(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for route in ROUTES:
        assert "post" in paths[route], route
        assert "post" in paths[f"{route}/batch"], route


@pytest.mark.parametrize("route", list(EXAMPLES))
def test_the_notebooks_example_call_is_answered(client: TestClient, route: str) -> None:
    headers = {"Content-Type": "application/json"}
    response = client.post(route, content=EXAMPLES[route], headers=headers)
    assert response.status_code == 200, response.text


def test_a_field_no_serve_function_takes_is_refused(client: TestClient) -> None:
    for route in ROUTES:
        response = client.post(route, json={"no such argument": 1})
        assert response.status_code == 422, response.json()


def test_monitoring_watches_each_route(client: TestClient) -> None:
    report = client.get("/monitoring").json()
    assert [f"/{route['route']}" for route in report["routes"]] == list(ROUTES)


def test_version_traces_each_route_to_its_cells(client: TestClient) -> None:
    version = client.get("/version").json()
    assert version["name"] == "churn"
    cells = {f"/{e['route']}": [c["index"] for c in e["cells"]] for e in version["endpoints"]}
    assert cells == (ROUTES if MANIFEST.is_file() else {})
