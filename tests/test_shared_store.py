"""A store shared on S3 (a real moto server on loopback, behind s3fs): runs from different
working directories, and on different executors, share every cached step; an object changed
in the bucket is caught, recomputed and named."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import s3fs
from builders import notebook_json

NBOPS = str(Path(sys.executable).parent / "nbops")

CELLS = [
    ("scale = 3  # multiplier", ["parameters"]),
    ("import math", ["setup"]),
    ("numbers = list(range(10))", ["step:load"]),
    ("scaled = [n * scale for n in numbers]", ["step:scale"]),
    ("total = math.fsum(scaled)", ["step:total"]),
    ("assert total > 0", ["test"]),
    ("result = float(total)", ["metrics"]),
]


def nbops_run(folder: Path, store: str, *options: str) -> dict[str, Any]:
    """`nbops run` in `folder`, with a `.nbops/` of its own there and the shared store."""
    folder.mkdir(exist_ok=True)
    (folder / "nb.ipynb").write_text(json.dumps(notebook_json(CELLS)))
    env = {**os.environ, "NBOPS_HOME": str(folder / ".nbops")}
    env.pop("NBOPS_STORE", None)
    done = subprocess.run(
        [NBOPS, "run", "nb.ipynb", "--store", store, "--format", "json", *options],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def statuses(record: dict[str, Any]) -> list[str]:
    return [step["status"] for step in record["steps"]]


def test_a_second_working_directory_finds_every_step_cached(
    s3_store_url: str, tmp_path: Path
) -> None:
    first = nbops_run(tmp_path / "alice", s3_store_url)
    assert statuses(first) == ["ran", "ran", "ran"]
    second = nbops_run(tmp_path / "bob", s3_store_url)
    assert statuses(second) == ["cached", "cached", "cached"]
    assert second["metrics"] == first["metrics"] == {"result": 135.0}
    assert not (tmp_path / "bob" / ".nbops" / "artifacts").exists()  # objects live in S3


def test_an_object_changed_in_the_bucket_is_recomputed_with_a_warning(
    s3_store_url: str, tmp_path: Path
) -> None:
    first = nbops_run(tmp_path / "alice", s3_store_url)
    digest = first["steps"][1]["outputs"]["scaled"]
    bucket_path = s3_store_url.removeprefix("s3://")
    fs = s3fs.S3FileSystem(endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    (key,) = fs.glob(f"{bucket_path}/{digest[:2]}/{digest}.*")
    fs.pipe_file(key, b"not what was stored")
    second = nbops_run(tmp_path / "bob", s3_store_url)
    assert statuses(second) == ["cached", "ran", "cached"]
    assert second["steps"][1]["note"] == (
        "re-ran: the stored scale.scaled was missing or did not match its sha256"
    )
    assert second["steps"][1]["outputs"]["scaled"] == digest
    assert fs.cat_file(key) != b"not what was stored"  # written again whole


@pytest.mark.slow
def test_a_dask_run_takes_the_steps_a_local_run_cached(s3_store_url: str, tmp_path: Path) -> None:
    nbops_run(tmp_path / "laptop", s3_store_url, "--executor", "process")
    later = nbops_run(tmp_path / "cluster", s3_store_url, "--executor", "dask", "--jobs", "2")
    assert statuses(later) == ["cached", "cached", "cached"]
    forced = nbops_run(
        tmp_path / "cluster", s3_store_url, "--executor", "dask", "--jobs", "2", "--force"
    )
    assert statuses(forced) == ["ran", "ran", "ran"]
    assert [s["outputs"] for s in forced["steps"]] == [s["outputs"] for s in later["steps"]]
