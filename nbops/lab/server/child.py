"""A job's work in a child process: progress relayed to its Job, an end reported whatever happens.

The child is started with multiprocessing's `spawn` context (the server has threads, so `fork`
could copy a held lock) and leads its own process group, so a cancel reaches the commands the
notebook's code started too. What the notebook's code does there (`os._exit`, a segfault,
`sys.exit`, an endless loop) ends or blocks that process only; the Jupyter server goes on.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from nbops.errors import NbopsError
from nbops.lab.server.progress import Job, Outcome
from nbops.run.pids import kill_group_when_orphaned
from nbops.run.state import StepRecord

CONTEXT = multiprocessing.get_context("spawn")
PARENT_CHECK_S = 1.0
CELL_FILENAME_END = ">"  # the runner compiles a cell as "<churn.ipynb cell 7>"

# A job's work: given where to report progress, it returns how the job ended. It is pickled into
# the child, so it is a module-level function (or a functools.partial of one) with plain data.
Work = Callable[[Any], Outcome]


class Relay:
    """The child's end of the pipe, with the Progress callbacks a Job has."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def on_stage(self, name: str, message: str) -> None:
        self._connection.send(("stage", name, message))

    def on_step(self, name: str, event: str, record: StepRecord) -> None:
        self._connection.send(("step", name, event, record))

    def add_log(self, text: str | None) -> None:
        if text:
            self._connection.send(("log", text))


@dataclass(frozen=True)
class Ended:
    """How the child ended: the outcome it reported (None if it died first), and its exit code.

    `aborted` is true when the work did not return (it raised, or the process died), so the
    records it was writing may be left unfinished.
    """

    outcome: Outcome | None
    exitcode: int | None
    aborted: bool


def child_main(connection: Connection, work: Work) -> None:
    """The child's entry point: run the work, send its outcome, exit at once."""
    with contextlib.suppress(OSError):
        os.setsid()  # its own group: a cancel ends what the notebook started as well
    kill_group_when_orphaned(os.getppid(), PARENT_CHECK_S)
    relay = Relay(connection)
    try:
        connection.send(("outcome", work(relay)))
    except BaseException as error:  # every end of user code is reported, SystemExit too
        connection.send(("aborted", *aborted_by(error)))
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        # Not sys.exit: threads the notebook's code left running must not keep the job alive.
        os._exit(0)


def aborted_by(error: BaseException) -> tuple[str, str | None]:
    """What a job's message says when its work raised, and the details for its log."""
    details = "".join(traceback.format_exception(error)).rstrip()
    if isinstance(error, NbopsError):
        return error.render(), getattr(error, "details", None)
    where = cell_of(error)
    if isinstance(error, SystemExit):
        return (
            f"{where}: the notebook's code raised SystemExit({error.code!r}), which ends a "
            "process; the job stopped there. Raise an exception instead of calling sys.exit().",
            details,
        )
    if isinstance(error, KeyboardInterrupt):
        message = f"{where}: the notebook's code raised KeyboardInterrupt; the job stopped there."
        return message, details
    print(details, file=sys.stderr)  # the server's log: this is nbops's bug
    return (
        f"nbops failed unexpectedly ({type(error).__name__}: {error}); "
        "the Jupyter server's log has the traceback.",
        details,
    )


def cell_of(error: BaseException) -> str:
    """The innermost notebook cell in the traceback, as "churn.ipynb cell 7 line 3"."""
    for frame in reversed(traceback.extract_tb(error.__traceback__)):
        name = frame.filename
        if name.startswith("<") and name.endswith(CELL_FILENAME_END) and " cell " in name:
            return f"{name[1:-1]} line {frame.lineno}"
    return "the job"


class Child:
    """A started child, seen from the server: its pid, its end, and how to stop it."""

    def __init__(self, work: Work, name: str) -> None:
        self._reader, writer = CONTEXT.Pipe(duplex=False)
        self._process = CONTEXT.Process(target=child_main, args=(writer, work), name=name)
        self._process.start()
        writer.close()  # only the child writes: its end closing is the end of the stream
        self.pid: int = self._process.pid or 0
        self.started_at = time.time()

    def relay(self, job: Job) -> Ended:
        """Apply what the child reports to `job` until the child has exited."""
        outcome: Outcome | None = None
        aborted = True
        sentinel = self._process.sentinel
        while True:
            ready = wait([self._reader, sentinel])
            if self._reader not in ready:
                break  # it exited, and something it started still holds the pipe open
            message = self._receive()
            if message is None:
                break  # the end of the stream: it exited
            outcome, aborted = _apply(job, message, outcome, aborted)
        while self._reader.poll(0):  # what it sent just before it exited
            message = self._receive()
            if message is None:
                break
            outcome, aborted = _apply(job, message, outcome, aborted)
        self._process.join()
        self._reader.close()
        return Ended(outcome, self._process.exitcode, aborted)

    def terminate(self) -> None:
        """SIGTERM to the child's process group: the notebook's commands end with it."""
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL to its group, if the child is still there (a cancel's grace period is over)."""
        if self._process.exitcode is None:
            self._signal(signal.SIGKILL)

    def _signal(self, sig: signal.Signals) -> None:
        try:
            os.killpg(self.pid, sig)
        except (ProcessLookupError, PermissionError):  # not (yet) leading its own group
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def _receive(self) -> tuple[Any, ...] | None:
        try:
            message: tuple[Any, ...] = self._reader.recv()
        except (EOFError, OSError):
            return None
        return message


def _apply(
    job: Job, message: tuple[Any, ...], outcome: Outcome | None, aborted: bool
) -> tuple[Outcome | None, bool]:
    kind, *args = message
    if kind == "stage":
        job.on_stage(*args)
    elif kind == "step":
        job.on_step(*args)
    elif kind == "log":
        job.add_log(*args)
    elif kind == "outcome":
        return args[0], False
    elif kind == "aborted":
        error, details = args
        job.add_log(details)
        return Outcome(False, None, error), True
    return outcome, aborted


def describe_exit(exitcode: int | None) -> str:
    """How a child that never reported its outcome ended, in words."""
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"was killed by {name}"
    return f"exited with code {exitcode}"
