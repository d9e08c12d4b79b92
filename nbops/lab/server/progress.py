"""A job's progress as the REST API and widgets show it: stages, steps k of n, log tail, its end.

Its callbacks are the ones the CLI's progress display gets (the runner's Listener, the deploy's
StageListener). In the server they are called by the thread that relays a job's child process;
request handlers read a snapshot. Independent steps run side by side, so several can be running
at once: each is tracked by its name from its start to its end.
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
# How a step ends that fails its stage in a run job.
FAILED_STEPS = ("failed", "timed-out", "cancelled")
# The keys of a job's `step` (a running step in `running_steps` also has `started_at`).
STEP_KEYS = ("index", "total", "name", "state")


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
        # The step started last, and the steps running now by name, in the order they started;
        # a step's dict can be in both, so its end shows in each.
        self._step: dict[str, Any] | None = None
        self._running: dict[str, dict[str, Any]] = {}
        self._ended: set[str] = set()
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
        job._running = {step["name"]: step for step in snapshot.get("running_steps", [])}
        if job._running:  # the one `step` shows
            job._step = list(job._running.values())[-1]
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
        """The runner's Listener: the steps running now (step k of n, several when steps run side
        by side); each step of a run job is its own stage."""
        with self._lock:
            if event == "start":
                cached = record.status == "cached"  # a cache hit starts and ends at once
                self._start_step(name, logged=not cached)
                if not cached:
                    return
            elif name in self._ended and name not in self._running:
                return  # the end of a cache hit, already shown
            self._end_step(name, record)

    def add_log(self, text: str | None) -> None:
        if text:
            with self._lock:
                self._log.extend(text.rstrip().splitlines())

    def finish(self, outcome: Outcome) -> None:
        with self._lock:
            for stage in self._stages:
                if stage.state == "running":
                    self._close(stage, "succeeded" if outcome.succeeded else "failed")
            for step in self._running.values():
                step["state"] = outcome.final_state
            self._running.clear()
            if self._step is not None and self._step["state"] == "running":  # an old journal's
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
            steps = [repr(name) for name in self._running]
            if len(steps) == 1:
                return f"while step {steps[0]} ran"
            if steps:
                return f"while steps {', '.join(steps[:-1])} and {steps[-1]} ran"
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
                "step": self._shown_step(),
                "running_steps": [dict(step) for step in self._running.values()],
                "log": list(self._log),
                "result": self._result,
                "error": self._error,
            }

    def _start_step(self, name: str, *, logged: bool = True) -> None:
        """The caller holds the lock."""
        index = self._steps.index(name) + 1 if name in self._steps else None
        now = time.time()
        step = {
            "index": index,
            "total": len(self._steps),
            "name": name,
            "state": "running",
            "started_at": now,
        }
        self._running.pop(name, None)  # started again: it moves to the end
        self._running[name] = self._step = step
        self._ended.discard(name)
        if logged:
            self._log.append(f"step {name}: running")
        if self.kind != "run":
            return
        for stage in self._stages:  # `queued`, say: what ran before the steps
            if stage.state == "running" and stage.name not in self._running:
                self._close(stage, "succeeded")
        if self._running_stage(name) is None:
            self._stages.append(Stage(name, "running", "running", now))

    def _end_step(self, name: str, record: StepRecord) -> None:
        """The caller holds the lock."""
        outcome = step_outcome(record)
        step = self._running.pop(name, None)
        if step is not None:
            step["state"] = record.status
        if self._step is not None and self._step["name"] == name:
            self._step["state"] = record.status
        self._ended.add(name)
        self._log.append(f"step {name}: {outcome}")
        stage = self._running_stage(name) if self.kind == "run" else None
        if stage is not None:
            self._close(stage, "failed" if record.status in FAILED_STEPS else "succeeded", outcome)

    def _shown_step(self) -> dict[str, Any] | None:
        """`step`: the running step started last or, when none runs, the step started last; the
        caller holds the lock."""
        step = list(self._running.values())[-1] if self._running else self._step
        return {key: step[key] for key in STEP_KEYS} if step else None

    def _running_stage(self, name: str) -> Stage | None:
        return next((s for s in self._stages if s.name == name and s.state == "running"), None)

    def _end_stage(self, state: str, message: str | None = None) -> None:
        """Close the running stage of a deploy (its stages run one at a time), if there is one;
        the caller holds the lock."""
        if self._stages and self._stages[-1].state == "running":
            self._close(self._stages[-1], state, message)

    @staticmethod
    def _close(stage: Stage, state: str, message: str | None = None) -> None:
        stage.state = state
        stage.ended_at = time.time()
        if message is not None:
            stage.message = message


def step_outcome(record: StepRecord) -> str:
    if record.status == "ran":
        return f"ran in {record.duration_s:.2f} s"
    if record.status == "timed-out":
        return f"timed out after {record.duration_s:.2f} s"
    return record.status  # cached, failed, cancelled
