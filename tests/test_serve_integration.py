"""`nbops serve` for real: the churn example built, its service run by uvicorn on a loopback
port, and everything a client and an operator see checked over HTTP."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from servers import NBOPS, Server, build, metric, serving

from nbops.model.notebook import load_notebook
from nbops.run.store import ArtifactStore

pytestmark = pytest.mark.slow

CHURN = Path(__file__).resolve().parent.parent / "example_notebooks" / "churn.ipynb"
API_KEY = "s3cret-key"
MAX_BODY = 64 * 1024
CUSTOMERS = [
    {"tenure_months": 3, "monthly_charges": 95.5, "support_calls": 4, "contract": "monthly"},
    {"tenure_months": 60, "monthly_charges": 20.0, "support_calls": 0, "contract": "two_year"},
    {"tenure_months": 14, "monthly_charges": 70.25, "support_calls": 1, "contract": "annual"},
]


@pytest.fixture(scope="module")
def churn(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("churn")
    out = root / "build" / "churn"
    return build(CHURN, out, root / ".nbops", "n_rows=800", "n_estimators=10")


@pytest.fixture(scope="module")
def server(churn: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    logs = tmp_path_factory.mktemp("logs")
    with serving(churn, logs, NBOPS_API_KEY=API_KEY, NBOPS_MAX_BODY_BYTES=str(MAX_BODY)) as s:
        yield s


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers={"X-API-Key": API_KEY}, timeout=30) as c:
        yield c


def notebook_predict(build_dir: Path) -> Any:
    """`predict` as the notebook defines it: the setup and serve cells run here, on the
    artifacts of the run the build came from."""
    notebook = load_notebook(CHURN)
    manifest = json.loads((build_dir / "nbops.json").read_text())
    endpoint = next(e for e in manifest["endpoints"] if e["name"] == "predict")
    store = ArtifactStore(build_dir / "artifacts")
    namespace: dict[str, Any] = {
        name: store.get(manifest["artifacts"][key]["sha256"], manifest["artifacts"][key]["format"])
        for name, key in endpoint["artifacts"].items()
    }
    for index in (4, 22):  # the setup cell, the serve cell
        exec(notebook.cells[index].source, namespace)
    return namespace["predict"]


def test_predict_over_http_gives_what_the_notebook_function_gives(
    client: httpx.Client, churn: Path
) -> None:
    predict = notebook_predict(churn)
    for customer in CUSTOMERS:
        response = client.post("/predict", json={"features": customer})
        assert response.status_code == 200, response.text
        assert response.json() == {"result": predict(customer)}


def test_the_batch_route_agrees_with_single_calls(client: httpx.Client) -> None:
    singles = [client.post("/predict", json={"features": c}).json()["result"] for c in CUSTOMERS]
    batch = client.post("/predict/batch", json=[{"features": c} for c in CUSTOMERS])
    assert batch.status_code == 200, batch.text
    assert batch.json() == {"results": singles, "errors": []}
    assert client.post("/predict/batch", json=[]).json() == {"results": [], "errors": []}


def test_a_request_the_function_raises_on_fails_alone_in_its_batch(
    client: httpx.Client, server: Server
) -> None:
    requests = [{"features": CUSTOMERS[0]}, {"features": {}}, {"features": CUSTOMERS[1]}]
    batch = client.post("/predict/batch", json=requests)
    assert batch.status_code == 207, batch.text
    single = [client.post("/predict", json=r).json()["result"] for r in (requests[0], requests[2])]
    assert batch.json() == {
        "results": [single[0], None, single[1]],
        "errors": [{"index": 1, "detail": "internal error"}],
    }
    request_id = batch.headers["X-Request-ID"]
    [logged] = server.logged(request_id=request_id, level="ERROR")
    assert logged["message"] == (
        "the serve function of /predict raised on request 1 of the batch: KeyError: 'tenure_months'"
    )
    assert logged["index"] == 1


def test_the_api_key_is_checked_before_the_body_is_read(server: Server) -> None:
    anonymous = httpx.Client(base_url=server.url, timeout=30)
    json_type = {"Content-Type": "application/json"}
    for route in ("/predict", "/predict/batch"):
        malformed = anonymous.post(route, content=b"{not json", headers=json_type)
        assert malformed.status_code == 401, malformed.text
        assert malformed.json() == {"detail": "a valid X-API-Key header is required"}
    keyed = anonymous.post(
        "/predict", content=b"{not json", headers={**json_type, "X-API-Key": API_KEY}
    )
    assert keyed.status_code == 422


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_refused_with_422_and_counted(
    client: httpx.Client, literal: str
) -> None:
    labels = {"route": "/predict", "method": "POST", "status": "422"}
    before = metric(client.get("/metrics").text, "nbops_http_requests_total", **labels)
    customer = json.dumps(CUSTOMERS[0]).replace("95.5", literal)
    assert literal in customer
    response = client.post(
        "/predict",
        content=f'{{"features": {customer}}}'.encode(),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    [problem] = response.json()["detail"]
    assert problem["type"] == "json_invalid"
    assert problem["ctx"] == {"error": f"{literal} is not a JSON number; send a finite number"}
    after = metric(client.get("/metrics").text, "nbops_http_requests_total", **labels)
    assert after == before + 1


def test_every_error_answer_is_counted_by_its_status(server: Server) -> None:
    """401, 413, 422 and 500 each show in nbops_http_requests_total, 500s from a serve function
    also in nbops_function_errors_total."""
    anonymous = httpx.Client(base_url=server.url, timeout=30)
    keyed = httpx.Client(base_url=server.url, timeout=30, headers={"X-API-Key": API_KEY})

    def counts() -> dict[str, float]:
        text = anonymous.get("/metrics").text
        found = {
            status: metric(text, "nbops_http_requests_total", route="/predict", status=status)
            for status in ("401", "413", "422", "500")
        }
        return {**found, "function": metric(text, "nbops_function_errors_total", route="/predict")}

    before = counts()
    anonymous.post("/predict", json={"features": CUSTOMERS[0]})
    keyed.post("/predict", json={"features": {"padding": "x" * MAX_BODY}})
    keyed.post("/predict", json={"features": 3})
    keyed.post("/predict", json={"features": {}})
    after = counts()
    assert {key: after[key] - before[key] for key in after} == {
        "401": 1,
        "413": 1,
        "422": 1,
        "500": 1,
        "function": 1,
    }


def test_invalid_input_gets_422_naming_the_field(client: httpx.Client) -> None:
    wrong_type = client.post("/predict", json={"features": [1, 2]})
    assert wrong_type.status_code == 422
    assert [e["loc"] for e in wrong_type.json()["detail"]] == [["body", "features"]]
    misspelt = client.post("/predict", json={"feature": CUSTOMERS[0]})
    assert misspelt.status_code == 422
    assert sorted(e["loc"][-1] for e in misspelt.json()["detail"]) == ["feature", "features"]
    in_batch = client.post("/predict/batch", json=[{"features": CUSTOMERS[0]}, {"features": 3}])
    assert [e["loc"] for e in in_batch.json()["detail"]] == [["body", 1, "features"]]
    not_json = client.post("/predict", content=b"{", headers={"Content-Type": "application/json"})
    assert not_json.status_code == 422


def test_an_oversize_body_gets_413_whether_its_length_is_declared_or_streamed(
    client: httpx.Client,
) -> None:
    padding = {"padding": "x" * MAX_BODY}
    declared = client.post("/predict", json={"features": {**CUSTOMERS[0], **padding}})
    assert declared.status_code == 413
    assert "NBOPS_MAX_BODY_BYTES" in declared.json()["detail"]
    body = json.dumps({"features": {**CUSTOMERS[0], **padding}}).encode()
    chunks = (body[i : i + 4096] for i in range(0, len(body), 4096))  # no Content-Length
    streamed = client.post("/predict", content=chunks, headers={"Content-Type": "application/json"})
    assert streamed.status_code == 413
    assert client.post("/predict", json={"features": CUSTOMERS[0]}).status_code == 200


def test_the_api_key_is_needed_everywhere_but_health_and_metrics(server: Server) -> None:
    anonymous = httpx.Client(base_url=server.url, timeout=30)
    for path in ("/healthz", "/readyz", "/metrics"):
        assert anonymous.get(path).status_code == 200, path
    missing = anonymous.post("/predict", json={"features": CUSTOMERS[0]})
    assert missing.status_code == 401
    assert missing.json() == {"detail": "a valid X-API-Key header is required"}
    wrong = anonymous.post(
        "/predict", json={"features": CUSTOMERS[0]}, headers={"X-API-Key": "not-it"}
    )
    assert wrong.status_code == 401
    assert anonymous.get("/version").status_code == 401
    assert anonymous.post("/predict/batch", json=[]).status_code == 401


def test_metrics_count_the_requests_and_name_the_build(client: httpx.Client, churn: Path) -> None:
    labels = {"route": "/predict", "method": "POST", "status": "200"}
    before = metric(client.get("/metrics").text, "nbops_http_requests_total", **labels)
    for customer in CUSTOMERS:
        client.post("/predict", json={"features": customer})
    text = client.get("/metrics").text
    assert metric(text, "nbops_http_requests_total", **labels) == before + 3
    count = "nbops_http_request_duration_seconds_count"
    assert metric(text, count, route="/predict", method="POST") >= before + 3
    assert metric(text, "nbops_ready") == 1
    manifest = json.loads((churn / "nbops.json").read_text())
    build_id, run_id = manifest["build_id"], manifest["run_id"]
    assert metric(text, "nbops_build_info", build_id=build_id, run_id=run_id) == 1


def test_version_names_the_notebook_cells_each_route_came_from(
    client: httpx.Client, churn: Path
) -> None:
    version = client.get("/version").json()
    manifest = json.loads((churn / "nbops.json").read_text())
    assert version["endpoints"] == [
        {
            "name": "predict",
            "route": "predict",
            "cells": [{"index": 22, "id": "churn-22"}, {"index": 26, "id": "churn-26"}],
            "artifacts": {"feature_columns": "features.feature_columns", "model": "train.model"},
        },
        {
            "name": "predict_many",
            "route": "predict_batch",
            "cells": [{"index": 28, "id": "churn-28"}, {"index": 29, "id": "churn-29"}],
            "artifacts": {"feature_columns": "features.feature_columns", "model": "train.model"},
        },
    ]
    assert version["notebook"]["sha256"] == load_notebook(CHURN).sha256
    assert (version["build_id"], version["run_id"]) == (manifest["build_id"], manifest["run_id"])
    model = manifest["artifacts"]["train.model"]["sha256"]
    assert version["artifacts"]["train.model"]["sha256"] == model
    train = next(step for step in version["steps"] if step["name"] == "train")
    assert train["cells"] == [{"index": 11, "id": "churn-11"}]


def test_an_exception_in_the_function_is_a_500_with_an_id_and_a_logged_traceback(
    client: httpx.Client, server: Server
) -> None:
    response = client.post("/predict", json={"features": {}})  # no columns: a KeyError
    assert response.status_code == 500
    request_id = response.json()["request_id"]
    assert response.json() == {"detail": "internal error", "request_id": request_id}
    assert response.headers["X-Request-ID"] == request_id
    [logged] = server.logged(request_id=request_id, level="ERROR")
    assert logged["message"] == "the serve function of /predict raised: KeyError: 'tenure_months'"
    assert 'endpoints.py", line' in logged["traceback"]
    assert "Traceback" not in response.text


def test_logs_are_json_lines_with_each_request_and_its_id(
    client: httpx.Client, server: Server
) -> None:
    response = client.post(
        "/predict", json={"features": CUSTOMERS[0]}, headers={"X-Request-ID": "caller-id-1"}
    )
    assert response.headers["X-Request-ID"] == "caller-id-1"
    [access] = server.logged(request_id="caller-id-1")
    log = server.log()  # raises if a line is not JSON
    assert {k: access[k] for k in ("method", "route", "status")} == {
        "method": "POST",
        "route": "/predict",
        "status": 200,
    }
    assert any(e["message"] == "ready: artifacts loaded and checked" for e in log)
    assert server.stdout.read_text().startswith("serving churn (build ")


def test_a_tampered_artifact_keeps_the_service_up_but_never_ready(
    churn: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "churn"
    shutil.copytree(churn, copy)
    entry = json.loads((copy / "nbops.json").read_text())["artifacts"]["train.model"]
    model = copy / entry["file"]
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    with serving(copy, tmp_path / "logs") as server:
        ready = httpx.get(f"{server.url}/readyz")
        assert ready.status_code == 503
        reason = ready.json()["reason"]
        assert reason.startswith("artifact train.model was altered: ")
        assert entry["sha256"] in reason
        predict = httpx.post(f"{server.url}/predict", json={"features": CUSTOMERS[0]})
        assert predict.status_code == 503
        assert predict.json() == {"detail": f"the service is not ready: {reason}"}
        assert httpx.get(f"{server.url}/healthz").status_code == 200
        assert metric(httpx.get(f"{server.url}/metrics").text, "nbops_ready") == 0


def test_serve_refuses_a_folder_that_is_not_a_build(tmp_path: Path) -> None:
    missing = subprocess.run(
        [NBOPS, "serve", str(tmp_path / "nope")], capture_output=True, text=True
    )
    assert missing.returncode == 2
    assert "is not a folder" in missing.stderr
    empty = subprocess.run([NBOPS, "serve", str(tmp_path)], capture_output=True, text=True)
    assert empty.returncode == 2
    assert "has no nbops.json, so it is not an nbops build." in empty.stderr
