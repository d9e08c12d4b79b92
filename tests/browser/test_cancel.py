"""The sidebar's Cancel button: a deploy stuck in an endless loop is cancelled from the browser,
and the Jupyter server goes on serving the page."""

from __future__ import annotations

import json
from typing import Any

import pytest
from builders import notebook_json
from lab_session import Lab
from test_sidebar import open_notebook, open_sidebar, wait_for_graph

pytestmark = pytest.mark.slow

SPINS = [
    ("scale = 2", ["step:load"]),
    ("while True:\n    pass", ["step:spin"]),
    ("def predict(x: float) -> float:\n    '''Scale x.'''\n    return x * scale", ["serve"]),
]


def test_cancel_stops_a_deploy_that_never_ends(page: Any, lab: Lab) -> None:
    (lab.root / "spins.ipynb").write_text(json.dumps(notebook_json(SPINS)))
    open_notebook(page, lab, "spins.ipynb")
    sidebar = open_sidebar(page)
    wait_for_graph(page, "step:spin")
    sidebar.get_by_test_id("nbops-deploy").click()
    status = sidebar.get_by_test_id("nbops-deploy-status")
    page.wait_for_function(
        """() => document.querySelector('[data-testid="nbops-deploy-status"]')
            ?.textContent === 'running step 2 of 2: spin'""",
        timeout=60_000,
    )

    sidebar.get_by_test_id("nbops-cancel").click()

    page.wait_for_selector('[data-testid="nbops-deploy-status"][data-phase="cancelled"]')
    assert status.inner_text() == "cancelled while step 'spin' ran."
    assert sidebar.get_by_test_id("nbops-cancel").count() == 0
    assert not sidebar.get_by_test_id("nbops-deploy").is_disabled()  # a new deploy may start
    page.wait_for_selector('[data-testid="nbops-service"][data-status="failed"]')
