"""The process executor: steps run in worker processes, up to `jobs` at once.

A worker is started when work is waiting and fewer than `jobs` exist, and is kept for the next
work (setup's imports are then paid once per worker). Each worker leads its own process group:
a time limit or a cancel kills the group, so nothing the step started survives it, and what a
step does to its process (`os._exit`, a signal, the out-of-memory killer) fails that step only.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pickle
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait

from nbops.model.pipeline import Pipeline
from nbops.run.executors import Running
from nbops.run.work import STEP, Failure, StepWork, WorkResult, work_cells, work_where


@dataclass
class _Worker:
    process: subprocess.Popen[bytes]
    connection: Connection
    notebooks: set[str] = field(default_factory=set)
    running: Running | None = None

    @property
    def label(self) -> str:
        return f"pid {self.process.pid}"

    def kill(self) -> None:
        """SIGKILL the worker's whole process group and reap the worker."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.connection.close()


class ProcessExecutor:
    name = "process"

    def __init__(self, jobs: int) -> None:
        self.slots = max(1, jobs)
        self._workers: list[_Worker] = []
        self._pipeline: Pipeline | None = None
        self._pickled = b""
        self._done: list[WorkResult] = []
        self._queue: list[StepWork] = []  # submitted, waiting for a free worker

    def start(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline
        self._pickled = pickle.dumps(pipeline, protocol=pickle.HIGHEST_PROTOCOL)

    def submit(self, work: StepWork) -> None:
        """Run the work on a free worker; a step may start a new worker (which pays setup's
        imports), while test and metrics cells, quick as a rule, wait for one that is free."""
        idle = next((w for w in self._workers if w.running is None), None)
        if idle is None and self._worth_a_worker(work):
            idle = self._spawn()
        if idle is None:
            self._queue.append(work)
            self._queue.sort(key=lambda queued: queued.kind != STEP)  # steps first
            return
        self._dispatch(idle, work)

    def _worth_a_worker(self, work: StepWork) -> bool:
        """Whether to start a worker for the work rather than wait for one: for a step, when
        no worker is just running test or metrics cells (free again in a moment)."""
        if len(self._workers) >= self.slots:
            return False
        if not self._workers:
            return True
        busy = [w.running.work.kind for w in self._workers if w.running is not None]
        return work.kind == STEP and all(kind == STEP for kind in busy)

    def _dispatch(self, worker: _Worker, work: StepWork) -> None:
        if work.notebook_sha256 not in worker.notebooks:
            worker.connection.send(("pipeline", work.notebook_sha256, self._pickled))
            worker.notebooks.add(work.notebook_sha256)
        worker.connection.send(("work", work))
        worker.running = Running(work, time.time(), worker.label)

    def wait(self, timeout: float) -> list[WorkResult]:
        busy = {w.connection: w for w in self._workers if w.running is not None}
        deadline = min((_deadline(w) for w in busy.values()), default=None)
        if deadline is not None:
            timeout = max(0.0, min(timeout, deadline - time.time()))
        for connection in wait(list(busy), timeout) if busy else _sleep(timeout):
            assert isinstance(connection, Connection)
            self._receive(busy[connection])
        for worker in busy.values():
            if worker.running is not None and time.time() >= _deadline(worker):
                self._done.append(self._timed_out(worker))
        self._drain()
        done, self._done = self._done, []
        return done

    def _drain(self) -> None:
        """Queued work to free workers, or to a new one when every worker was lost."""
        while self._queue:
            idle = next((w for w in self._workers if w.running is None), None)
            if idle is None and not self._workers:
                idle = self._spawn()
            if idle is None:
                return
            self._dispatch(idle, self._queue.pop(0))

    def running(self) -> Mapping[str, Running]:
        return {w.running.work.name: w.running for w in self._workers if w.running is not None}

    def cancel(self) -> list[WorkResult]:
        cancelled = [_ended(Running(work, time.time()), "cancelled", None) for work in self._queue]
        self._queue = []
        for worker in [w for w in self._workers if w.running is not None]:
            running = worker.running
            assert running is not None
            self._retire(worker)
            cancelled.append(_ended(running, "cancelled", None))
        return cancelled

    def close(self) -> None:
        """Kill every worker's process group: idle workers hold nothing worth a goodbye, and
        anything a step left running in the background goes with them."""
        for worker in self._workers:
            worker.kill()
        self._workers, self._queue = [], []

    def _spawn(self) -> _Worker:
        ours, theirs = socket.socketpair()
        process = subprocess.Popen(
            [sys.executable, "-m", "nbops.run.executors.worker", str(theirs.fileno())],
            pass_fds=(theirs.fileno(),),
            start_new_session=True,
            stdin=subprocess.DEVNULL,
        )
        theirs.close()
        worker = _Worker(process, Connection(ours.detach()))
        self._workers.append(worker)
        return worker

    def _receive(self, worker: _Worker) -> None:
        running = worker.running
        assert running is not None
        try:
            message = worker.connection.recv()
        except (EOFError, OSError):
            self._retire(worker)
            self._done.append(self._died(running, worker.process.returncode))
            return
        if message[0] == "cell":
            assert self._pipeline is not None
            own = message[1] in work_cells(self._pipeline, running.work)
            timed_from = running.timed_from or (time.time() if own else None)
            worker.running = dataclasses.replace(running, cell=message[1], timed_from=timed_from)
        elif message[0] == "done":
            worker.running = None
            self._done.append(message[1])

    def _retire(self, worker: _Worker) -> None:
        worker.kill()
        self._workers.remove(worker)

    def _timed_out(self, worker: _Worker) -> WorkResult:
        running = worker.running
        assert running is not None and running.work.timeout_s is not None
        self._retire(worker)
        limit = _seconds(running.work.timeout_s)
        return _ended(
            running,
            "timed-out",
            Failure(
                f"the step did not finish within its time limit ({limit}), so its process "
                "group was killed.",
                where=self._where(running),
                fix="Make the step faster, or raise its limit: `timeout=` on its step tag, "
                "or --step-timeout.",
            ),
        )

    def _died(self, running: Running, code: int | None) -> WorkResult:
        if code is not None and code < 0:
            name = signal.Signals(-code).name
            oom = ": out of memory?" if -code == signal.SIGKILL else "."
            message = f"the step's process was killed by {name}{oom}"
            fix = "Check the step's memory use (the kernel log names the OOM killer); run again."
        else:
            message = f"the step's process exited with code {code}."
            fix = "A step must not end its process: remove the os._exit()/exit call from the cell."
        return _ended(running, "failed", Failure(message, where=self._where(running), fix=fix))

    def _where(self, running: Running) -> str:
        assert self._pipeline is not None
        return work_where(self._pipeline, running.work, running.cell)


def _deadline(worker: _Worker) -> float:
    """When the running work's time is up: its limit after its first own cell began (setup's
    imports, paid once per worker, do not count)."""
    running = worker.running
    if running is None or running.work.timeout_s is None or running.timed_from is None:
        return float("inf")
    return running.timed_from + running.work.timeout_s


def _ended(running: Running, status: str, failure: Failure | None) -> WorkResult:
    now = time.time()
    return WorkResult(
        running.work,
        status,
        started_at=running.started_at,
        ended_at=now,
        duration_s=now - running.started_at,
        failure=failure,
        worker=running.worker,
    )


def _sleep(timeout: float) -> list[Connection]:
    time.sleep(min(timeout, 0.05))
    return []


def _seconds(value: float) -> str:
    return f"{value:g}s"
