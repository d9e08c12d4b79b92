"""Executors run the runner's work: `inline` in this process, `process` in worker processes,
`dask` on a Dask cluster. The runner decides what runs and when; an executor only runs it.

Every executor has the same small interface (`Executor`), and every one runs work through
`nbops.run.work.perform`, so the cache, the store and the records do not depend on where a
step ran.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from nbops.errors import NbopsError

if TYPE_CHECKING:  # a worker process starts from this package: it imports the runner's work late
    from nbops.model.pipeline import Pipeline
    from nbops.run.work import StepWork, WorkResult

EXECUTORS = ("inline", "process", "dask")


@dataclass(frozen=True)
class Running:
    """A work item that is running: since when, where, and the cell it is in."""

    work: StepWork
    started_at: float
    worker: str = ""
    cell: int | None = None
    # When the work's own cells began (after setup): a time limit counts from there.
    timed_from: float | None = None


class Executor(Protocol):
    """Runs work items; `slots` of them at once."""

    name: str
    slots: int

    def start(self, pipeline: Pipeline) -> None:
        """Make the pipeline known to where work runs, before its first work is submitted."""

    def submit(self, work: StepWork) -> None:
        """Start the work; the runner submits only while fewer than `slots` are running."""

    def wait(self, timeout: float) -> list[WorkResult]:
        """The work that ended (ran, failed, timed out) within `timeout` seconds; maybe none."""

    def running(self) -> Mapping[str, Running]:
        """The work running now, by work name."""

    def cancel(self) -> list[WorkResult]:
        """Stop all running work now; a `cancelled` result for each."""

    def close(self) -> None:
        """Stop every process this executor started; nothing is left running."""


class UnknownExecutor(NbopsError):
    """--executor names no executor."""


class ExecutorUnavailable(NbopsError):
    """The executor cannot start here: a package it needs is missing, or its cluster is out
    of reach."""


def default_jobs() -> int:
    """As many steps at once as this process may use cores."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def make_executor(name: str, *, jobs: int | None = None, **options: Any) -> Executor:
    """The executor called `name`: `inline`, `process` (the default for the CLI) or `dask`."""
    if name == "inline":
        from nbops.run.executors.inline import InlineExecutor

        return InlineExecutor()
    if name == "process":
        from nbops.run.executors.process import ProcessExecutor

        return ProcessExecutor(jobs or default_jobs())
    if name == "dask":
        from nbops.run.executors.dask import DaskExecutor

        return DaskExecutor(jobs=jobs, **options)
    raise UnknownExecutor(
        f"--executor {name!r} is not an executor.", fix=f"Use one of: {', '.join(EXECUTORS)}."
    )
