"""`nbops runs diff A B`: two real runs of the churn example compared, and `nbops runs` with a
column per metric."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

NBOPS = str(Path(sys.executable).parent / "nbops")
CHURN = Path(__file__).resolve().parent.parent / "example_notebooks" / "churn.ipynb"
SMALL = ("-p", "n_rows=600")


def _nbops(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [NBOPS, *args],
        cwd=root,
        env={**os.environ, "NBOPS_HOME": str(root / ".nbops")},
        capture_output=True,
        text=True,
        check=False,
    )


def _run(root: Path, *args: str) -> str:
    done = _nbops(root, "run", "churn.ipynb", "--executor", "inline", "--format", "json", *args)
    assert done.returncode == 0, done.stderr
    run_id: str = json.loads(done.stdout)["run_id"]
    return run_id


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str, str]:
    """Three runs: n_estimators 8, then 16 (a parameter), then 16 with the report cell edited."""
    root = tmp_path_factory.mktemp("diff")
    (root / "churn.ipynb").write_text(CHURN.read_text())
    first = _run(root, *SMALL, "-p", "n_estimators=8")
    second = _run(root, *SMALL, "-p", "n_estimators=16")
    notebook = json.loads(CHURN.read_text())
    report = next(c for c in notebook["cells"] if "step:report" in c["metadata"].get("tags", []))
    report["source"] = "".join(report["source"]).replace("ascending=False", "ascending=True")
    (root / "churn.ipynb").write_text(json.dumps(notebook))
    third = _run(root, *SMALL, "-p", "n_estimators=16")
    return root, first, second, third


@pytest.mark.slow
def test_a_changed_parameter_shows_its_values_the_metric_deltas_and_what_ran(
    runs: tuple[Path, str, str, str],
) -> None:
    root, first, second, _ = runs
    done = _nbops(root, "runs", "diff", first, second, "--format", "json")

    assert done.returncode == 0, done.stderr
    diff = json.loads(done.stdout)
    assert diff["parameters"] == [{"name": "n_estimators", "a": 8, "b": 16}]
    assert diff["notebook_changed"] is False and diff["cells"] == []
    metrics = {m["name"]: m for m in diff["metrics"]}
    assert set(metrics) == {"test_accuracy", "test_roc_auc"}
    for metric in metrics.values():
        assert metric["delta"] == pytest.approx(metric["b"] - metric["a"])
    steps = {s["name"]: s for s in diff["steps"]}
    assert (steps["load"]["b"], steps["load"]["key_changed"]) == ("cached", False)
    assert (steps["features"]["b"], steps["features"]["key_changed"]) == ("cached", False)
    assert (steps["train"]["b"], steps["train"]["key_changed"]) == ("ran", True)
    assert [o["name"] for o in steps["train"]["outputs"]] == ["model"]
    assert diff["reran"] == ["train", "evaluate", "report"]

    text = _nbops(root, "runs", "diff", first[:15], second)
    assert text.returncode == 0, text.stderr
    shown = " ".join(re.sub("[\u2500-\u257f]", " ", text.stdout).split())  # no box lines
    assert "n_estimators 8 16" in shown
    assert "test_roc_auc" in shown and "B - A" in shown
    assert "train ran ran changed model" in shown
    assert "code cells: the same" in shown


@pytest.mark.slow
def test_an_edited_cell_is_named_and_only_its_step_reran(runs: tuple[Path, str, str, str]) -> None:
    root, _, second, third = runs
    diff = json.loads(_nbops(root, "runs", "diff", second, third, "--format", "json").stdout)

    assert diff["notebook_changed"] is True and diff["parameters"] == []
    assert [(c["index"], c["tags"], c["what"]) for c in diff["cells"]] == [
        (19, ["step:report", "after:evaluate"], "changed")
    ]
    assert diff["reran"] == ["report"]
    assert all(m["delta"] == 0 for m in diff["metrics"])


@pytest.mark.slow
def test_runs_lists_a_column_per_metric_and_an_unknown_run_is_a_clear_error(
    runs: tuple[Path, str, str, str],
) -> None:
    root, first, _, _ = runs
    listed = _nbops(root, "runs")
    header = listed.stdout.splitlines()[0].split()
    assert header[-2:] == ["test_accuracy", "test_roc_auc"]

    missing = _nbops(root, "runs", "diff", first, "nope")
    assert missing.returncode == 2
    assert "no run 'nope' is recorded" in missing.stderr and "Traceback" not in missing.stderr


def test_a_changed_data_file_is_named_on_the_step_that_read_it(tmp_path: Path) -> None:
    from builders import notebook_json

    cells = [
        ("import pandas as pd", ["setup"]),
        ("frame = pd.read_csv('data.csv')", ["step:load"]),
        ("total = float(frame['x'].sum())", ["metrics"]),
    ]
    (tmp_path / "model.ipynb").write_text(json.dumps(notebook_json(cells)))
    (tmp_path / "data.csv").write_text("x\n1\n2\n")
    run = ["run", "model.ipynb", "--executor", "inline", "--format", "json"]
    first = json.loads(_nbops(tmp_path, *run).stdout)["run_id"]
    (tmp_path / "data.csv").write_text("x\n1\n5\n")
    second = json.loads(_nbops(tmp_path, *run).stdout)["run_id"]

    diff = json.loads(_nbops(tmp_path, "runs", "diff", first, second, "--format", "json").stdout)

    (load,) = [s for s in diff["steps"] if s["name"] == "load"]
    (changed,) = load["inputs"]
    assert changed["name"] == "file data.csv" and changed["a"] != changed["b"]
    assert diff["reran"] == ["load"]
    assert [(m["name"], m["delta"]) for m in diff["metrics"]] == [("total", 3.0)]
