"""The dask executor: each work item is a task on a Dask cluster, one per worker thread.

Without a scheduler address it starts a LocalCluster of worker processes with one thread each,
so a step has a process to itself as with the process executor, and stops it on close. The
pipeline is scattered to every worker once per run; a task carries only its work item and
returns only its result, because artifacts travel through the artifact store, not the
scheduler. A worker that dies during a step (SIGKILL, the out-of-memory killer) is Dask's to
handle: the scheduler runs the task again elsewhere, up to its `allowed-failures`; only when
the scattered pipeline died with it (a lone worker) is the task sent again from here. A thread
cannot be stopped, so a time limit (or a cancel, on a cluster we started) stops the worker
process running the step, and its nanny starts a fresh one; on a shared cluster whose workers
have several threads, the other steps that worker ran are run again elsewhere by Dask.
"""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from nbops.model.pipeline import Pipeline
from nbops.run.executors import ExecutorUnavailable, Running, default_jobs
from nbops.run.work import Failure, StepWork, WorkResult, perform, work_where

try:
    import dask
    import distributed
except ImportError as missing:  # an extra: nbops[dask]
    raise ExecutorUnavailable(
        f"the dask executor needs Dask's distributed package ({missing}).",
        fix="Install it (pip install 'nbops[dask]'), or use --executor process.",
    ) from None

# The Dask event topic a task tells the client on where it runs and which cell it is in.
PROGRESS_TOPIC = "nbops-work"
RETRY_FIX = "Run again: the steps that finished are cached."
# How often a task the cluster lost is sent again; as Dask's own allowed-failures.
RESENDS = 3
WORKERS_WAIT_S = 60.0  # for a worker to join: a restarted lone worker takes a second or two


@dataclass(frozen=True)
class _Seen:
    """What a task's events said: the worker and process running it, since when, the cell."""

    worker: str
    pid: int
    started_at: float
    cell: int | None


@dataclass(frozen=True)
class _Task:
    work: StepWork
    future: distributed.Future[WorkResult]
    submitted_at: float
    resent: int = 0  # times the cluster lost it and it was sent again


class DaskExecutor:
    name = "dask"

    def __init__(
        self,
        jobs: int | None = None,
        scheduler: str | None = None,
        retries: int = 0,
        dashboard: Callable[[str], None] | None = None,
    ) -> None:
        self.retries = retries
        self._cluster = None if scheduler else _local_cluster(jobs or default_jobs())
        self.client = _connect(scheduler, self._cluster)
        self.slots = max(1, sum(self.client.nthreads().values()))
        self._tasks: dict[str, _Task] = {}  # by task key: test works share a name
        self._seen: dict[str, _Seen] = {}
        self._ended = threading.Event()
        self._numbers = itertools.count(1)
        self._pipeline: Pipeline | None = None
        self._scattered: distributed.Future[Pipeline] | None = None
        self.client.subscribe_topic(PROGRESS_TOPIC, self._hear)
        self.dashboard_link = _dashboard_link(self.client, self._cluster)
        if dashboard is not None and self.dashboard_link:
            dashboard(self.dashboard_link)

    def start(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline
        self._scattered = self._scatter(pipeline)
        # Forget what late events said about tasks that ended. A snapshot of the keys: events
        # arrive on the client's thread.
        for key in [k for k in list(self._seen) if k not in self._tasks]:
            self._seen.pop(key, None)

    def submit(self, work: StepWork) -> None:
        self._send(work, resent=0)

    def wait(self, timeout: float) -> list[WorkResult]:
        self._ended.wait(min(timeout, self._until_deadline()))
        self._ended.clear()  # a task ending after this is collected now or on the next wait
        ended = []
        for key in [k for k, task in list(self._tasks.items()) if task.future.done()]:
            if self._lost(key):
                self._resend(key)
            else:
                ended.append(self._result(key))
        return ended + [self._time_out(key) for key in self._overdue()]

    def running(self) -> Mapping[str, Running]:
        return {task.work.name: self._running(key, task) for key, task in self._tasks.items()}

    def cancel(self) -> list[WorkResult]:
        tasks, self._tasks = self._tasks, {}
        self.client.cancel([task.future for task in tasks.values()], force=True)
        cancelled = []
        for key, task in tasks.items():
            seen = self._seen.pop(key, None)
            # On a cluster we started the step's code really stops; a shared cluster's
            # workers are not ours to restart, so there a running step ends on its own.
            if seen is not None and self._cluster is not None:
                self._stop_worker(seen)
            cancelled.append(_ended(task, seen, "cancelled", None))
        return cancelled

    def close(self) -> None:
        if self._tasks:  # else the cluster waits for the running steps before it stops
            self.cancel()
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()

    def _send(self, work: StepWork, resent: int) -> None:
        assert self._pipeline is not None and self._scattered is not None, "start() first"
        if self._scattered.status != "finished":  # every worker holding it died
            self._scattered = self._scatter(self._pipeline)
        key = f"{work.name}-{work.run_id}-{next(self._numbers)}"
        future = self.client.submit(
            perform_on_worker,
            work,
            self._scattered,
            key=key,
            pure=False,
            retries=self.retries,
        )
        self._tasks[key] = _Task(work, future, time.time(), resent)
        future.add_done_callback(lambda _: self._ended.set())

    def _lost(self, key: str) -> bool:
        """Whether the cluster dropped the task (not we) and it may be sent again. Dask reruns
        a task whose worker died, but not one whose scattered input died with every worker
        holding it: data it was given, it cannot recompute."""
        task = self._tasks[key]
        return task.future.status in ("cancelled", "lost") and task.resent < RESENDS

    def _resend(self, key: str) -> None:
        task = self._tasks.pop(key)
        self._seen.pop(key, None)
        self._send(task.work, task.resent + 1)

    def _scatter(self, pipeline: Pipeline) -> distributed.Future[Pipeline]:
        try:  # a remote scheduler may have no worker yet; a lone one may be restarting
            self.client.wait_for_workers(1, timeout=WORKERS_WAIT_S)
        except distributed.TimeoutError:  # asyncio's on Python 3.10
            raise ExecutorUnavailable(
                f"no Dask worker joined the scheduler within {WORKERS_WAIT_S:g}s.",
                fix="Start workers (dask worker SCHEDULER_ADDRESS), then run again.",
            ) from None
        # hash=False: a random key, so the pipeline is never tokenized (pickled) to name it.
        scattered: distributed.Future[Pipeline] = self.client.scatter(
            pipeline, broadcast=True, hash=False
        )
        return scattered

    def _hear(self, event: tuple[float, dict[str, Any]]) -> None:
        """A task's event, on the client's thread; the first one marks when the step started,
        later ones (another cell, or another worker after one died) where it is now."""
        said = event[1]
        earlier = self._seen.get(said["key"])
        started_at = earlier.started_at if earlier is not None else said["at"]
        self._seen[said["key"]] = _Seen(said["worker"], said["pid"], started_at, said["cell"])

    def _running(self, key: str, task: _Task) -> Running:
        seen = self._seen.get(key)
        if seen is None:  # queued, or its first event is on the way
            return Running(task.work, task.submitted_at)
        return Running(task.work, seen.started_at, seen.worker, seen.cell)

    def _result(self, key: str) -> WorkResult:
        task = self._tasks.pop(key)
        seen = self._seen.pop(key, None)
        if task.future.status == "finished":
            return task.future.result()
        return _ended(task, seen, "failed", self._task_failure(task, seen))

    def _task_failure(self, task: _Task, seen: _Seen | None) -> Failure:
        """Why a task ended without a result: perform turns a failing cell into a result, so
        this is the cluster (workers dying) or the worker's environment."""
        where = self._where(task, seen)
        if task.future.status != "error":
            return Failure(
                f"the step's Dask task was {task.future.status}: the cluster lost it (it "
                "restarted, or every worker holding the task's inputs died).",
                where=where,
                fix=RETRY_FIX,
            )
        error = task.future.exception()
        if isinstance(error, distributed.KilledWorker):
            return Failure(
                "every Dask worker that ran the step died while running it: out of memory?",
                where=where,
                fix="Check the step's memory use in the workers' logs; Dask tries a task on "
                "as many workers as distributed.scheduler.allowed-failures allows, plus one.",
            )
        return Failure(
            f"the step's Dask task raised {type(error).__name__}: {error}",
            where=where,
            fix="Check that the workers run the same Python with nbops and the notebook's "
            "imports installed; then run again.",
        )

    def _until_deadline(self) -> float:
        now = time.time()
        deadlines = [self._deadline(key, task) for key, task in self._tasks.items()]
        return max(0.0, min(deadlines, default=float("inf")) - now)

    def _deadline(self, key: str, task: _Task) -> float:
        """When the step's time limit runs out, counted from its first start on a worker."""
        seen = self._seen.get(key)
        if seen is None or task.work.timeout_s is None:
            return float("inf")
        return seen.started_at + task.work.timeout_s

    def _overdue(self) -> list[str]:
        now = time.time()
        return [key for key, task in self._tasks.items() if now >= self._deadline(key, task)]

    def _time_out(self, key: str) -> WorkResult:
        task = self._tasks.pop(key)
        seen = self._seen.pop(key)
        assert task.work.timeout_s is not None
        self.client.cancel([task.future], force=True)  # before the worker dies: no retry
        self._stop_worker(seen)
        limit = f"{task.work.timeout_s:g}s"
        failure = Failure(
            f"the step did not finish within its time limit ({limit}), so the Dask worker "
            f"running it ({seen.worker}) was restarted.",
            where=self._where(task, seen),
            fix="Make the step faster, or raise its limit: `timeout=` on its step tag, "
            "or --step-timeout.",
        )
        return _ended(task, seen, "timed-out", failure)

    def _stop_worker(self, seen: _Seen) -> None:
        """Stop the code a worker runs: the only way to stop a thread is to end its process."""
        if self._cluster is not None:
            # Our cluster, on this machine: SIGKILL is immediate (a nanny restart first waits
            # 4 s for the worker to close), and the nanny starts a fresh worker at once.
            with contextlib.suppress(ProcessLookupError):
                os.kill(seen.pid, signal.SIGKILL)
        else:
            self.client.restart_workers([seen.worker], raise_for_error=False)

    def _where(self, task: _Task, seen: _Seen | None) -> str:
        assert self._pipeline is not None
        return work_where(self._pipeline, task.work, seen.cell if seen is not None else None)


def perform_on_worker(work: StepWork, pipeline: Pipeline) -> WorkResult:
    """The Dask task: perform the work, telling the client where it runs and in which cell."""
    worker = distributed.get_worker()
    key = worker.get_current_task()

    def tell(cell: int | None) -> None:
        said = {"key": key, "worker": worker.address, "pid": os.getpid(), "cell": cell}
        worker.log_event(PROGRESS_TOPIC, {**said, "at": time.time()})

    tell(None)
    result = perform(work, pipeline, on_cell=tell)
    result.worker = worker.address
    return result


def _local_cluster(workers: int) -> distributed.LocalCluster:
    """Worker processes on this machine, one thread each; the dashboard on a free port when
    its package (bokeh) is installed."""
    options: dict[str, Any] = {
        "n_workers": workers,
        "threads_per_worker": 1,
        "processes": True,
        "silence_logs": logging.WARNING,
    }
    settings = {
        # A worker takes one task at a time; while one restarts, the next waits at the
        # scheduler for a free worker instead of queueing behind a running step.
        "distributed.scheduler.worker-saturation": 1.0,
        # The memory manager would drop the pipeline's broadcast copies down to one; scattered
        # data has no task to recompute it, so the death of that one worker would cancel every
        # running step. With a copy on each worker, a dead worker loses nothing.
        "distributed.scheduler.active-memory-manager.start": False,
    }
    with dask.config.set(settings):
        address = ":0" if _has_dashboard() else None
        return distributed.LocalCluster(dashboard_address=address, **options)


def _connect(scheduler: str | None, cluster: distributed.LocalCluster | None) -> distributed.Client:
    try:
        return distributed.Client(cluster if cluster is not None else scheduler)
    except OSError as error:  # a timeout connecting is an OSError too
        if cluster is not None:
            cluster.close()
        raise ExecutorUnavailable(
            f"cannot connect to the Dask scheduler at {scheduler or cluster}: {error}.",
            fix="Check the address (tcp://HOST:8786) and that `dask scheduler` runs there.",
        ) from None


def _has_dashboard() -> bool:
    return importlib.util.find_spec("bokeh") is not None


def _dashboard_link(client: distributed.Client, cluster: distributed.LocalCluster | None) -> str:
    """The dashboard's address, or "" when there is none. A scheduler advertises its HTTP
    server whether or not bokeh serves a dashboard there: ours is known to by bokeh being
    installed here; another's is taken at its word."""
    if cluster is not None and not _has_dashboard():
        return ""
    try:
        link = client.dashboard_link
    except KeyError:  # the scheduler serves no HTTP at all
        return ""
    return link if isinstance(link, str) else ""


def _ended(task: _Task, seen: _Seen | None, status: str, failure: Failure | None) -> WorkResult:
    started_at = seen.started_at if seen is not None else task.submitted_at
    now = time.time()
    return WorkResult(
        task.work,
        status,
        started_at=started_at,
        ended_at=now,
        duration_s=now - started_at,
        failure=failure,
        worker=seen.worker if seen is not None else "",
    )
