"""The dask executor on a real LocalCluster of worker processes: the same artifacts as inline,
branches side by side, failures named by cell and line, a SIGKILLed worker survived (even a
lone one), time limits and cancels that stop the step's process, nothing left running after
close; and a scheduler given by its address."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from importlib.util import find_spec
from pathlib import Path
from typing import cast

import dask
import distributed
import psutil
import pytest
from builders import Cell, pipeline

from nbops.errors import StepFailed
from nbops.model.pipeline import Pipeline
from nbops.run.executors import ExecutorUnavailable, Running, make_executor
from nbops.run.executors.dask import DaskExecutor
from nbops.run.home import Home
from nbops.run.runner import RunCancelled, run_pipeline
from nbops.run.state import RunRecord, StepRecord

BRANCHES = ("b1", "b2", "b3", "b4")
BUSY_S = 0.5  # each branch keeps its worker's CPU busy this long, however fast the machine
ENDLESS: Cell = ("b1 = 0\nwhile True:\n    b1 += 1", ["step:b1"])


def branch(name: str, busy_s: float = BUSY_S) -> Cell:
    """A CPU-bound step of its own, computed from the loaded data: sums of squares until
    `busy_s` passed (by the clock, so a kill half a second in lands on any machine)."""
    source = (
        "import time\n"
        f"{name}_until, {name} = time.time() + {busy_s}, 0\n"
        f"while time.time() < {name}_until:\n"
        f"    {name} = sum(x * x for x in data) * {len(name)}\n"
    )
    return (source, [f"step:{name}"])


def four_branches(busy_s: float = BUSY_S, **cells: Cell) -> Pipeline:
    """load -> b1..b4 side by side -> join; `cells` replaces a branch by name."""
    branches = [cells.get(name, branch(name, busy_s)) for name in BRANCHES]
    join = ("result = b1 + b2 + b3 + b4", ["step:join"])
    return pipeline([("data = list(range(1, 2001))", ["step:load"]), *branches, join])


@pytest.fixture
def dask_executor() -> Iterator[DaskExecutor]:
    executor = cast(DaskExecutor, make_executor("dask", jobs=2))
    yield executor
    executor.close()


def hashes(record: RunRecord) -> dict[str, dict[str, str]]:
    return {s.name: {n: a.sha256 for n, a in s.outputs.items()} for s in record.steps}


def inline_hashes(p: Pipeline, tmp_path: Path) -> dict[str, dict[str, str]]:
    home = Home(tmp_path / "inline")
    return hashes(run_pipeline(p, home=home, executor=make_executor("inline")))


def last_run(home: Home) -> RunRecord:
    return home.db().runs(limit=1)[0]


def test_same_artifacts_as_inline_with_branches_side_by_side(
    dask_executor: DaskExecutor, tmp_path: Path
) -> None:
    p = four_branches()
    record = run_pipeline(p, home=Home(tmp_path / ".nbops"), executor=dask_executor)
    assert record.status == "succeeded"
    assert hashes(record) == inline_hashes(p, tmp_path)
    assert {s.worker for s in record.steps} <= set(dask_executor.client.nthreads())
    spans = [(s.started_at, s.ended_at) for s in record.steps if s.name in BRANCHES]
    overlapping = [
        (a, b) for a in spans for b in spans if a < b and max(a[0], b[0]) < min(a[1], b[1])
    ]
    assert overlapping, spans


def test_a_failing_step_is_named_by_cell_and_line_as_inline(
    dask_executor: DaskExecutor, tmp_path: Path
) -> None:
    p = four_branches(b2=("b2 = 1\nraise ValueError('no b2 today')", ["step:b2"]))
    with pytest.raises(StepFailed) as inline:
        run_pipeline(p, home=Home(tmp_path / "inline"), executor=make_executor("inline"))
    home = Home(tmp_path / ".nbops")
    with pytest.raises(StepFailed) as dask:
        run_pipeline(p, home=home, executor=dask_executor)
    assert dask.value.where == inline.value.where == "nb.ipynb cell 2 [step:b2] line 2"
    assert dask.value.message == inline.value.message == "ValueError: no b2 today"
    statuses = {s.name: s.status for s in last_run(home).steps}
    assert statuses["b2"] == "failed"
    assert statuses["join"] == "not-run"


def test_an_input_lost_from_the_store_fails_the_step_naming_it(
    dask_executor: DaskExecutor, tmp_path: Path
) -> None:
    """The store lost the input b1 reads between load and b1: b1 fails naming the object."""
    home = Home(tmp_path / ".nbops")
    lost: list[Path] = []

    def lose_data(step: str, event: str, record: StepRecord) -> None:
        if (step, event) == ("b1", "start"):
            data = last_run(home).steps[0].outputs["data"]
            lost.append(home.store.path(data.sha256, data.format))
            lost[0].unlink()

    with pytest.raises(StepFailed) as failed:
        run_pipeline(four_branches(), home=home, executor=dask_executor, listener=lose_data)
    assert failed.value.message == "the stored input 'data' is gone from the store."
    assert failed.value.where == str(lost[0])
    assert {s.name: s.status for s in last_run(home).steps}["b1"] == "failed"


def test_a_worker_killed_during_a_step_is_replaced_and_the_run_succeeds(
    dask_executor: DaskExecutor, tmp_path: Path
) -> None:
    p = four_branches(b1=branch("b1", busy_s=1.5))
    record, killed = run_killing_b1s_worker(p, tmp_path, dask_executor)
    assert record.status == "succeeded"
    assert hashes(record) == inline_hashes(p, tmp_path)
    assert record.steps[1].worker != killed  # b1 ran again on another worker


def test_a_lone_worker_killed_during_a_step_is_replaced_and_the_run_succeeds(
    tmp_path: Path,
) -> None:
    """The lone worker held the only copy of the scattered pipeline, which Dask cannot
    recompute: the executor scatters it again to the new worker and sends b1 again."""
    executor = cast(DaskExecutor, make_executor("dask", jobs=1))
    try:
        p = four_branches(busy_s=0.1, b1=branch("b1", busy_s=1.5))
        record, _ = run_killing_b1s_worker(p, tmp_path, executor)
    finally:
        executor.close()
    assert record.status == "succeeded"
    assert hashes(record) == inline_hashes(p, tmp_path)


def run_killing_b1s_worker(
    p: Pipeline, tmp_path: Path, executor: DaskExecutor
) -> tuple[RunRecord, str]:
    """Run, SIGKILLing the worker process running b1 half a second into the step."""
    killed: list[str] = []

    def kill() -> None:
        worker = wait_until_running(executor, "b1").worker
        time.sleep(0.5)
        os.kill(executor.client.run(os.getpid, workers=[worker])[worker], signal.SIGKILL)
        killed.append(worker)

    killer = threading.Thread(target=kill)
    killer.start()
    record = run_pipeline(p, home=Home(tmp_path / ".nbops"), executor=executor)
    killer.join()
    return record, killed[0]


def test_a_step_over_its_time_limit_is_stopped_with_its_worker(
    dask_executor: DaskExecutor, tmp_path: Path
) -> None:
    # The limit on b1's own tag: on a busy machine loading the data may take a second.
    p = four_branches(busy_s=0.05, b1=(ENDLESS[0], [*ENDLESS[1], "timeout=1s"]))
    home = Home(tmp_path / ".nbops")
    started = time.perf_counter()
    with pytest.raises(StepFailed) as failed:
        run_pipeline(p, home=home, executor=dask_executor)
    assert time.perf_counter() - started < 4
    assert failed.value.where == "nb.ipynb cell 1 [step:b1]"
    assert failed.value.message.startswith(
        "the step did not finish within its time limit (1s), so the Dask worker running it"
    )
    statuses = {s.name: s.status for s in last_run(home).steps}
    assert (statuses.pop("load"), statuses.pop("b1"), statuses.pop("join")) == (
        "ran",
        "timed-out",
        "not-run",
    )
    # The others ran beside b1 until it timed out; after that nothing new starts.
    assert set(statuses.values()) <= {"ran", "not-run"}, statuses


def test_a_cancelled_run_stops_the_running_step_with_its_worker(
    dask_executor: DaskExecutor, tmp_path: Path
) -> None:
    p = four_branches(b1=ENDLESS)
    # Held from the start: a pid looked up after the kill may be gone already, or reused.
    workers = {a: psutil.Process(pid) for a, pid in dask_executor.client.run(os.getpid).items()}
    ran_on: list[str] = []

    def cancel_while_b1_runs(step: str, event: str, record: StepRecord) -> None:
        if (step, event) == ("b2", "start"):
            ran_on.append(wait_until_running(dask_executor, "b1").worker)
            raise RunCancelled("stop", fix="")

    home = Home(tmp_path / ".nbops")
    with pytest.raises(RunCancelled):
        run_pipeline(p, home=home, executor=dask_executor, listener=cancel_while_b1_runs)
    assert {s.name: s.status for s in last_run(home).steps}["b1"] == "cancelled"
    _, alive = psutil.wait_procs([workers[ran_on[0]]], timeout=2)
    assert alive == []


def wait_until_running(executor: DaskExecutor, name: str) -> Running:
    stop = time.time() + 20
    while time.time() < stop:
        running = executor.running().get(name)
        if running is not None and running.worker:
            return running
        time.sleep(0.02)
    raise AssertionError(f"{name} was never seen running")


def test_close_leaves_no_worker_process_alive(tmp_path: Path) -> None:
    links: list[str] = []
    executor = cast(DaskExecutor, make_executor("dask", jobs=2, dashboard=links.append))
    assert links == ([executor.dashboard_link] if find_spec("bokeh") else [])
    try:
        workers = [psutil.Process(pid) for pid in executor.client.run(os.getpid).values()]
        assert len(workers) == executor.slots == 2
        p = pipeline([("data = [1, 2]", ["step:load"]), ("total = sum(data)", ["step:sum"])])
        record = run_pipeline(p, home=Home(tmp_path / ".nbops"), executor=executor)
        assert record.status == "succeeded"
    finally:
        executor.close()
    _, alive = psutil.wait_procs(workers, timeout=1)
    assert alive == []


def test_an_unreachable_scheduler_is_an_error_that_names_it() -> None:
    with (
        dask.config.set({"distributed.comm.timeouts.connect": "1s"}),
        pytest.raises(ExecutorUnavailable) as unavailable,
    ):
        make_executor("dask", scheduler="tcp://127.0.0.1:9")
    assert unavailable.value.message.startswith(
        "cannot connect to the Dask scheduler at tcp://127.0.0.1:9: Timed out trying to connect"
    )
    assert unavailable.value.fix == (
        "Check the address (tcp://HOST:8786) and that `dask scheduler` runs there."
    )


def test_a_scheduler_by_address_runs_steps_and_restarts_a_timed_out_worker(
    tmp_path: Path,
) -> None:
    """A cluster we did not start: a time limit restarts the worker through its nanny."""
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, dashboard_address=None
    ) as cluster:
        executor = cast(DaskExecutor, make_executor("dask", scheduler=cluster.scheduler_address))
        try:
            assert executor.slots == 2
            # The limit on b1's own tag: a loaded machine may take a second to load the data.
            p = four_branches(busy_s=0.05, b1=(ENDLESS[0], [*ENDLESS[1], "timeout=1s"]))
            started = time.perf_counter()
            with pytest.raises(StepFailed) as failed:
                run_pipeline(p, home=Home(tmp_path / ".nbops"), executor=executor)
            assert failed.value.where == "nb.ipynb cell 1 [step:b1]"
            assert time.perf_counter() - started < 10  # the nanny gives the worker 4 s to close
            record = run_pipeline(
                four_branches(), home=Home(tmp_path / ".nbops"), executor=executor
            )
            assert record.status == "succeeded"
            assert hashes(record) == inline_hashes(four_branches(), tmp_path)
        finally:
            executor.close()
        assert len(cluster.scheduler_info["workers"]) == 2  # closing the client left them be
