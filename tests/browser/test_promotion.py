"""Metric-gated promotion and data files in a real JupyterLab: a notebook that reads a data file
and declares its gates in its metadata; v1 (a better model) serves; the panel compares the
notebook's last run with it before Deploy is clicked, and shows the refusal, with both figures,
after; the lineage graph draws the data file as one node feeding the two steps that read it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nbformat
import pytest
from lab_session import Lab
from test_sidebar import graph_edges, open_notebook, open_sidebar, switch_theme, wait_for_graph

pytestmark = pytest.mark.slow

GATES = {"require": ["accuracy>=0.5"], "must_beat": ["accuracy"], "tolerance": 0.01}
CELLS = [
    ("quality = 0.7  # the accuracy the model reaches", ["parameters"]),
    ("rows = open('data/scores.csv').read().split()", ["step:load"]),
    (
        "header = open('data/scores.csv').readline().strip()\n"
        "model = round(quality * len(rows) / len(rows), 6)",
        ["step:fit"],
    ),
    ("accuracy = float(model)", ["metrics"]),
    ("def predict(x: float) -> float:\n    '''Scale x.'''\n    return x * model", ["serve"]),
    ("predict(3.0)", []),
]
FILE_NODE = "file:data/scores.csv"


def gated_notebook(root: Path) -> None:
    (root / "data").mkdir(exist_ok=True)
    (root / "data" / "scores.csv").write_text("score\n1\n2\n")
    nb = nbformat.v4.new_notebook()
    kernel = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["kernelspec"] = kernel
    nb.metadata["nbops"] = GATES
    for index, (source, tags) in enumerate(CELLS):
        cell = nbformat.v4.new_code_cell(source)
        cell.id = f"gated-{index}"
        if tags:
            cell.metadata["tags"] = tags
        nb.cells.append(cell)
    nbformat.write(nb, root / "gated.ipynb")


def deployment_port(lab: Lab) -> int:
    """The port the sidebar deploys to (the session's user settings)."""
    settings = lab.root.parent / "settings" / "nbops" / "plugin.jupyterlab-settings"
    port: int = json.loads(settings.read_text())["deploymentPort"]
    return port


def gate_rows(sidebar: Any, testid: str) -> list[list[str]]:
    table = sidebar.get_by_test_id(testid).get_by_test_id("nbops-gates")
    rows: list[list[str]] = table.locator("tbody tr").evaluate_all(
        "rows => rows.map(r => [...r.cells].map(c => c.textContent))"
    )
    return rows


def screenshots(page: Any, sidebar: Any, artifacts: Path, name: str) -> None:
    page.mouse.move(0, 0)
    page.wait_for_timeout(300)
    sidebar.screenshot(path=str(artifacts / f"sidebar-{name}-light.png"))
    switch_theme(page, "JupyterLab Dark")
    try:
        sidebar.screenshot(path=str(artifacts / f"sidebar-{name}-dark.png"))
    finally:
        switch_theme(page, "JupyterLab Light")


def test_the_panel_compares_before_and_shows_the_refusal_after(
    page: Any, lab: Lab, artifacts: Path
) -> None:
    gated_notebook(lab.root)
    lab.deployed.add("gated")
    port = str(deployment_port(lab))
    # v1 is a better model than the notebook makes now; the last run is the notebook's own.
    first = lab.nbops("deploy", "gated.ipynb", "-p", "quality=0.9", "--port", port, "--watch", "0")
    assert first.returncode == 0, first.stdout + first.stderr
    ran = lab.nbops("run", "gated.ipynb")
    assert ran.returncode == 0, ran.stdout + ran.stderr

    open_notebook(page, lab, "gated.ipynb")
    sidebar = open_sidebar(page)
    wait_for_graph(page, "step:load", "step:fit", FILE_NODE)
    assert {(s, t) for s, t, _ in graph_edges(page) if s == FILE_NODE} == {
        (FILE_NODE, "step:load"),
        (FILE_NODE, "step:fit"),
    }
    file_node = page.locator(f'[data-testid="nbops-node"][data-node-id="{FILE_NODE}"]')
    assert file_node.get_attribute("data-kind") == "file"
    assert file_node.locator("path.nbops-Node-fold").count() == 1
    assert "read by: load, fit" in (file_node.locator("title").text_content() or "")
    screenshots(page, sidebar.locator(".nbops-LineageView").first, artifacts, "data-files")

    # Before: v1's 0.9 against the last run's 0.7, the duel failed, the tolerance shown.
    sidebar.locator(".jp-AccordionPanel-title", has_text="Cell role").click()
    sidebar.locator(".jp-AccordionPanel-title", has_text="Lineage").click()
    comparison = page.locator('[data-testid="nbops-comparison"][data-state="refused"]')
    comparison.wait_for(timeout=30_000)
    headline = comparison.get_by_test_id("nbops-comparison-headline").inner_text()
    assert headline.startswith("v1 serves; its last run would be refused: accuracy 0.7 against"), (
        headline
    )
    assert gate_rows(sidebar, "nbops-comparison") == [
        ["accuracy", "0.9", "0.7", ">= 0.5", "✓"],
        ["accuracy", "0.9", "0.7", ">= serving - 0.01", "✗"],
    ]
    assert comparison.get_by_test_id("nbops-tolerance").inner_text() == "tolerance 0.01"
    screenshots(page, sidebar, artifacts, "gates-before")

    # Deploy: refused, with both figures; v1 still serves.
    sidebar.get_by_test_id("nbops-deploy").click()
    outcome = page.locator('[data-testid="nbops-outcome"][data-refused="true"]')
    outcome.wait_for(timeout=240_000)
    reason = (
        "refused: accuracy 0.7 against 0.9 of v1 (serving), higher is better, tolerance 0.01: "
        "worse (it was not started)"
    )
    text = outcome.get_by_test_id("nbops-outcome-text")
    assert text.inner_text() == "v2 was not started; v1 still serves"
    assert text.get_attribute("title") == reason
    status = sidebar.get_by_test_id("nbops-deploy-status")
    assert (status.get_attribute("data-phase"), status.inner_text()) == ("refused", reason)
    assert gate_rows(sidebar, "nbops-outcome")[1][:3] == ["accuracy", "0.9", "0.7"]
    assert sidebar.get_by_test_id("nbops-service-version").inner_text() == "v1"
    history = sidebar.get_by_test_id("nbops-history")
    history.locator('tr[data-version="2"]').wait_for(timeout=20_000)
    assert "refused" in history.locator('tr[data-version="2"]').inner_text()
    served = json.loads(lab.nbops("status", "gated", "--format", "json").stdout)[0]
    assert (served["version"], served["status"]) == (1, "healthy")
    screenshots(page, sidebar, artifacts, "gates-refused")
