"""The sidebar's Export menu: a Kubeflow Pipelines YAML written next to the notebook from the
browser, with the store URL asked for; an exporter the server cannot use greyed out."""

from __future__ import annotations

import json
from typing import Any

import pytest
from builders import notebook_json
from lab_session import Lab
from test_sidebar import open_notebook, open_sidebar, wait_for_graph

from nbops.build.exporters import installed
from nbops.build.exporters.exporting import unavailable_reason

pytestmark = pytest.mark.slow

SMALL = [
    ("factor = 2", ["parameters"]),
    ("values = [1, 2, 3]", ["step:load"]),
    ("scale = factor * max(values)", ["step:fit"]),
]


def test_a_kfp_export_asks_for_the_store_and_shows_the_written_path(page: Any, lab: Lab) -> None:
    (lab.root / "small.ipynb").write_text(json.dumps(notebook_json(SMALL)))
    open_notebook(page, lab, "small.ipynb")
    sidebar = open_sidebar(page)
    wait_for_graph(page, "step:fit")

    sidebar.get_by_test_id("nbops-export-menu").click()
    kfp = sidebar.get_by_test_id("nbops-export-kfp")
    airflow = sidebar.get_by_test_id("nbops-export-airflow")
    assert kfp.inner_text() == "Kubeflow Pipelines YAML…"
    assert airflow.inner_text() == "Airflow DAG"
    reason = unavailable_reason(installed()["airflow"])
    assert airflow.is_disabled() is (reason is not None)
    if reason is not None:
        assert airflow.get_attribute("title") == reason

    kfp.click()
    go = sidebar.get_by_test_id("nbops-export-go")
    store = sidebar.get_by_test_id("nbops-export-store")
    store.fill("")
    assert go.is_disabled()
    store.fill("/tmp/store")
    assert go.is_disabled()  # a local folder: the pods share none
    store.fill("s3://bucket/prefix")
    go.click()

    page.wait_for_selector(
        '[data-testid="nbops-export-status"][data-phase="written"]', timeout=120_000
    )
    assert "small.kfp.yaml" in sidebar.get_by_test_id("nbops-export-status").inner_text()
    assert (lab.root / "small.kfp.yaml").is_file()

    sidebar.get_by_test_id("nbops-export-menu").click()
    sidebar.get_by_test_id("nbops-export-kfp").click()
    assert sidebar.get_by_test_id("nbops-export-store").input_value() == "s3://bucket/prefix"
