"""Values changed in place: seen in the code, or else caught at run time; the cache then never
serves a value that differs from what the notebook, run top to bottom, computes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from builders import notebook_json

from nbops.model.analysis import analyse
from nbops.model.notebook import load_notebook
from nbops.run.home import Home, analyse_with_runs
from nbops.run.runner import run_pipeline

NBOPS = str(Path(sys.executable).parent / "nbops")
HELPER = "def add_features(frame):\n    frame['area'] = frame['w'] * frame['h']\n"
# The notebook: a helper changing a frame, and `rng.shuffle` changing an array.
SEEN_IN_CODE = [
    ("import numpy as np\nimport pandas as pd\n\n\n" + HELPER, ["setup"]),
    ("seed = 3  # shuffles the array", ["parameters"]),
    ("df = pd.DataFrame({'w': [1.0, 2.0], 'h': [3.0, 4.0]})\narr = np.arange(10)", ["step:load"]),
    ("add_features(df)\nrng = np.random.default_rng(seed)\nrng.shuffle(arr)", ["step:mutate"]),
    ("total = float(df['area'].sum()) * 100 + float(arr[0])", ["step:report"]),
    ("total", ["metrics"]),
]
# A change no static analysis can see: a method of a notebook class that appends in place.
SEEN_WHEN_RUN = [
    ("class Collector:\n    def take(self, items):\n        items.append(99)\n", ["setup"]),
    ("values = [1, 2, 3]", ["step:load"]),
    ("collector = Collector()\ncollector.take(values)", ["step:change"]),
    ("total = sum(values)", ["step:report"]),
    ("total", ["metrics"]),
]


def write(folder: Path, cells: list[Any], name: str = "nb.ipynb") -> Path:
    path = folder / name
    path.write_text(json.dumps(notebook_json(cells)))
    return path


def nbops(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NBOPS_HOME": str(home)}
    return subprocess.run([NBOPS, *args], capture_output=True, text=True, env=env, check=False)


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return Home(tmp_path / ".nbops")


def test_a_resumed_run_gives_the_full_runs_metrics_when_the_change_is_in_the_code(
    tmp_path: Path, home: Home
) -> None:
    notebook = write(tmp_path, SEEN_IN_CODE)
    full = run_pipeline(analyse(load_notebook(notebook)), home=home)
    resumed = run_pipeline(analyse(load_notebook(notebook)), home=home, from_step="report")
    assert full.metrics == resumed.metrics == {"total": 1100.0 + full.metrics["total"] % 100}
    assert [s.status for s in resumed.steps] == ["cached", "cached", "ran"]


def test_editing_the_helper_re_runs_the_steps_that_call_it_and_those_after(
    tmp_path: Path, home: Home
) -> None:
    notebook = write(tmp_path, SEEN_IN_CODE)
    before = run_pipeline(analyse(load_notebook(notebook)), home=home)
    edited = [(SEEN_IN_CODE[0][0].replace("* frame['h']", "* frame['h'] * 2"), ["setup"])]
    write(tmp_path, edited + SEEN_IN_CODE[1:])
    after = run_pipeline(analyse(load_notebook(notebook)), home=home)
    assert after.metrics["total"] - after.metrics["total"] % 100 == 2200.0
    assert before.metrics["total"] - before.metrics["total"] % 100 == 1100.0
    assert [s.status for s in after.steps] == ["ran", "ran", "ran"]  # setup is in every key


def test_a_change_only_the_run_sees_is_passed_on_and_remembered(tmp_path: Path) -> None:
    notebook = write(tmp_path, SEEN_WHEN_RUN)
    state = tmp_path / ".nbops"
    first = nbops("run", str(notebook), "--format", "json", home=state)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["metrics"] == {"total": 105.0}
    # From now on `change` produces `values`: a resumed run reads the changed list.
    resumed = nbops("run", str(notebook), "--from", "report", "--format", "json", home=state)
    assert json.loads(resumed.stdout)["metrics"] == {"total": 105.0}
    lineage = json.loads(nbops("lineage", str(notebook), "--format", "json", home=state).stdout)
    assert [(e["source"], e["target"], e["artifacts"]) for e in lineage["edges"]] == [
        ("load", "change", ["values"]),
        ("change", "report", ["values"]),
    ]
    check = nbops("check", str(notebook), home=state)
    assert (
        "nb.ipynb cell 2 [step:change]: step 'change' changes 'values' in place (seen when it "
        "ran); later steps now read it from 'change', not 'load'." in check.stdout
    )


def test_without_what_runs_saw_the_resumed_run_would_read_the_stale_value(
    tmp_path: Path, home: Home
) -> None:
    # What `--from` would do if nothing remembered the change: the reason for remembering it.
    notebook = write(tmp_path, SEEN_WHEN_RUN)
    run_pipeline(analyse(load_notebook(notebook)), home=home)
    stale = run_pipeline(analyse(load_notebook(notebook)), home=home, from_step="report")
    assert stale.metrics == {"total": 105.0}  # the run itself still passes the change on
    assert home.observed_changes(notebook) == (("change", "values"),)
    remembered = analyse_with_runs(load_notebook(notebook), home)
    assert remembered.step("change").outputs == ("values",)
    assert remembered.producer("values", "report") == "change"


def test_a_step_that_stops_changing_its_input_is_no_longer_said_to(
    tmp_path: Path, home: Home
) -> None:
    notebook = write(tmp_path, SEEN_WHEN_RUN)
    run_pipeline(analyse_with_runs(load_notebook(notebook), home), home=home)
    fixed = [*SEEN_WHEN_RUN[:2], ("collector = Collector()", ["step:change"]), *SEEN_WHEN_RUN[3:]]
    write(tmp_path, fixed)
    record = run_pipeline(analyse(load_notebook(notebook)), home=home)
    assert record.metrics == {"total": 6.0}
    assert home.observed_changes(notebook) == ()


def test_checking_a_notebook_never_creates_the_state_db(tmp_path: Path) -> None:
    notebook = write(tmp_path, SEEN_WHEN_RUN)
    nbops("check", str(notebook), home=tmp_path / ".nbops")
    assert not (tmp_path / ".nbops").exists()


def test_a_build_after_the_run_saw_a_change_ships_and_generates_the_changed_value(
    tmp_path: Path, home: Home
) -> None:
    from nbops.build.builder import build

    serve = ("def count(extra: int) -> int:\n    return len(values) + extra\n", ["serve"])
    notebook = write(tmp_path, [*SEEN_WHEN_RUN, serve])
    result = build(analyse(load_notebook(notebook)), out=tmp_path / "build", home=home)
    (endpoint,) = result.manifest["endpoints"]
    assert endpoint["artifacts"] == {"values": "change.values"}
    stored = result.manifest["artifacts"]["change.values"]
    assert home.store.get(stored["sha256"], stored["format"]) == [1, 2, 3, 99]
    dag = (tmp_path / "build" / "pipeline" / "dag.py").read_text()
    assert dag.count('inputs={"values": "change"}') == 1  # the report step reads the change
