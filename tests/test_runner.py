"""The local runner, for real: cells executed, artifacts stored, the cache honoured, failures."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from builders import notebook_json, pipeline

from nbops.errors import PipelineError, StepFailed
from nbops.model.analysis import analyse
from nbops.model.notebook import load_notebook
from nbops.run.home import Home
from nbops.run.runner import run_pipeline

CHURN = Path(__file__).parent.parent / "example_notebooks" / "churn.ipynb"
NBOPS = str(Path(sys.executable).parent / "nbops")

CHAIN = [
    ("scale = 2  # multiplier\noffset = 1  # added", ["parameters"]),
    ("import math", ["setup"]),
    ("numbers = list(range(5))", ["step:load"]),
    ("doubled = [n * scale for n in numbers]", ["step:double"]),
    ("shifted = [d + offset for d in doubled]\ntotal = math.fsum(shifted)", ["step:shift"]),
    ("assert total > 0", ["test"]),
    ("result = float(total)", ["metrics"]),
]


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return Home(tmp_path / ".nbops")


def statuses(record: object) -> dict[str, str]:
    return {s.name: s.status for s in record.steps}  # type: ignore[attr-defined]


def test_a_run_stores_each_output_and_records_the_run(home: Home) -> None:
    record = run_pipeline(pipeline(CHAIN), home=home)
    assert record.status == "succeeded"
    assert statuses(record) == {"load": "ran", "double": "ran", "shift": "ran"}
    assert record.metrics == {"result": 25.0}
    shifted = record.steps[2].outputs["total"]
    assert home.store.get(shifted.sha256, shifted.format) == 25.0
    path = home.store.path(shifted.sha256, shifted.format)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == shifted.sha256
    saved = home.db().run(record.run_id)
    assert saved is not None and saved.as_dict() == record.as_dict()


def test_a_second_run_is_all_cache_hits(home: Home) -> None:
    run_pipeline(pipeline(CHAIN), home=home)
    again = run_pipeline(pipeline(CHAIN), home=home)
    assert statuses(again) == {"load": "cached", "double": "cached", "shift": "cached"}
    assert again.metrics == {"result": 25.0}


def test_changing_a_parameter_reruns_only_the_steps_that_read_it_and_downstream(
    home: Home,
) -> None:
    first = run_pipeline(pipeline(CHAIN), home=home)
    changed = run_pipeline(pipeline(CHAIN), parameters={"offset": 3}, home=home)
    assert statuses(changed) == {"load": "cached", "double": "cached", "shift": "ran"}
    assert changed.metrics == {"result": 35.0}
    assert changed.steps[1].outputs == first.steps[1].outputs


def test_a_step_whose_output_bytes_do_not_change_leaves_downstream_cached(home: Home) -> None:
    cells = [
        ("n = 1", ["parameters"]),
        ("flag = n > 0", ["step:check"]),
        ("answer = 42 if flag else 0", ["step:use"]),
        ("print(answer)", ["test"]),
    ]
    run_pipeline(pipeline(cells), home=home)
    record = run_pipeline(pipeline(cells), parameters={"n": 5}, home=home)
    assert statuses(record) == {"check": "ran", "use": "cached"}


def test_force_reruns_everything_and_from_reruns_a_step_and_after(home: Home) -> None:
    run_pipeline(pipeline(CHAIN), home=home)
    forced = run_pipeline(pipeline(CHAIN), force=True, home=home)
    assert set(statuses(forced).values()) == {"ran"}
    partial = run_pipeline(pipeline(CHAIN), from_step="double", home=home)
    assert statuses(partial) == {"load": "cached", "double": "ran", "shift": "ran"}
    with pytest.raises(PipelineError, match="--from 'dubble' names no step"):
        run_pipeline(pipeline(CHAIN), from_step="dubble", home=home)


def test_a_failing_step_names_its_cell_and_line_and_a_rerun_resumes(home: Home) -> None:
    broken = [*CHAIN[:3], ("doubled = [n * scale for n in numbers]\nboom = 1 / 0", ["step:double"])]
    with pytest.raises(StepFailed) as failure:
        run_pipeline(pipeline(broken), home=home)
    assert failure.value.where == "nb.ipynb cell 3 [step:double] line 2"
    assert failure.value.message == "ZeroDivisionError: division by zero"
    assert "boom = 1 / 0" in failure.value.details
    failed = home.db().runs(limit=1)[0]
    assert failed.status == "failed"
    assert statuses(failed) == {"load": "ran", "double": "failed"}
    record = run_pipeline(pipeline(CHAIN), home=home)
    assert statuses(record) == {"load": "cached", "double": "ran", "shift": "ran"}


def test_a_notebook_with_analysis_errors_is_refused(home: Home) -> None:
    with pytest.raises(PipelineError, match="'missing' is read but no earlier step"):
        run_pipeline(pipeline([("x = missing", ["step:s"])]), home=home)


def test_step_output_goes_to_the_run_log_not_the_terminal(
    home: Home, capsys: pytest.CaptureFixture[str]
) -> None:
    record = run_pipeline(pipeline([("x = 1\nprint('hello from x')", ["step:s"])]), home=home)
    assert "hello" not in capsys.readouterr().out
    assert (home.log_dir(record.run_id) / "s.log").read_text() == "hello from x\n"


def test_the_churn_example_runs_and_then_is_all_cached(home: Home) -> None:
    churn = analyse(load_notebook(CHURN))
    record = run_pipeline(churn, parameters={"n_rows": 800, "n_estimators": 10}, home=home)
    assert set(statuses(record).values()) == {"ran"}
    assert record.metrics["test_accuracy"] > 0.5
    model = record.steps[2].outputs["model"]
    assert hasattr(home.store.get(model.sha256, model.format), "predict_proba")
    again = run_pipeline(churn, parameters={"n_rows": 800, "n_estimators": 10}, home=home)
    assert set(statuses(again).values()) == {"cached"}
    fewer_trees = run_pipeline(churn, parameters={"n_rows": 800, "n_estimators": 5}, home=home)
    assert statuses(fewer_trees) == {
        "load": "cached",
        "features": "cached",
        "train": "ran",
        "evaluate": "ran",
        "report": "ran",
    }


def test_run_command_json_prints_the_run_record(tmp_path: Path) -> None:
    path = tmp_path / "chain.ipynb"
    path.write_text(json.dumps(notebook_json(CHAIN)))
    env = {**os.environ, "NBOPS_HOME": str(tmp_path / ".nbops")}
    done = subprocess.run(
        [NBOPS, "run", str(path), "-p", "scale=3", "--format", "json"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    record = json.loads(done.stdout)
    assert record["status"] == "succeeded"
    assert record["parameters"] == {"scale": 3, "offset": 1}
    assert [(s["name"], s["status"]) for s in record["steps"]] == [
        ("load", "ran"),
        ("double", "ran"),
        ("shift", "ran"),
    ]
    assert set(record["steps"][2]["outputs"]) == {"total"}
    assert record["metrics"] == {"result": 35.0}


def test_run_command_reports_a_failure_with_cell_line_and_exit_1(tmp_path: Path) -> None:
    path = tmp_path / "bad.ipynb"
    path.write_text(json.dumps(notebook_json([("x = 1\ny = x / 0", ["step:s"])])))
    env = {**os.environ, "NBOPS_HOME": str(tmp_path / ".nbops")}
    done = subprocess.run([NBOPS, "run", str(path)], capture_output=True, text=True, env=env)
    assert done.returncode == 1
    assert "error: " in done.stderr
    assert "bad.ipynb cell 0 [step:s] line 2: ZeroDivisionError: division by zero" in done.stderr
    assert "Traceback" not in done.stderr


def test_an_unknown_parameter_is_a_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "chain.ipynb"
    path.write_text(json.dumps(notebook_json(CHAIN)))
    done = subprocess.run([NBOPS, "run", str(path), "-p", "scal=3"], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip() == "error: there is no parameter 'scal'. Did you mean 'scale'?"


def test_killing_a_run_mid_step_leaves_no_corrupt_artifact(tmp_path: Path) -> None:
    flag = tmp_path / "slow"
    flag.touch()
    cells = [
        ("import os, time", ["setup"]),
        ("data = list(range(100_000))", ["step:make"]),
        (
            f"if os.path.exists({str(flag)!r}):\n    time.sleep(60)\nsize = len(data)",
            ["step:slow"],
        ),
        ("print(size)", ["test"]),
    ]
    path = tmp_path / "kill.ipynb"
    path.write_text(json.dumps(notebook_json(cells)))
    env = {**os.environ, "NBOPS_HOME": str(tmp_path / ".nbops")}
    process = subprocess.Popen([NBOPS, "run", str(path), "--format", "json"], env=env)
    log = tmp_path / ".nbops" / "runs"
    deadline = time.monotonic() + 30
    while not list(log.glob("*/slow.log")) and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    store = tmp_path / ".nbops" / "artifacts"
    for file in store.rglob("*"):
        if file.is_file() and "keys" not in file.parts:  # keys/: the cache index, not objects
            assert not file.name.startswith("."), f"temp file left behind: {file}"
            assert hashlib.sha256(file.read_bytes()).hexdigest() == file.name.split(".")[0]
    flag.unlink()
    done = subprocess.run(
        [NBOPS, "run", str(path), "--format", "json"], capture_output=True, text=True, env=env
    )
    record = json.loads(done.stdout)
    assert record["status"] == "succeeded"
    assert [s["status"] for s in record["steps"]] == ["cached", "ran"]
    runs = json.loads(
        subprocess.run(
            [NBOPS, "runs", "--format", "json"], capture_output=True, text=True, env=env
        ).stdout
    )
    assert [r["status"] for r in runs] == ["succeeded", "interrupted"]


def test_run_command_gates_metrics_with_require(tmp_path: Path) -> None:
    path = tmp_path / "chain.ipynb"
    path.write_text(json.dumps(notebook_json(CHAIN)))
    env = {**os.environ, "NBOPS_HOME": str(tmp_path / ".nbops")}
    base = [NBOPS, "run", str(path), "--format", "json"]
    held = subprocess.run([*base, "--require", "result>=25"], capture_output=True, env=env)
    assert held.returncode == 0
    failed = subprocess.run([*base, "--require", "result>30"], capture_output=True, env=env)
    assert failed.returncode == 1
    (gate,) = json.loads(failed.stdout)["gates"]
    assert gate == {
        "gate": "result>30",
        "value": 25.0,
        "passed": False,
        "reason": "result = 25, needs > 30",
    }


def test_display_works_in_a_plain_run_and_goes_to_the_log(home: Home) -> None:
    cells = [("x = [1, 2]\ndisplay(x)", ["step:s"]), ("print(x)", ["test"])]
    record = run_pipeline(pipeline(cells), home=home)
    assert (home.log_dir(record.run_id) / "s.log").read_text() == "[1, 2]\n"


def test_shell_output_and_warnings_go_to_the_log_not_the_terminal(tmp_path: Path) -> None:
    cells = [
        ("import warnings", ["setup"]),
        ('x = 1\n!echo "shell sees {x}"\nwarnings.warn("careful")', ["step:s"]),
        ("print(x)", ["test"]),
    ]
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps(notebook_json(cells)))
    env = {**os.environ, "NBOPS_HOME": str(tmp_path / ".nbops")}
    done = subprocess.run(
        [NBOPS, "run", str(path), "--format", "json"], capture_output=True, text=True, env=env
    )
    assert done.stderr == ""
    record = json.loads(done.stdout)  # nothing but the record on stdout
    log = tmp_path / ".nbops" / "runs" / record["run_id"] / "s.log"
    assert log.read_text() == (
        'shell sees 1\n<nb.ipynb cell 1>:3: UserWarning: careful\n  warnings.warn("careful")\n'
    )


def test_a_failure_after_a_shell_line_names_the_cells_own_line(home: Home) -> None:
    cells = [("!echo one\nx = 1\nboom = 1 / 0", ["step:s"]), ("print(boom)", ["test"])]
    with pytest.raises(StepFailed) as failure:
        run_pipeline(pipeline(cells), home=home)
    assert failure.value.where == "nb.ipynb cell 0 [step:s] line 3"


def test_values_of_the_metrics_cells_that_are_not_numbers_are_named_not_dropped(
    home: Home,
) -> None:
    cells = [
        ("values = [1.0, 2.0]", ["step:s"]),
        ('total = sum(values)\ncount = len(values)\nlabel = "x"\nnan = float("nan")', ["metrics"]),
    ]
    record = run_pipeline(pipeline(cells), home=home)
    expected = {"label": "is a str, not a number", "nan": "is nan, not a finite number"}
    assert (record.metrics, record.metric_problems) == ({"total": 3.0, "count": 2.0}, expected)
    cached = run_pipeline(pipeline(cells), home=home)  # the metrics come from the cache
    assert (cached.metrics, cached.metric_problems) == (record.metrics, expected)
    stored = home.db().run(record.run_id)
    assert stored is not None and stored.metric_problems == expected
    assert stored.as_dict()["metric_problems"] == expected
