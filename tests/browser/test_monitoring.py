"""The deployment panel watching a deployment in a real JupyterLab: drift per field against the
build's reference, then a new version that fails a fifth of its requests, watched and rolled
back by itself while a client keeps calling, which the panel and a notification announce; the
version that came back is then degraded by the drift in its window."""

from __future__ import annotations

import json
import math
import random
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from lab_session import Lab, free_port
from test_sidebar import open_notebook, open_sidebar, switch_theme, widen_sidebar

pytestmark = pytest.mark.slow

SMALL = ("-p", "n_rows=600", "-p", "n_estimators=8")
CONTRACTS = ("monthly", "annual", "two_year")
FLAKY = (
    '    if int(features["tenure_months"]) % 5 == 0:  # a fifth of customers; not the example\n'
    '        raise ValueError("flaky on purpose")\n'
)


def customer(rng: random.Random, charges_factor: float = 1.0) -> dict[str, Any]:
    """A row as the churn notebook's load step makes them, its charges scaled."""
    charges = round(min(max(rng.gauss(70, 25), 18), 120), 2)
    return {
        "tenure_months": rng.randint(1, 72),
        "monthly_charges": round(charges * charges_factor, 2),
        "support_calls": poisson(rng, 1.5),
        "contract": rng.choices(CONTRACTS, weights=(0.55, 0.25, 0.20))[0],
    }


def poisson(rng: random.Random, mean: float) -> int:
    limit, k, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        k += 1
        product *= rng.random()
    return k


def predict(url: str, features: dict[str, Any]) -> tuple[int, str | None]:
    """The status of one prediction through the stable URL, and which version answered."""
    request = urllib.request.Request(
        f"{url}/predict",
        data=json.dumps({"features": features}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers.get("X-Nbops-Version")
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("X-Nbops-Version")


def status(lab: Lab, name: str) -> dict[str, Any]:
    done = lab.nbops("status", name, "--format", "json", timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    row: dict[str, Any] = json.loads(done.stdout)[0]
    return row


def flaky_build(lab: Lab) -> Path:
    """A copy of the churn build whose function raises when tenure_months % 5 == 0."""
    source, copy = lab.root / "build" / "churn", lab.root / "build" / "churn-flaky"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(source, copy)
    endpoints = copy / "service" / "endpoints.py"
    text = endpoints.read_text()
    anchor = "    row = pd.DataFrame([features])\n"
    assert anchor in text
    endpoints.write_text(text.replace(anchor, FLAKY + anchor, 1))
    return copy


def field(page: Any, name: str, route: str = "predict") -> Any:
    """A field's chart in one route's part of the panel (churn serves /predict_batch too)."""
    return page.locator(
        f'.nbops-Route[data-route="{route}"] [data-testid="nbops-field"][data-field="{name}"]'
    )


def test_the_panel_shows_drift_and_a_rollback_the_watch_made(
    page: Any, lab: Lab, artifacts: Path
) -> None:
    port = free_port()
    lab.deployed.add("churn")
    first = lab.nbops("deploy", "churn.ipynb", *SMALL, "--watch", "0", "--port", str(port))
    assert first.returncode == 0, first.stdout + first.stderr
    url = f"http://127.0.0.1:{port}"

    rng = random.Random(14)
    answers = [predict(url, customer(rng, charges_factor=3.0)) for _ in range(300)]
    assert {code for code, _ in answers} == {200}

    open_notebook(page, lab, "churn.ipynb")
    sidebar = open_sidebar(page)
    widen_sidebar(page, 520)
    for section in ("Cell role", "Lineage"):  # folded, so the Deploy section has the room
        sidebar.locator(".jp-AccordionPanel-title", has_text=section).click()
    page.wait_for_selector('[data-testid="nbops-monitoring"]', timeout=30_000)
    page.wait_for_selector(  # scored every few seconds by the service
        '[data-testid="nbops-field"][data-field="monthly_charges"][data-flagged="true"]',
        timeout=30_000,
    )
    assert field(page, "tenure_months").get_attribute("data-flagged") == "false"
    assert "drifted" in field(page, "monthly_charges").inner_text()
    assert "drifted" not in field(page, "tenure_months").inner_text()
    assert field(page, "churn_probability").get_attribute("data-role") == "output"
    assert field(page, "monthly_charges").locator("rect.nbops-Chart-window").count() >= 2

    # A version failing a fifth of its requests, watched for 60 s; no traffic until the panel
    # shows the watch.
    bad = lab.nbops("deploy", str(flaky_build(lab)), "--name", "churn", "--watch", "60s")
    assert bad.returncode == 0, bad.stdout + bad.stderr
    page.wait_for_selector('[data-testid="nbops-watch"][data-watch="watching"]', timeout=20_000)
    assert "v1 on standby" in sidebar.get_by_test_id("nbops-watch").inner_text()

    rng = random.Random(15)
    seen: list[tuple[int, str | None]] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(seen) < 1500:
        seen.append(predict(url, customer(rng)))
        if len(seen) % 25 == 0 and status(lab, "churn")["version"] == 1:
            break
    row = status(lab, "churn")
    assert row["version"] == 1, f"not rolled back after {len(seen)} requests: {row}"
    assert any(code == 500 for code, _ in seen), "the flaky version never failed"
    reason = row["rolled_back"]["reason"]
    assert reason.startswith("rolled back by its watch: error rate "), reason

    notice = page.get_by_test_id("nbops-rollback-notice")
    notice.wait_for(timeout=20_000)
    assert notice.get_attribute("data-version") == "2"
    assert reason in notice.inner_text()
    # v1 serves again, stable, so its watch judges it: the tripled charges in its window are a
    # breach, which makes it degraded (no automatic rollback of a stable version).
    watch = sidebar.get_by_test_id("nbops-watch")
    page.wait_for_selector('[data-testid="nbops-watch"][data-watch="degraded"]', timeout=20_000)
    assert "monthly_charges" in watch.inner_text(), watch.inner_text()
    toast = page.locator(".jp-toastContainer", has_text="rolled back by its watch")
    toast.wait_for(timeout=20_000)
    assert "churn v2 rolled back by its watch" in toast.inner_text()
    # After the rollback every request is answered, by v1.
    after = [predict(url, customer(rng)) for _ in range(40)]
    assert set(after) == {(200, "1")}

    page.wait_for_selector(
        '[data-testid="nbops-field"][data-field="monthly_charges"][data-flagged="true"]',
        timeout=30_000,
    )
    page.mouse.move(0, 0)
    page.wait_for_timeout(300)
    sidebar.screenshot(path=str(artifacts / "sidebar-monitoring-light.png"))
    switch_theme(page, "JupyterLab Dark")
    try:
        sidebar.screenshot(path=str(artifacts / "sidebar-monitoring-dark.png"))
        page.screenshot(path=str(artifacts / "lab-monitoring-dark.png"))
    finally:
        switch_theme(page, "JupyterLab Light")
