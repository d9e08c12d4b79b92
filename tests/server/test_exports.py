"""Exports from the REST API: GET /nbops/api/exporters, POST /nbops/api/exports."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_server import MODEL, Fetch, finished, get, post, refused, write
from traitlets.config import Config

from nbops.build import exporters
from nbops.build.exporters.kfp import KfpExporter
from nbops.lab.server.jobs import shutdown_all

STORE = "s3://bucket/prefix"


@pytest.fixture
def jp_server_config() -> Config:
    return Config({"ServerApp": {"jpserver_extensions": {"nbops": True}}})


@pytest.fixture
def root(jp_root_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.delenv("NBOPS_HOME", raising=False)
    monkeypatch.chdir(jp_root_dir)
    write(jp_root_dir / "sub" / "model.ipynb", MODEL)
    yield jp_root_dir
    shutdown_all(timeout=10)  # no job's process outlives its test


async def refusal(fetch: Fetch, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    return await refused(fetch("nbops", "api", "exports", method="POST", body=json.dumps(body)))


async def test_the_exporters_are_listed_with_whether_they_can_be_used(jp_fetch: Fetch, root: Path):
    listed = {e["name"]: e for e in await get(jp_fetch, "exporters")}

    assert listed["kfp"] == {
        "name": "kfp",
        "description": "the Kubeflow Pipelines SDK (kfp 2.x)",
        "extra": "kfp",
        "available": True,
        "reason": None,
    }
    airflow = listed["airflow"]
    assert airflow["available"] is (airflow["reason"] is None)
    if not airflow["available"]:  # its module is being written: listed, with the reason
        assert airflow["reason"]


@pytest.mark.slow
async def test_a_kfp_export_is_written_next_to_the_notebook(jp_fetch: Fetch, root: Path):
    started = await post(
        jp_fetch, "exports", {"path": "sub/model.ipynb", "to": "kfp", "store": STORE}
    )
    job = await finished(jp_fetch, started["job_id"])

    assert job["state"] == "succeeded", job
    assert (job["kind"], job["target"], job["error"]) == ("export", "sub/model.ipynb", None)
    assert [s["name"] for s in job["stages"]] == ["building", "exporting"]
    result = job["result"]
    assert result["paths"] == ["sub/model.kfp.yaml"]
    assert (result["exporter"], result["build"], result["image_placeholder"]) == (
        "kfp",
        "build/model",
        True,
    )
    assert result["image"].startswith("<registry>/model:")
    spec = yaml.safe_load((root / "sub" / "model.kfp.yaml").read_text())
    assert sorted(spec["root"]["dag"]["tasks"]) == ["fit", "load", "metrics"]
    assert STORE in json.dumps(spec)


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (
            {"path": "sub/model.ipynb", "to": "kfp"},
            422,
            "a Kubeflow pipeline needs --store: each task runs in a pod of its own, so the "
            "artifacts must live where every pod can read and write them. "
            "Pass a bucket, e.g. --store s3://bucket/prefix.",
        ),
        (
            {"path": "sub/model.ipynb", "to": "kfp", "store": "here"},
            422,
            "--store here is a local folder, which the pods of a Kubeflow pipeline do not "
            "share. Pass a bucket, e.g. --store s3://bucket/prefix.",
        ),
        (
            {"path": "errors.ipynb", "to": "kfp", "store": STORE},
            400,
            "errors.ipynb cell 0 [step:a] line 1: 'nope' is read but",
        ),
        (
            {"path": "nope.ipynb", "to": "kfp", "store": STORE},
            404,
            "nope.ipynb: no such notebook file. "
            "Check the path; it is relative to the folder Jupyter serves.",
        ),
        (
            {"path": "sub/model.ipynb", "to": "argo"},
            400,
            "--to 'argo' names no installed exporter.",
        ),
        ({"path": "sub/model.ipynb"}, 400, "'to' must be a non-empty string."),
    ],
)
async def test_an_export_that_cannot_be_made_is_refused_at_once(
    jp_fetch: Fetch, root: Path, body: dict[str, Any], status: int, message: str
):
    write(root / "errors.ipynb", [("x = nope", ["step:a"])])

    code, reply = await refusal(jp_fetch, body)

    assert code == status, reply
    assert reply["message"].startswith(message)
    assert await get(jp_fetch, "jobs") == []
    assert not (root / "sub" / "model.kfp.yaml").exists()


async def test_an_exporter_that_cannot_be_loaded_is_listed_and_refused(
    jp_fetch: Fetch, root: Path, monkeypatch: pytest.MonkeyPatch
):
    broken = exporters.UnloadableExporter("argo", "nbops_argo:Argo", "No module named 'nbops_argo'")
    monkeypatch.setattr(exporters, "installed", lambda: {"argo": broken, "kfp": KfpExporter()})

    listed = await get(jp_fetch, "exporters")
    code, reply = await refusal(jp_fetch, {"path": "sub/model.ipynb", "to": "argo"})

    assert listed[0] == {
        "name": "argo",
        "description": "cannot be loaded (nbops_argo:Argo: No module named 'nbops_argo')",
        "extra": None,
        "available": False,
        "reason": "cannot be loaded (nbops_argo:Argo: No module named 'nbops_argo')",
    }
    assert (code, reply["error"]) == (422, "ExporterUnavailable")
    assert reply["message"] == (
        "the argo exporter cannot be loaded (nbops_argo:Argo: No module named 'nbops_argo'). "
        "Reinstall the package that provides it."
    )
