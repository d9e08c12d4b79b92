"""The inline executor: each work item runs here, in this process, when it is submitted.

The fastest for small notebooks (no process to start, values stay in memory between steps) and
what most tests use; a cell that ends its process ends this one, and time limits are not
enforced (nothing can stop code running in this thread).
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from nbops.model.pipeline import Pipeline
from nbops.run.executors import Running
from nbops.run.work import StepWork, WorkResult, perform


class InlineExecutor:
    name = "inline"
    slots = 1

    def __init__(self) -> None:
        self._pipeline: Pipeline | None = None
        self._done: list[WorkResult] = []
        self._running: dict[str, Running] = {}

    def start(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline

    def submit(self, work: StepWork) -> None:
        assert self._pipeline is not None, "start() before submit()"
        self._running[work.name] = Running(work, time.time(), "inline")
        try:
            result = perform(work, self._pipeline)
        finally:
            del self._running[work.name]
        result.worker = "inline"
        self._done.append(result)

    def wait(self, timeout: float) -> list[WorkResult]:
        done, self._done = self._done, []
        return done

    def running(self) -> Mapping[str, Running]:
        return self._running

    def cancel(self) -> list[WorkResult]:
        return []

    def close(self) -> None:
        self._done = []
