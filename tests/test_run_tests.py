"""`nbops run` runs each step's test cells after it, as build and test do, and fails on one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from builders import notebook_json, pipeline

from nbops.errors import StepFailed
from nbops.run.home import Home
from nbops.run.runner import cell_output_path, run_pipeline

NBOPS = str(Path(sys.executable).parent / "nbops")


def cells(check: str) -> list[Any]:
    return [
        ("numbers = [1, 2, 3]", ["step:load"]),
        (check, ["test"]),
        ("total = sum(numbers)", ["step:add"]),
        ("total", ["metrics"]),
    ]


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return Home(tmp_path / ".nbops")


def test_a_failing_test_cell_fails_the_run_with_its_cell_and_line(home: Home) -> None:
    with pytest.raises(StepFailed) as failure:
        run_pipeline(pipeline(cells("n = len(numbers)\nassert n == 4, n")), home=home)
    assert failure.value.render() == (
        "nb.ipynb cell 1 [test] line 2: AssertionError: 3 "
        "Fix the cell and run again: steps before it are cached. "
        f"(log: {home.log_dir(home.db().runs()[0].run_id)}/test-load.log)"
    )
    (record,) = home.db().runs()
    assert record.status == "failed"
    assert [s.status for s in record.steps] == ["ran", "not-run"]  # the run stops there


def test_tests_can_be_left_out(home: Home) -> None:
    record = run_pipeline(pipeline(cells("assert len(numbers) == 4")), home=home, tests=False)
    assert record.status == "succeeded"
    assert record.metrics == {"total": 6.0}


def test_a_passing_test_runs_again_only_when_what_it_reads_or_its_code_changes(
    home: Home,
) -> None:
    first = run_pipeline(pipeline(cells("print('checked')\nassert numbers")), home=home)
    test_cell = pipeline(cells("assert numbers")).tests[0].cells[0]
    assert cell_output_path(home.log_dir(first.run_id), test_cell).read_text() == "checked\n"
    second = run_pipeline(pipeline(cells("print('checked')\nassert numbers")), home=home)
    assert not cell_output_path(home.log_dir(second.run_id), test_cell).exists()
    third = run_pipeline(pipeline(cells("print('again')\nassert numbers")), home=home)
    assert cell_output_path(home.log_dir(third.run_id), test_cell).read_text() == "again\n"


def test_the_command_line_exits_1_and_names_the_test_cell(tmp_path: Path) -> None:
    notebook = tmp_path / "nb.ipynb"
    notebook.write_text(json.dumps(notebook_json(cells("assert len(numbers) == 4"))))
    env = {**os.environ, "NBOPS_HOME": str(tmp_path / ".nbops")}
    done = subprocess.run(
        [NBOPS, "run", str(notebook)], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 1
    assert "error: nb.ipynb cell 1 [test] line 1: AssertionError" in done.stderr
    skipped = subprocess.run(
        [NBOPS, "run", str(notebook), "--no-tests"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert skipped.returncode == 0, skipped.stderr
