"""A job's progress as the REST API and widgets show it: stages, step k of n, log tail, its end.

Its callbacks are the ones the CLI's progress display gets (the runner's Listener, the deploy's
StageListener). In the server they are called by the thread that relays a job's child process;
request handlers read a snapshot.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from nbops.run.state import StepRecord

LOG_LINES = 100
# running: started or waiting its turn (a `queued` stage says so); the others are ends.
STATES = ("running", "succeeded", "failed", "cancelled", "interrupted")


class Progress(Protocol):
    """What a job's work reports to: a Job in the server, its relay in the job's child process."""

    def on_stage(self, name: str, message: str) -> None: ...

    def on_step(self, name: str, event: str, record: StepRecord) -> None: ...

    def add_log(self, text: str | None) -> None: ...


@dataclass(frozen=True)
class Outcome:
    """How a job's work ended: the result to show (a deployment, a run record) and why it failed.

    `state` is set when the job did not end by itself: `cancelled` (a user asked) or
    `interrupted` (the Jupyter server stopped while it ran).
    """

    succeeded: bool
    result: dict[str, Any] | None
    error: str | None = None
    state: str | None = None

    @property
    def final_state(self) -> str:
        return self.state or ("succeeded" if self.succeeded else "failed")


@dataclass
class Stage:
    name: str
    state: str  # running | succeeded | failed
    message: str
    started_at: float
    ended_at: float | None = None


class Job:
    """One job's progress, written by the thread that relays its work and read by handlers."""

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

    @classmethod
    def restored(cls, snapshot: dict[str, Any]) -> Job:
        """A job as a snapshot of it was kept (the journal of an earlier server); one kept while
        running is still running here, for the caller to end."""
        job = cls(snapshot["kind"], snapshot["target"])
        job.id = snapshot["job_id"]
        job.created_at = snapshot["created_at"]
        job._state = snapshot["state"]
        job._stages = [Stage(**stage) for stage in snapshot["stages"]]
        job._step = snapshot["step"]
        job._log.extend(snapshot["log"])
        job._result = snapshot["result"]
        job._error = snapshot["error"]
        job._ended_at = snapshot["ended_at"]
        if job._state != "running":
            job._done.set()
        return job

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
            if self._step is not None and self._step["state"] == "running":
                self._step["state"] = outcome.final_state
            self._state = outcome.final_state
            self._result = outcome.result
            self._error = outcome.error
            self._ended_at = time.time()
            if outcome.error:
                self._log.append(f"{outcome.state or 'error'}: {outcome.error}")
        self._done.set()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def where(self) -> str:
        """Where the job is now, for a message: "while step 'fit' ran", "at stage 'starting'"."""
        with self._lock:
            if self._step is not None and self._step["state"] == "running":
                return f"while step {self._step['name']!r} ran"
            running = [s.name for s in self._stages if s.state == "running"]
        if running == ["queued"]:
            return "while it waited its turn"
        return f"at stage {running[-1]!r}" if running else "before its first step"

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
