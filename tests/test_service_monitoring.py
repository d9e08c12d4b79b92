"""Monitoring in the generated service: each route's window of recent requests, its drift from
the build's reference profile, error rate and latency, on /monitoring and /metrics. Real
services on loopback, fed bounded streams of requests."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from builders import notebook_json
from servers import Server, build, metric, serving

from nbops.model.notebook import load_notebook

pytestmark = pytest.mark.slow

CHURN = Path(__file__).resolve().parent.parent / "example_notebooks" / "churn.ipynb"
N_ROWS, SEED = 600, 42  # the parameters of the build below; SEED is the notebook's default
STREAM = 300
INPUTS = ["tenure_months", "monthly_charges", "support_calls", "contract"]
# Scores every request: the tests read /monitoring right after their stream.
NOW = {"NBOPS_MONITOR_INTERVAL_SECONDS": "0"}

FLAKY = [
    ("rows = [{'x': float(i)} for i in range(200)]", ["step:load"]),
    (
        "def predict(x: float) -> float:\n"
        "    if x < 0:\n"
        "        raise ValueError('x must not be negative')\n"
        "    return x * 2",
        ["serve:predict", "reference=rows"],
    ),
    ("predict(3.0)", ["example"]),
]


@pytest.fixture(scope="module")
def churn(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("churn")
    out = root / "build" / "churn"
    return build(CHURN, out, root / ".nbops", f"n_rows={N_ROWS}", "n_estimators=8")


@pytest.fixture(scope="module")
def customers() -> list[dict[str, Any]]:
    """The reference rows, made again by the notebook's own setup and load cells."""
    notebook = load_notebook(CHURN)
    namespace: dict[str, Any] = {"n_rows": N_ROWS, "seed": SEED}
    for index in (4, 6):  # the setup cell, the load step
        exec(notebook.cells[index].source, namespace)
    rows: list[dict[str, Any]] = namespace["customers"][INPUTS].to_dict(orient="records")
    return [{k: v.item() if hasattr(v, "item") else v for k, v in row.items()} for row in rows]


def stream(customers: list[dict[str, Any]], scale: float = 1.0) -> list[dict[str, Any]]:
    """STREAM rows sampled (seeded) from the reference, monthly_charges times `scale`."""
    picked = np.random.default_rng(7).choice(len(customers), size=STREAM, replace=True)
    rows = [dict(customers[int(i)]) for i in picked]
    for row in rows:
        row["monthly_charges"] = round(row["monthly_charges"] * scale, 2)
    return rows


def send(server: Server, rows: list[dict[str, Any]]) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for row in rows:
            response = client.post("/predict", json={"features": row})
            assert response.status_code == 200, response.text


def monitoring(server: Server) -> dict[str, Any]:
    response = httpx.get(f"{server.url}/monitoring", timeout=30)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def route(report: dict[str, Any]) -> dict[str, Any]:
    """The per-request route's scores (churn serves /predict_batch too)."""
    (predict,) = [r for r in report["routes"] if r["route"] == "predict"]
    return predict


def by_name(fields: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {f["name"]: f for f in fields}


# drift


def test_requests_like_the_reference_rows_flag_nothing(
    churn: Path, customers: list[dict[str, Any]], tmp_path: Path
) -> None:
    with serving(churn, tmp_path, **NOW) as server:
        send(server, stream(customers))
        report = monitoring(server)

    assert report["enabled"] is True
    assert report["window"] == {"max_requests": 1000, "max_seconds": 900, "min_requests": 100}
    assert report["max_drift"] == 0.25
    scores = route(report)
    assert (scores["requests"], scores["errors"], scores["error_rate"]) == (STREAM, 0, 0.0)
    assert (scores["reference"], scores["reason"]) == ("load.customers", None)
    assert scores["flagged"] == []
    assert scores["drift"] is not None and scores["drift"] < 0.25
    assert scores["output_drift"] is not None and scores["output_drift"] < 0.25
    inputs = by_name(scores["inputs"])
    assert list(inputs) == INPUTS
    assert [f["name"] for f in scores["outputs"]] == ["churn_probability", "churn"]
    charges = inputs["monthly_charges"]
    assert charges["kind"] == "numeric" and len(charges["edges"]) == 11
    assert charges["categories"] is None
    assert charges["window_count"] == STREAM and charges["window_missing_rate"] == 0.0
    assert abs(sum(charges["window_shares"]) - 1) < 1e-5
    assert 0 < charges["p_value"] <= 1
    assert inputs["contract"]["categories"] == ["monthly", "annual", "two_year", "__other__"]
    assert inputs["contract"]["edges"] is None
    latency = scores["latency_ms"]
    assert 0 < latency["p50"] <= latency["p90"] <= latency["p99"]


def test_tripled_monthly_charges_flag_that_field_and_the_output_and_no_other(
    churn: Path, customers: list[dict[str, Any]], tmp_path: Path
) -> None:
    with serving(churn, tmp_path, **NOW) as server:
        send(server, stream(customers, scale=3.0))
        report = monitoring(server)
        exposed = httpx.get(f"{server.url}/metrics", timeout=30).text

    scores = route(report)
    inputs, outputs = by_name(scores["inputs"]), by_name(scores["outputs"])
    assert [name for name, f in inputs.items() if f["flagged"]] == ["monthly_charges"]
    assert outputs["churn_probability"]["flagged"] is True
    assert scores["flagged"][0] == "monthly_charges"
    assert "churn_probability" in scores["flagged"]
    assert not set(scores["flagged"]) & (set(INPUTS) - {"monthly_charges"})
    assert scores["drift"] == inputs["monthly_charges"]["psi"] > 0.25
    assert inputs["monthly_charges"]["p_value"] < 0.001
    # The gauges say what /monitoring says (the same report: it is worked out per read here,
    # and nothing was sent in between).
    assert metric(exposed, "nbops_window_requests", route="predict") == STREAM
    assert metric(exposed, "nbops_window_error_rate", route="predict") == 0.0
    for name, field in inputs.items():
        drift = metric(exposed, "nbops_feature_drift", route="predict", feature=name)
        assert drift == pytest.approx(field["psi"])
    for name, field in outputs.items():
        drift = metric(exposed, "nbops_output_drift", route="predict", output=name)
        assert drift == pytest.approx(field["psi"])
    p99 = metric(exposed, "nbops_window_latency_seconds", route="predict", quantile="0.99")
    assert p99 == pytest.approx(scores["latency_ms"]["p99"] / 1000)


def test_a_batch_counts_each_of_its_requests_into_the_drift(
    churn: Path, customers: list[dict[str, Any]], tmp_path: Path
) -> None:
    rows = stream(customers)[:150]
    with serving(churn, tmp_path, **NOW) as server:
        answered = httpx.post(
            f"{server.url}/predict/batch", json=[{"features": r} for r in rows], timeout=60
        )
        report = monitoring(server)

    assert answered.status_code == 200, answered.text
    scores = route(report)
    assert scores["requests"] == 1  # one HTTP request, whose latency is left out
    assert scores["error_rate"] is None and scores["latency_ms"]["p50"] is None
    assert by_name(scores["inputs"])["tenure_months"]["window_count"] == 150
    assert scores["drift"] is not None and scores["flagged"] == []


# the window


def test_fewer_requests_than_the_minimum_give_null_scores(
    churn: Path, customers: list[dict[str, Any]], tmp_path: Path
) -> None:
    with serving(churn, tmp_path, **NOW) as server:
        send(server, stream(customers)[:10])
        scores = route(monitoring(server))
        exposed = httpx.get(f"{server.url}/metrics", timeout=30).text

    assert (scores["requests"], scores["errors"]) == (10, 0)
    assert (scores["drift"], scores["output_drift"], scores["error_rate"]) == (None, None, None)
    assert scores["latency_ms"] == {"p50": None, "p90": None, "p99": None}
    assert scores["flagged"] == []
    for field in scores["inputs"] + scores["outputs"]:
        assert (field["psi"], field["p_value"], field["window_missing_rate"]) == (None, None, None)
        assert field["window_count"] == 10 and field["flagged"] is False
    assert metric(exposed, "nbops_window_requests", route="predict") == 10
    assert "nbops_feature_drift{" not in exposed


def test_the_window_keeps_at_most_its_count_of_requests(
    churn: Path, customers: list[dict[str, Any]], tmp_path: Path
) -> None:
    env = {**NOW, "NBOPS_MONITOR_WINDOW": "50", "NBOPS_MONITOR_MIN_REQUESTS": "20"}
    with serving(churn, tmp_path, **env) as server:
        send(server, stream(customers)[:80])
        scores = route(monitoring(server))

    assert scores["requests"] == 50
    assert all(f["window_count"] == 50 for f in scores["inputs"] + scores["outputs"])
    assert scores["drift"] is not None


def test_the_window_forgets_requests_older_than_its_age(
    churn: Path, customers: list[dict[str, Any]], tmp_path: Path
) -> None:
    env = {**NOW, "NBOPS_MONITOR_WINDOW_SECONDS": "1"}
    with serving(churn, tmp_path, **env) as server:
        send(server, stream(customers)[:5])
        fresh = route(monitoring(server))["requests"]
        time.sleep(1.2)
        scores = route(monitoring(server))

    assert fresh == 5
    assert scores["requests"] == 0
    assert all(f["window_count"] == 0 for f in scores["inputs"] + scores["outputs"])


def test_scores_are_kept_for_the_interval(
    churn: Path, customers: list[dict[str, Any]], tmp_path: Path
) -> None:
    with serving(churn, tmp_path, NBOPS_MONITOR_INTERVAL_SECONDS="600") as server:
        first = monitoring(server)
        send(server, stream(customers)[:3])
        second = monitoring(server)

    assert first == second
    assert route(second)["requests"] == 0


# errors


@pytest.fixture(scope="module")
def flaky(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A service whose function raises on negative inputs, with a reference of its own."""
    root = tmp_path_factory.mktemp("flaky")
    notebook = root / "flaky.ipynb"
    notebook.write_text(json.dumps(notebook_json(FLAKY)))
    return build(notebook, root / "build" / "flaky", root / ".nbops")


def test_errors_count_in_the_error_rate_and_not_in_the_drift(flaky: Path, tmp_path: Path) -> None:
    values = [-1.0 if i % 5 == 0 else float(i % 200) for i in range(100)]
    env = {**NOW, "NBOPS_MONITOR_MIN_REQUESTS": "50"}
    with serving(flaky, tmp_path, **env) as server:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            statuses = [client.post("/predict", json={"x": x}).status_code for x in values]
        scores = route(monitoring(server))

    assert statuses.count(500) == 20 and statuses.count(200) == 80
    assert (scores["requests"], scores["errors"], scores["error_rate"]) == (100, 20, 0.2)
    assert scores["reference"] == "load.rows"
    (x,) = scores["inputs"]
    assert (x["name"], x["window_count"], x["window_missing_rate"]) == ("x", 80, 0.0)
    assert [f["name"] for f in scores["outputs"]] == ["output"]
    assert x["psi"] is not None


# when drift is not watched


def test_an_altered_profile_is_served_with_drift_off_and_the_reason(
    churn: Path, customers: list[dict[str, Any]], tmp_path: Path
) -> None:
    copy = tmp_path / "churn"
    shutil.copytree(churn, copy)
    profile = copy / "profile-predict.json"
    profile.write_text(profile.read_text().replace('"rows": 600', '"rows": 601'))
    with serving(copy, tmp_path / "logs", **NOW) as server:
        send(server, stream(customers)[:120])
        scores = route(monitoring(server))

    assert scores["reference"] == "load.customers"
    assert scores["reason"].startswith(
        f"the reference profile {profile} was altered: its sha256 is"
    )
    assert (scores["drift"], scores["output_drift"], scores["inputs"]) == (None, None, [])
    assert (scores["requests"], scores["error_rate"]) == (120, 0.0)


def test_a_missing_profile_is_served_with_drift_off_and_the_reason(
    churn: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "churn"
    shutil.copytree(churn, copy)
    (copy / "profile-predict.json").unlink()
    with serving(copy, tmp_path / "logs", **NOW) as server:
        answered = httpx.post(
            f"{server.url}/predict",
            json={
                "features": {
                    "tenure_months": 3,
                    "monthly_charges": 95.5,
                    "support_calls": 4,
                    "contract": "monthly",
                }
            },
            timeout=30,
        )
        scores = route(monitoring(server))

    assert answered.status_code == 200
    assert scores["reason"] == (
        f"the reference profile {copy / 'profile-predict.json'} cannot be read "
        "(No such file or directory)"
    )


def test_monitoring_off_records_nothing(
    churn: Path, customers: list[dict[str, Any]], tmp_path: Path
) -> None:
    with serving(churn, tmp_path, NBOPS_MONITORING="false", **NOW) as server:
        send(server, stream(customers)[:5])
        report = monitoring(server)
        exposed = httpx.get(f"{server.url}/metrics", timeout=30).text

    assert (report["enabled"], report["routes"]) == (False, [])
    assert "nbops_window_requests{" not in exposed


def test_monitoring_is_documented_and_needs_no_api_key(churn: Path, tmp_path: Path) -> None:
    with serving(churn, tmp_path, NBOPS_API_KEY="k3y") as server:
        unkeyed = httpx.get(f"{server.url}/monitoring", timeout=30)
        schema = httpx.get(f"{server.url}/openapi.json", headers={"X-API-Key": "k3y"}).json()

    assert unkeyed.status_code == 200
    answer = schema["paths"]["/monitoring"]["get"]["responses"]["200"]["content"]
    assert answer["application/json"]["schema"] == {"$ref": "#/components/schemas/Monitoring"}
    assert {"RouteMonitoring", "FieldDrift"} <= set(schema["components"]["schemas"])
