"""Executors for real: steps in worker processes that may die, hang or be cancelled, and
independent steps side by side, computing exactly what the inline runner computes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from builders import notebook_json, pipeline

from nbops.errors import StepFailed
from nbops.run.executors import make_executor
from nbops.run.home import Home
from nbops.run.runner import run_pipeline
from nbops.run.state import RunRecord

NBOPS = str(Path(sys.executable).parent / "nbops")
CHURN = Path(__file__).parent.parent / "example_notebooks" / "churn.ipynb"


def ending(code: str, *options: str) -> list[tuple[str, list[str]] | str]:
    return [
        ("import os, signal, time", ["setup"]),
        ("numbers = [1, 2, 3]", ["step:load"]),
        (f"total = sum(numbers)\n{code}", ["step:boom", *options]),
        ("doubled = total * 2", ["step:after"]),
    ]


BRANCHES = [
    ("pause = 0.6  # seconds each branch takes", ["parameters"]),
    ("import time", ["setup"]),
    ("data = list(range(1000))", ["step:load"]),
    ("time.sleep(pause)\nb1 = sum(x for x in data)", ["step:b1"]),
    ("time.sleep(pause)\nb2 = sum(x * x for x in data)", ["step:b2"]),
    ("time.sleep(pause)\nb3 = max(data)", ["step:b3"]),
    ("time.sleep(pause)\nb4 = len(data)", ["step:b4"]),
    ("total = b1 + b2 + b3 + b4", ["step:join"]),
    ("result = float(total)", ["metrics"]),
]


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return Home(tmp_path / ".nbops")


def run_with(
    executor: str, cells: list[tuple[str, list[str]] | str], home: Home, **options: object
) -> RunRecord:
    chosen = make_executor(executor, jobs=2)
    try:
        return run_pipeline(pipeline(cells), home=home, executor=chosen, **options)  # type: ignore[arg-type]
    finally:
        chosen.close()


def failure_of(executor: str, code: str, home: Home) -> tuple[StepFailed, RunRecord]:
    with pytest.raises(StepFailed) as caught:
        run_with(executor, ending(code), home)
    record = home.db().runs(limit=1)[0]
    return caught.value, record


def test_a_step_that_ends_its_process_fails_alone(home: Home) -> None:
    failure, record = failure_of("process", "os._exit(3)", home)
    assert failure.where == "nb.ipynb cell 2 [step:boom]"
    assert failure.message == "the step's process exited with code 3."
    assert [s.status for s in record.steps] == ["ran", "failed", "not-run"]
    assert record.status == "failed"


def test_a_step_killed_by_a_signal_says_so(home: Home) -> None:
    failure, _ = failure_of("process", "os.kill(os.getpid(), signal.SIGKILL)", home)
    assert failure.message == "the step's process was killed by SIGKILL: out of memory?"
    assert failure.where == "nb.ipynb cell 2 [step:boom]"


@pytest.mark.parametrize("executor", ["inline", "process"])
def test_sys_exit_in_a_cell_fails_the_step_not_the_runner(executor: str, home: Home) -> None:
    failure, record = failure_of(executor, "raise SystemExit(2)", home)
    assert failure.message == "the cell called sys.exit(2)."
    assert failure.where == "nb.ipynb cell 2 [step:boom] line 2"
    assert [s.status for s in record.steps] == ["ran", "failed", "not-run"]


def test_a_step_over_its_time_limit_is_killed_with_what_it_started(
    home: Home, tmp_path: Path
) -> None:
    marker = tmp_path / "child.pid"
    code = (
        "import subprocess\n"
        f"open({str(marker)!r}, 'w').write(str(subprocess.Popen(['sleep', '60']).pid))\n"
        "while True:\n    pass"
    )
    started = time.monotonic()
    failure, record = failure_of_timeout(code, home)
    assert time.monotonic() - started < 4
    assert record.steps[1].status == "timed-out"
    assert "did not finish within its time limit (1.5s)" in failure.message
    assert failure.where == "nb.ipynb cell 2 [step:boom]"
    assert not pid_running(int(marker.read_text()))  # the step's own child went with it


def failure_of_timeout(code: str, home: Home) -> tuple[StepFailed, RunRecord]:
    with pytest.raises(StepFailed) as caught:
        run_with("process", ending(code), home, step_timeout=1.5)
    return caught.value, home.db().runs(limit=1)[0]


def test_the_step_tags_time_limit_wins_over_the_runs(home: Home) -> None:
    started = time.monotonic()
    with pytest.raises(StepFailed) as caught:
        run_with("process", ending("while True:\n    pass", "timeout=2s"), home, step_timeout=60)
    assert time.monotonic() - started < 4
    assert "within its time limit (2s)" in caught.value.message
    assert home.db().runs(limit=1)[0].steps[1].status == "timed-out"


def pid_running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_independent_steps_run_side_by_side_and_compute_what_inline_computes(
    tmp_path: Path,
) -> None:
    inline = run_with("inline", BRANCHES, Home(tmp_path / "inline"))
    parallel = run_with("process", BRANCHES, Home(tmp_path / "process"))
    assert [s.outputs for s in parallel.steps] == [s.outputs for s in inline.steps]
    assert parallel.metrics == inline.metrics
    branches = [s for s in parallel.steps if s.name.startswith("b")]
    overlapping = [
        (a.name, b.name)
        for i, a in enumerate(branches)
        for b in branches[i + 1 :]
        if a.started_at < b.ended_at and b.started_at < a.ended_at  # type: ignore[operator]
    ]
    assert overlapping, [(s.name, s.started_at, s.ended_at) for s in branches]
    assert len({s.worker for s in branches}) == 2
    # The run record keeps the timeline: reading it back gives the same intervals.
    stored = Home(tmp_path / "process").db().run(parallel.run_id)
    assert stored is not None
    assert [(s.started_at, s.ended_at) for s in stored.steps] == [
        (s.started_at, s.ended_at) for s in parallel.steps
    ]


def test_a_cached_run_starts_no_worker(tmp_path: Path) -> None:
    home = Home(tmp_path / ".nbops")
    run_with("process", BRANCHES, home)
    chosen = make_executor("process", jobs=2)
    try:
        again = run_pipeline(pipeline(BRANCHES), home=home, executor=chosen)
        assert {s.status for s in again.steps} == {"cached"}
        workers = [
            child
            for child in psutil.Process().children(recursive=True)
            if "nbops.run.executors.worker" in " ".join(child.cmdline())
        ]
        assert workers == []
    finally:
        chosen.close()


# the CLI


def cli(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "NBOPS_HOME": str(tmp_path / ".nbops"), "NO_COLOR": "1"}
    return subprocess.Popen(
        [NBOPS, *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def write(tmp_path: Path, cells: list[tuple[str, list[str]] | str]) -> Path:
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps(notebook_json(cells)))
    return path


def test_cli_reports_a_dead_step_in_one_line_and_exits_1(tmp_path: Path) -> None:
    write(tmp_path, ending("os._exit(3)"))
    done = cli(tmp_path, "run", "nb.ipynb")
    out, err = done.communicate(timeout=60)
    assert done.returncode == 1, err
    assert "Traceback" not in out + err
    assert err.startswith(
        "error: nb.ipynb cell 2 [step:boom]: the step's process exited with code 3"
    ), err


@pytest.mark.slow
def test_ctrl_c_stops_the_running_steps_within_2s_and_leaves_no_process(tmp_path: Path) -> None:
    write(tmp_path, ending("while True:\n    pass"))
    started = cli(tmp_path, "run", "nb.ipynb", "--executor", "process")
    workers = wait_for_worker(started.pid, Home(tmp_path / ".nbops"))
    os.kill(started.pid, signal.SIGINT)
    sent = time.monotonic()
    _, err = started.communicate(timeout=10)
    assert time.monotonic() - sent < 2
    assert started.returncode == 130, err
    assert "error: the run was cancelled" in err
    time.sleep(0.3)
    assert [p.pid for p in workers if pid_running(p.pid)] == []
    record = Home(tmp_path / ".nbops").db().runs(limit=1)[0]
    assert record.status == "cancelled"
    assert [s.status for s in record.steps] == ["ran", "cancelled", "not-run"]


def wait_for_worker(pid: int, home: Home) -> list[psutil.Process]:
    """The CLI's worker processes, once the run record says the endless step runs."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        runs = home.db().runs(limit=1) if (home.root / "state.db").exists() else []
        if runs and runs[0].steps[1].status == "running":
            time.sleep(0.3)
            return psutil.Process(pid).children(recursive=True)
        time.sleep(0.1)
    raise AssertionError("the endless step did not start")


@pytest.mark.slow
def test_a_sweep_runs_shared_steps_once_and_tables_the_runs(tmp_path: Path) -> None:
    (tmp_path / "churn.ipynb").write_bytes(CHURN.read_bytes())
    done = cli(
        tmp_path,
        "run",
        "churn.ipynb",
        "-p",
        "n_estimators=10,20",
        "-p",
        "max_depth=2,4",
        "--sort",
        "test_accuracy",
        "--format",
        "json",
    )
    out, err = done.communicate(timeout=300)
    assert done.returncode == 0, err
    runs = json.loads(out)
    grid = {(r["parameters"]["n_estimators"], r["parameters"]["max_depth"]) for r in runs}
    assert grid == {(10, 2), (10, 4), (20, 2), (20, 4)}
    accuracies = [r["metrics"]["test_accuracy"] for r in runs]
    assert accuracies == sorted(accuracies, reverse=True)
    statuses = {
        name: [next(s["status"] for s in r["steps"] if s["name"] == name) for r in runs]
        for name in ("load", "features", "train")
    }
    assert sorted(statuses["load"]) == ["cached", "cached", "cached", "ran"]
    assert sorted(statuses["features"]) == ["cached", "cached", "cached", "ran"]
    assert statuses["train"] == ["ran"] * 4


HIDDEN_CHANGE = [
    ("import time", ["setup"]),
    ("data = [3, 1, 2]", ["step:load"]),
    # The analysis cannot see this call change `data`; the runner sees it when the step ends.
    ("time.sleep(0.5)\ngetattr(data, 'sort')()\nsorted_flag = True", ["step:change"]),
    ("first = data[0]", ["step:read"]),
    ("first_value = float(first)", ["metrics"]),
]


def test_a_step_that_read_a_value_changed_under_it_runs_again(tmp_path: Path) -> None:
    """`read` runs beside `change`, on the unsorted list; once `change` is seen sorting it in
    place, `read` runs again on the sorted one, as one step after another would have it."""
    inline = run_with("inline", HIDDEN_CHANGE, Home(tmp_path / "inline"))
    parallel = run_with("process", HIDDEN_CHANGE, Home(tmp_path / "process"))
    assert [s.outputs for s in parallel.steps] == [s.outputs for s in inline.steps]
    home = Home(tmp_path / "process")
    assert parallel.metrics == inline.metrics == {"first_value": 1.0}
    assert parallel.steps[2].note == (
        "ran again: an earlier step changed data in place while it ran"
    )
    # The next run knows: `read` waits for `change`, and everything is cached.
    again = run_with("process", HIDDEN_CHANGE, home)
    assert [s.status for s in again.steps] == ["cached"] * 3


def test_setup_does_not_count_against_a_steps_time_limit(home: Home) -> None:
    slow_setup = [
        ("import time\ntime.sleep(1.5)", ["setup"]),
        ("numbers = [1, 2, 3]", ["step:load", "timeout=1s"]),
        ("total = sum(numbers)", ["step:add", "timeout=1s"]),
    ]
    record = run_with("process", slow_setup, home)
    assert [s.status for s in record.steps] == ["ran", "ran"]


def test_a_process_dying_in_setup_names_the_setup_cell(home: Home) -> None:
    with pytest.raises(StepFailed) as caught:
        run_with("process", [("import os\nos._exit(4)", ["setup"]), ("x = 1", ["step:one"])], home)
    assert caught.value.where == "nb.ipynb cell 0 [setup]"
    assert caught.value.message == "the step's process exited with code 4."
