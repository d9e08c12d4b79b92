"""Jobs' work for the registry's tests: module-level functions, as a job's child process imports
them (spawn pickles a function by its module and name)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from nbops.errors import NbopsError
from nbops.lab.server.progress import Outcome, Progress


def succeeds(job: Progress) -> Outcome:
    job.on_stage("working", "doing it")
    job.add_log("done it")
    return Outcome(True, {"pid": os.getpid()})


def waits_for(path: Path, job: Progress) -> Outcome:
    """Works until `path` exists (the test's way to hold a job running)."""
    job.on_stage("waiting", str(path))
    deadline = time.monotonic() + 60
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return Outcome(path.exists(), {"waited": path.name})


def spins(job: Progress) -> Outcome:
    job.on_stage("spinning", "forever")
    while True:
        pass


def ignores_sigterm(job: Progress) -> Outcome:
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    job.on_stage("stubborn", "ignores SIGTERM")
    while True:
        time.sleep(0.01)


def user_error(job: Progress) -> Outcome:
    raise NbopsError("no run to build from.", fix="Run it first.")


def bug(job: Progress) -> Outcome:
    raise KeyError("oops")


def exits(job: Progress) -> Outcome:
    sys.exit(3)


def interrupts(job: Progress) -> Outcome:
    raise KeyboardInterrupt


def dies(job: Progress) -> Outcome:
    job.on_stage("dying", "os._exit(1)")
    os._exit(1)


def result_of(job: Any) -> Any:
    return job.snapshot()["result"]
