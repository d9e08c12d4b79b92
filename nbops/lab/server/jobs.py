"""Jobs started from Jupyter (deploy, run, rollback): run off the event loop, progress kept to poll.

A job's worker thread writes its progress through the same callbacks the CLI's progress display
gets (the runner's Listener, the deploy's StageListener); request handlers and widgets read a
snapshot of it. Everything here is plain Python, so a kernel (the ipywidgets) uses it too.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

from nbops.errors import NbopsError
from nbops.run.state import StepRecord

LOG_LINES = 100
KEEP_FINISHED = 50
STATES = ("running", "succeeded", "failed")

log = logging.getLogger(__name__)


class JobNotFound(NbopsError):
    """No job has that id: it never existed, or it finished long ago and was forgotten."""


@dataclass(frozen=True)
class Outcome:
    """How a job's work ended: the result to show (a deployment, a run record) and why it failed."""

    succeeded: bool
    result: dict[str, Any] | None
    error: str | None = None


@dataclass
class Stage:
    name: str
    state: str  # running | succeeded | failed
    message: str
    started_at: float
    ended_at: float | None = None


class Job:
    """One job's progress, written by its worker thread and read by request handlers."""

    def __init__(self, kind: str, target: str, steps: Iterable[str] = ()) -> None:
        self.id = secrets.token_hex(8)
        self.kind = kind
        self.target = target
        self.created_at = time.time()
        self._steps = list(steps)
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._state = "running"
        self._stages: list[Stage] = []
        self._step: dict[str, Any] | None = None
        self._log: deque[str] = deque(maxlen=LOG_LINES)
        self._result: dict[str, Any] | None = None
        self._error: str | None = None
        self._ended_at: float | None = None

    def on_stage(self, name: str, message: str) -> None:
        """A deploy's StageListener: each stage ends the one before; `failed` ends it badly."""
        with self._lock:
            self._log.append(f"{name}: {message}")
            if name == "failed":
                self._end_stage("failed", message)
                return
            self._end_stage("succeeded")
            self._stages.append(Stage(name, "running", message, time.time()))
            if name == "healthy":  # an outcome more than a stage: it ends as it starts
                self._end_stage("succeeded")

    def on_step(self, name: str, event: str, record: StepRecord) -> None:
        """The runner's Listener: the step running now (step k of n); a run's stages are steps."""
        with self._lock:
            if event == "start":
                index = self._steps.index(name) + 1 if name in self._steps else None
                total = len(self._steps)
                self._step = {"index": index, "total": total, "name": name, "state": "running"}
                self._log.append(f"step {name}: running")
                if self.kind == "run":
                    self._end_stage("succeeded")
                    self._stages.append(Stage(name, "running", "running", time.time()))
                return
            outcome = step_outcome(record)
            if self._step is not None and self._step["name"] == name:
                self._step["state"] = record.status
            self._log.append(f"step {name}: {outcome}")
            if self.kind == "run":
                self._end_stage("failed" if record.status == "failed" else "succeeded", outcome)

    def add_log(self, text: str | None) -> None:
        if text:
            with self._lock:
                self._log.extend(text.rstrip().splitlines())

    def finish(self, outcome: Outcome) -> None:
        with self._lock:
            self._end_stage("succeeded" if outcome.succeeded else "failed")
            self._state = "succeeded" if outcome.succeeded else "failed"
            self._result = outcome.result
            self._error = outcome.error
            self._ended_at = time.time()
            if outcome.error:
                self._log.append(f"error: {outcome.error}")
        self._done.set()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def snapshot(self) -> dict[str, Any]:
        """The job JSON the REST API answers (README, "JupyterLab")."""
        with self._lock:
            return {
                "job_id": self.id,
                "kind": self.kind,
                "target": self.target,
                "state": self._state,
                "created_at": self.created_at,
                "ended_at": self._ended_at,
                "stages": [asdict(stage) for stage in self._stages],
                "step": dict(self._step) if self._step else None,
                "log": list(self._log),
                "result": self._result,
                "error": self._error,
            }

    def _end_stage(self, state: str, message: str | None = None) -> None:
        """Close the running stage, if there is one; the caller holds the lock."""
        if self._stages and self._stages[-1].state == "running":
            stage = self._stages[-1]
            stage.state = state
            stage.ended_at = time.time()
            if message is not None:
                stage.message = message


def step_outcome(record: StepRecord) -> str:
    if record.status == "ran":
        return f"ran in {record.duration_s:.2f} s"
    return record.status


Work = Callable[[Job], Outcome]


class JobRegistry:
    """Jobs by id, with a bounded memory of finished ones; one worker runs them in order.

    One worker on purpose: the runner redirects sys.stdout and sys.stderr while a cell runs,
    which is process-wide, so two runs at once would each restore the other's stream. A job
    waiting its turn shows a `queued` stage.
    """

    def __init__(self, *, keep: int = KEEP_FINISHED) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nbops-job")
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self._keep = keep

    def submit(self, kind: str, target: str, work: Work, *, steps: Iterable[str] = ()) -> Job:
        job = Job(kind, target, steps)
        with self._lock:
            waiting_for = sum(1 for other in self._jobs.values() if not other.done)
            self._jobs[job.id] = job
            self._forget_finished()
        if waiting_for:
            job.on_stage("queued", f"waiting for {waiting_for} earlier job(s) to finish")
        self._executor.submit(_execute, job, work)
        return job

    def get(self, job_id: str) -> Job:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise JobNotFound(
                f"no job {job_id!r}.", fix="Jobs are kept in memory, for the server's lifetime."
            )
        return job

    def jobs(self) -> list[Job]:
        """Newest first."""
        with self._lock:
            return list(reversed(self._jobs.values()))

    def shutdown(self, *, wait: bool = False) -> None:
        self._executor.shutdown(wait=wait, cancel_futures=True)

    def _forget_finished(self) -> None:
        """Drop the oldest finished jobs past `keep`; running ones are never dropped."""
        finished = [job_id for job_id, job in self._jobs.items() if job.done]
        while len(self._jobs) > self._keep and finished:
            del self._jobs[finished.pop(0)]


def _execute(job: Job, work: Work) -> None:
    """Run the work; whatever happens, the job ends, so nobody polls it forever."""
    try:
        outcome = work(job)
    except NbopsError as error:
        job.add_log(getattr(error, "details", None))
        outcome = Outcome(False, None, error.render())
    except BaseException as error:  # a bug, or a cell calling sys.exit(): still end the job
        log.exception("nbops job %s (%s of %s) failed", job.id, job.kind, job.target)
        outcome = Outcome(
            False,
            None,
            f"nbops failed unexpectedly ({type(error).__name__}: {error}); "
            "the Jupyter server's log has the traceback.",
        )
    job.finish(outcome)


_shared: JobRegistry | None = None
_shared_lock = threading.Lock()


def shared_registry() -> JobRegistry:
    """The process's registry, for a kernel's widgets (a server keeps its own per app)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = JobRegistry()
        return _shared
