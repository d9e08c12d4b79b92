"""Notebooks written Kale's and papermill's ways: checked, run and built as they come."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from builders import notebook_json
from click.testing import CliRunner, Result

from nbops.cli import cli
from nbops.model.analysis import analyse
from nbops.model.notebook import load_notebook

# Kale 1.x: `block:` names, an empty `block:` continuing the step above, `prev:`, a step name
# used again further down, bare-name metrics.
KALE_1 = [
    ("import math", ["imports"]),
    ("n = 4  # rows", ["pipeline-parameters"]),
    ("data = list(range(n))", ["block:load"]),
    ("squares = [x * x for x in data]", ["block:"]),
    ("total = sum(squares)", ["block:sum", "prev:load"]),
    ("root = math.sqrt(total)", ["block:evaluation", "prev:sum"]),
    ("half = total / 2", ["block:report", "prev:sum"]),
    ("ratio = root / total", ["block:evaluation"]),
    ("ratio\nhalf", ["pipeline-metrics"]),
]
# Kale 2.x / Kubeflow: hyphenated step names, several parents in one `prev:` tag.
KALE_2 = [
    ("import statistics", ["imports"]),
    ("def double(x):\n    return 2 * x", ["functions"]),
    ("seed = 3\nsize = 5", ["pipeline-parameters"]),
    ("raw = [seed + i for i in range(size)]", ["step:data-loading"]),
    ("features = [double(x) for x in raw]", ["step:feature-eng", "prev:data-loading"]),
    (
        "model = statistics.mean(features) + len(raw)",
        ["step:train-model", "prev:data-loading:feature-eng"],
    ),
    ("assert model > 0", ["test:train-model"]),
    ("score = model / 10", ["pipeline-metrics"]),
]
# papermill: a parameters cell with comments, a print and a value computed from a parameter.
PAPERMILL = [
    (
        "# Parameters\nalpha = 0.5  # smoothing\nepochs = 3\nprint(f'alpha={alpha}')\n"
        "steps_total = epochs * 10",
        ["parameters"],
    ),
    ("import math", ["setup"]),
    ("curve = [math.exp(-alpha * t) for t in range(steps_total)]", ["step:train-model"]),
    ("assert len(curve) == steps_total", ["test"]),
    ("final = curve[-1]", ["metrics"]),
]
# Every rule at once.
ALL_RULES = [
    ("base = 2  # the base\nprint('base is', base)\nscale = base * 10", ["parameters"]),
    ("import math", ["imports"]),
    ("raw = [base, scale]", ["block:data-loading"]),
    ("raw = raw + [1]", ["block:"]),
    ("clean = sorted(raw)", ["step:clean-up", "prev:data-loading"]),
    ("model = sum(clean) * scale", ["step:train", "prev:data-loading:clean-up"]),
    ("raw_count = len(raw)", ["step:data-loading"]),
    ("assert model > 0 and raw_count == 3", ["test:train"]),
    ("size = float(math.log(model))", ["pipeline-metrics"]),
]

CORPUS = {"kale1": KALE_1, "kale2": KALE_2, "papermill": PAPERMILL, "all_rules": ALL_RULES}

# The structure Kale documents for these notebooks: steps (title, cells) and parents.
STRUCTURE: dict[str, Any] = {
    "kale1": (
        [("load", [2, 3]), ("sum", [4]), ("evaluation", [5, 7]), ("report", [6])],
        {("load", "sum"), ("sum", "evaluation"), ("sum", "report")},
    ),
    "kale2": (
        [("data-loading", [3]), ("feature-eng", [4]), ("train-model", [5])],
        {
            ("data_loading", "feature_eng"),
            ("data_loading", "train_model"),
            ("feature_eng", "train_model"),
        },
    ),
    "papermill": ([("train-model", [2])], set()),
    "all_rules": (
        [("data-loading", [2, 3, 6]), ("clean-up", [4]), ("train", [5])],
        {("data_loading", "clean_up"), ("data_loading", "train"), ("clean_up", "train")},
    ),
}


@pytest.fixture
def nbops(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NBOPS_HOME", str(tmp_path / ".nbops"))

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(cli, list(args))

    return invoke


def write(folder: Path, name: str) -> Path:
    path = folder / f"{name}.ipynb"
    path.write_text(json.dumps(notebook_json(CORPUS[name])))
    return path


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_a_dialect_notebook_has_the_step_structure_kale_documents(
    name: str, tmp_path: Path
) -> None:
    pipeline = analyse(load_notebook(write(tmp_path, name)))
    steps, parents = STRUCTURE[name]

    assert pipeline.errors == ()
    assert [(s.display_name, [c.index for c in s.cells]) for s in pipeline.steps] == steps
    assert {(e.source, e.target) for e in pipeline.edges} == parents


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_a_dialect_notebook_checks_runs_and_builds(name: str, nbops: Any, tmp_path: Path) -> None:
    path = str(write(tmp_path, name))

    checked = nbops("check", path)
    run = nbops("run", path, "--format", "json")
    built = nbops("build", path)

    assert checked.exit_code == 0, checked.output
    assert "0 errors" in checked.output
    assert run.exit_code == 0, run.output
    assert json.loads(run.output)["status"] == "succeeded"
    assert built.exit_code == 0, built.output


def test_the_notebook_using_every_rule_reports_no_errors_and_runs(
    nbops: Any, tmp_path: Path
) -> None:
    path = str(write(tmp_path, "all_rules"))

    run = json.loads(nbops("run", path, "--format", "json").output)

    assert [s["name"] for s in run["steps"]] == ["data_loading", "clean_up", "train"]
    assert run["metrics"] == {"size": math.log((1 + 2 + 20) * 20)}
    assert (
        "base is 2"
        in (tmp_path / ".nbops").joinpath(*_setup_log(tmp_path, run["run_id"])).read_text()
    )


def _setup_log(tmp_path: Path, run_id: str) -> tuple[str, ...]:
    found = next((tmp_path / ".nbops").rglob(f"*{run_id}*/setup.log"))
    return found.relative_to(tmp_path / ".nbops").parts


def test_a_computed_value_follows_the_parameter_given_and_is_in_every_cache_key(
    nbops: Any, tmp_path: Path
) -> None:
    path = str(write(tmp_path, "papermill"))

    def run(*args: str) -> dict[str, Any]:
        result = nbops("run", path, "--format", "json", *args)
        assert result.exit_code == 0, result.output
        return dict(json.loads(result.output))

    first, again, other = run("-p", "epochs=2"), run("-p", "epochs=2"), run("-p", "epochs=1")

    assert first["metrics"] == {"final": math.exp(-0.5 * 19)}
    assert [s["status"] for s in (first["steps"][0], again["steps"][0], other["steps"][0])] == [
        "ran",
        "cached",
        "ran",
    ]
    assert other["metrics"] == {"final": math.exp(-0.5 * 9)}


def test_from_takes_the_step_name_as_written_or_its_identifier(nbops: Any, tmp_path: Path) -> None:
    path = str(write(tmp_path, "kale2"))
    nbops("run", path)

    for name in ("feature-eng", "feature_eng"):
        run = json.loads(nbops("run", path, "--from", name, "--format", "json").output)
        assert [s["status"] for s in run["steps"]] == ["cached", "ran", "ran"]


def test_the_build_runs_the_parameters_cell_code_with_the_value_given(
    nbops: Any, tmp_path: Path
) -> None:
    path = str(write(tmp_path, "papermill"))
    assert nbops("build", path).exit_code == 0

    shared = (tmp_path / "build" / "papermill" / "pipeline" / "shared.py").read_text()

    assert "from .parameters import alpha, epochs" in shared
    assert "steps_total = epochs * 10" in shared
    assert '"steps_total",' in shared


def test_nbops_test_computes_the_parameters_cell_code_from_the_value_given(
    nbops: Any, tmp_path: Path
) -> None:
    # papermill injects after the parameters cell, so `steps_total` would keep the default's
    # value; the prepared copy runs that code again after the injected values, as run does.
    path = str(write(tmp_path, "papermill"))
    tested = nbops("test", path, "-p", "epochs=2", "--format", "json")
    assert tested.exit_code == 0, tested.output
    ran = json.loads(nbops("run", path, "-p", "epochs=2", "--format", "json").output)
    assert json.loads(tested.output)["metrics"] == ran["metrics"] == {"final": math.exp(-9.5)}
