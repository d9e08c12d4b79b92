"""The sidebar's progress while steps run side by side: every running step is named."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from builders import notebook_json
from lab_session import Lab
from test_sidebar import open_notebook, open_sidebar, wait_for_graph

from nbops.run.executors import default_jobs

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(default_jobs() < 2, reason="two steps at once need two cores"),
]

BRANCH = "import time\ntime.sleep(30)\n{name} = scale + 1"
BRANCHES = [
    ("scale = 2", ["step:load"]),
    (BRANCH.format(name="left"), ["step:b1"]),
    (BRANCH.format(name="right"), ["step:b2"]),
    ("def predict(x: float) -> float:\n    '''Scale x.'''\n    return x * scale", ["serve"]),
]


def test_the_progress_names_both_branches_while_they_run(
    page: Any, lab: Lab, artifacts: Path
) -> None:
    (lab.root / "branches.ipynb").write_text(json.dumps(notebook_json(BRANCHES)))
    open_notebook(page, lab, "branches.ipynb")
    sidebar = open_sidebar(page)
    wait_for_graph(page, "step:b1", "step:b2")
    sidebar.get_by_test_id("nbops-deploy").click()

    page.wait_for_function(
        """() => document.querySelector('[data-testid="nbops-deploy-status"]')
            ?.textContent === 'running step 2 of 3: b1 · step 3 of 3: b2'""",
        timeout=60_000,
    )
    sidebar.screenshot(path=str(artifacts / "sidebar-running-steps.png"))

    sidebar.get_by_test_id("nbops-cancel").click()  # no need to wait out the branches
    page.wait_for_selector('[data-testid="nbops-deploy-status"][data-phase="cancelled"]')
    status = sidebar.get_by_test_id("nbops-deploy-status").inner_text()
    assert status == "cancelled while steps 'b1' and 'b2' ran."
