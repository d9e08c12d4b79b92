"""`nbops build`, for real: generated package, bundled artifacts, passing tests, manifest, swap."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from builders import notebook_json

from nbops.build.builder import BuildFailed, build, check_build
from nbops.model.analysis import analyse
from nbops.model.notebook import load_notebook
from nbops.run.home import Home

CHURN = Path(__file__).parent.parent / "example_notebooks" / "churn.ipynb"
NBOPS = str(Path(sys.executable).parent / "nbops")
PYTHON_M_PIPELINE = (sys.executable, "-m", "pipeline", "--json")

SMALL = [
    ("factor = 3  # multiplier", ["parameters"]),
    ("import statistics", ["setup"]),
    ("values = [1.0, 2.0, 4.0]", ["step:load"]),
    ("scaled = [v * factor for v in values]", ["step:scale"]),
    ("assert len(scaled) == 3", ["test"]),
    ("mean = statistics.fmean(scaled)", ["metrics"]),
    ("def predict(x: float) -> float:\n    return x * max(scaled)", ["serve"]),
]


def write(tmp_path: Path, cells: list, name: str = "small.ipynb") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(notebook_json(cells)))
    return path


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return Home(tmp_path / ".nbops")


def test_a_build_holds_code_artifacts_tests_report_and_manifest(tmp_path: Path, home: Home) -> None:
    out = tmp_path / "build" / "small"
    result = build(analyse(load_notebook(write(tmp_path, SMALL))), out=out, home=home)
    manifest = json.loads((out / "nbops.json").read_text())
    assert manifest == result.manifest
    assert manifest["run_id"] == result.run.run_id  # type: ignore[union-attr]
    assert manifest["metrics"] == {"mean": pytest.approx(7.0)}
    assert manifest["endpoints"] == [
        {
            "name": "predict",
            "route": "predict",
            "cells": [{"index": 6, "id": "c6"}],
            "artifacts": {"scaled": "scale.scaled"},
            "batch": False,
            "example": None,
            "example_cell": None,
        }
    ]
    entry = manifest["artifacts"]["scale.scaled"]
    bundled = out / entry["file"]
    assert hashlib.sha256(bundled.read_bytes()).hexdigest() == entry["sha256"]
    assert "6 passed in" in result.tests_output  # the test cell, and the service's smoke tests
    assert (out / "pipeline" / "steps" / "scale.py").is_file()
    assert "mean" in (out / "report.html").read_text()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no staging left


def test_a_failed_build_leaves_the_previous_build_untouched(tmp_path: Path, home: Home) -> None:
    out = tmp_path / "build" / "small"
    build(analyse(load_notebook(write(tmp_path, SMALL))), out=out, home=home)
    before = (out / "nbops.json").read_bytes()
    failing = [*SMALL[:4], ("assert len(scaled) == 4, 'three values, not four'", ["test"])]
    with pytest.raises(BuildFailed) as failure:
        build(analyse(load_notebook(write(tmp_path, failing))), out=out, home=home)
    assert "three values, not four" in failure.value.details
    assert (out / "nbops.json").read_bytes() == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["small"]


def test_check_finds_a_build_out_of_date_with_its_notebook(tmp_path: Path, home: Home) -> None:
    out = tmp_path / "build" / "small"
    build(analyse(load_notebook(write(tmp_path, SMALL))), out=out, home=home)
    assert check_build(analyse(load_notebook(tmp_path / "small.ipynb")), out) == []
    changed = [
        *SMALL[:3],
        ("scaled = [v * factor * 2 for v in values]", ["step:scale"]),
        *SMALL[4:],
    ]
    stale = check_build(analyse(load_notebook(write(tmp_path, changed))), out)
    assert stale == [
        "nbops.json (built from another version of the notebook)",
        str(out / "pipeline" / "steps" / "scale.py"),
    ]


def test_build_check_command_exits_1_when_stale(tmp_path: Path) -> None:
    notebook = write(tmp_path, SMALL)
    env = {**os.environ, "NBOPS_HOME": str(tmp_path / ".nbops")}
    out = str(tmp_path / "b")
    subprocess.run([NBOPS, "build", str(notebook), "-o", out], check=True, env=env, cwd=tmp_path)
    fresh = subprocess.run(
        [NBOPS, "build", str(notebook), "-o", out, "--check"], capture_output=True, text=True
    )
    assert (fresh.returncode, fresh.stdout.strip()) == (0, f"{out}: up to date")
    write(tmp_path, [*SMALL[:2], ("values = [5.0]", ["step:load"]), *SMALL[3:]])
    stale = subprocess.run(
        [NBOPS, "build", str(notebook), "-o", out, "--check"], capture_output=True, text=True
    )
    assert stale.returncode == 1
    assert stale.stdout.splitlines()[-1] == f"{out}: out of date"


def test_python_m_pipeline_in_the_build_reproduces_the_runs_artifact_hashes(
    tmp_path: Path, home: Home
) -> None:
    out = tmp_path / "build" / "churn"
    # Built by the command, in a process of its own as the package runs in one: what earlier
    # tests left in this process (imported libraries, thread pools) must not be in the hashes.
    env = {**os.environ, "NBOPS_HOME": str(home.root)}
    built = subprocess.run(
        [NBOPS, "build", str(CHURN), "-o", str(out), "-p", "n_rows=600", "-p", "n_estimators=8"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    (run,) = home.db().runs(str(CHURN.resolve()), limit=1)
    store = ["--store", str(tmp_path / "store")]
    done = subprocess.run(
        [*PYTHON_M_PIPELINE, "--param", "n_rows=600", "--param", "n_estimators=8", *store],
        cwd=out,
        capture_output=True,
        text=True,
        check=True,
    )
    reproduced = json.loads(done.stdout)["steps"]
    for step in run.steps:
        for name, stored in step.outputs.items():
            assert reproduced[step.name][name] == stored.sha256, f"{step.name}.{name}"


SERVED_AND_TESTED = [
    ("rows = list(range(10))", ["step:load"]),
    ("train_rows, test_rows = rows[:8], rows[8:]\nlimit = max(train_rows)", ["step:split"]),
    ("assert len(test_rows) == 2 and rows[0] == 0", ["test"]),
    ("def predict(x: int) -> bool:\n    return x <= limit", ["serve"]),
]


def test_the_service_ships_only_the_artifacts_it_reads(tmp_path: Path, home: Home) -> None:
    out = tmp_path / "build" / "split"
    notebook = write(tmp_path, SERVED_AND_TESTED, "split.ipynb")
    result = build(analyse(load_notebook(notebook)), out=out, home=home)
    manifest = json.loads((out / "nbops.json").read_text())
    assert sorted(manifest["artifacts"]) == ["split.limit"]
    shipped = sorted(p.relative_to(out).as_posix() for p in (out / "artifacts").rglob("*.*"))
    assert shipped == [manifest["artifacts"]["split.limit"]["file"]]
    # What only the tests read stays with the tests, out of the image's build context.
    index = json.loads((out / "tests" / "artifacts.json").read_text())
    assert sorted(index) == ["load.rows", "split.limit", "split.test_rows"]
    for key in ("load.rows", "split.test_rows"):
        entry = index[key]
        stored = out / "tests" / "artifacts" / entry["sha256"][:2]
        assert (stored / f"{entry['sha256']}.{entry['format']}").is_file()
    assert " passed in " in result.tests_output and "failed" not in result.tests_output
    dockerfile = (out / "Dockerfile").read_text()
    assert "COPY artifacts/ artifacts/\n" in dockerfile
    assert "tests/\n" in (out / ".dockerignore").read_text().splitlines(keepends=True)
    assert check_build(analyse(load_notebook(notebook)), out) == []
