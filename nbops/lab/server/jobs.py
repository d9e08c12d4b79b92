"""Jobs started from Jupyter (deploy, run, rollback): each in a child process, progress to poll.

A job's work runs in a child process (nbops.lab.server.child), so nothing the notebook's code does
can take the server down; a thread per job relays its progress to the Job that handlers and
widgets read. Jobs of different notebooks run at once; a job waits (a `queued` stage says for
what) while an earlier one shares its notebook or its deployment name, as the runner's cache and
a deployment's versions are one notebook's and one name's. A job can be cancelled: its process
group gets SIGTERM, then SIGKILL after a grace period, and the records it left unfinished are
ended (nbops.lab.server.reconcile). With a journal, a job still marked running when a server
starts again is marked interrupted.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing.util  # noqa: F401 - imported before the atexit hook below registers
import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field

from nbops.errors import NbopsError
from nbops.lab.server.child import Child, Ended, Work, describe_exit
from nbops.lab.server.journal import Entry, Journal
from nbops.lab.server.progress import STATES, Job, Outcome, Stage, step_outcome
from nbops.lab.server.reconcile import Footprint, settle

__all__ = ["STATES", "Job", "JobRegistry", "Outcome", "Stage", "Work", "step_outcome"]

KEEP_FINISHED = 50
CANCEL_GRACE_S = 5.0
STOPPED_SERVER = "the Jupyter server stopped"

log = logging.getLogger(__name__)


class JobNotFound(NbopsError):
    """No job has that id: it never existed, or it finished long ago and was forgotten."""


class JobEnded(NbopsError):
    """A cancel of a job that has already ended."""


@dataclass
class Ticket:
    """A job with what the registry needs to run, schedule and stop it."""

    job: Job
    work: Work | None
    keys: frozenset[str] = frozenset()
    footprint: Footprint | None = None
    started: bool = False
    child: Child | None = None
    stop_as: str | None = None  # cancelled | interrupted
    stop_reason: str = ""
    timers: list[threading.Timer] = field(default_factory=list)


class JobRegistry:
    """Jobs by id, with a bounded memory of finished ones; each running job has its own child."""

    def __init__(
        self,
        *,
        keep: int = KEEP_FINISHED,
        grace_s: float = CANCEL_GRACE_S,
        journal: Journal | None = None,
    ) -> None:
        self._tickets: OrderedDict[str, Ticket] = OrderedDict()
        self._lock = threading.RLock()
        self._threads: list[threading.Thread] = []
        self._keep = keep
        self._grace_s = grace_s
        self._journal = journal
        _registries.add(self)

    def submit(
        self,
        kind: str,
        target: str,
        work: Work,
        *,
        steps: Iterable[str] = (),
        keys: Iterable[str] = (),
        footprint: Footprint | None = None,
    ) -> Job:
        """Start the work in a child process now, or once the jobs it waits for have ended."""
        ticket = Ticket(Job(kind, target, steps), work, frozenset(keys), footprint)
        with self._lock:
            blocker = self._blocker(ticket)
            self._tickets[ticket.job.id] = ticket
            self._forget_finished()
            if blocker is None:
                self._start(ticket)
            else:
                ticket.job.on_stage("queued", f"waiting for {describe(blocker.job)} to finish")
        self._save(ticket)
        return ticket.job

    def get(self, job_id: str) -> Job:
        return self._ticket(job_id).job

    def jobs(self) -> list[Job]:
        """Newest first."""
        with self._lock:
            return [ticket.job for ticket in reversed(self._tickets.values())]

    def cancel(self, job_id: str) -> Job:
        """Stop a job: a waiting one at once, a running one's process by SIGTERM, then SIGKILL
        after the grace period. The job ends `cancelled` when its process has gone."""
        ticket = self._ticket(job_id)
        job = ticket.job
        if job.done:
            state = job.snapshot()["state"]
            raise JobEnded(
                f"job {job_id} ({describe(job)}) has already ended: it {state}.",
                fix="Only a running or queued job can be cancelled.",
            )
        self._stop(ticket, "cancelled", f"cancelled {job.where()}.")
        return job

    def recover(self) -> list[Job]:
        """Read the journal: jobs a stopped server left running are marked interrupted, and the
        records they left unfinished ended. Called once, before any job is submitted."""
        if self._journal is None:
            return []
        recovered = []
        for entry in self._journal.entries()[-self._keep :]:
            job = Job.restored(entry.snapshot)
            ticket = Ticket(job, None, footprint=entry.footprint)
            if not job.done:
                reason = f"{STOPPED_SERVER} {job.where()}."
                if entry.footprint is not None and entry.started_at is not None:
                    job.add_log("\n".join(self._settle(ticket, entry, reason, "interrupted")))
                job.finish(Outcome(False, None, reason, state="interrupted"))
                self._journal.save(self._entry(ticket))
            with self._lock:
                self._tickets[job.id] = ticket
            recovered.append(job)
        return recovered

    def shutdown(self, *, wait: bool = False, timeout: float | None = None) -> None:
        """Interrupt every job (the server is stopping); with `wait`, until each has ended."""
        with self._lock:
            tickets = [t for t in self._tickets.values() if not t.job.done]
        for ticket in tickets:
            reason = f"{STOPPED_SERVER} {ticket.job.where()}."
            self._stop(ticket, "interrupted", reason)
        if wait:
            for thread in list(self._threads):
                thread.join(timeout if timeout is not None else self._grace_s + 10)

    # scheduling

    def _blocker(self, ticket: Ticket) -> Ticket | None:
        """The earliest unfinished job before this one that shares a notebook or name with it."""
        for other in self._tickets.values():
            if other is ticket:
                return None
            if not other.job.done and other.keys & ticket.keys:
                return other
        return None

    def _start(self, ticket: Ticket) -> None:
        """Start the job's child from a thread of its own; the caller holds the lock."""
        ticket.started = True
        thread = threading.Thread(
            target=self._supervise, args=(ticket,), name=f"nbops-job-{ticket.job.id}", daemon=True
        )
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def _release(self, ended: Ticket) -> None:
        """A job ended: start the waiting ones nothing blocks any more."""
        with self._lock:
            for ticket in self._tickets.values():
                if not ticket.started and not ticket.job.done and self._blocker(ticket) is None:
                    self._start(ticket)

    def _supervise(self, ticket: Ticket) -> None:
        """Run the job's child to its end; whatever happens, the job ends."""
        job = ticket.job
        assert ticket.work is not None
        try:
            child = Child(ticket.work, name=f"nbops-job-{job.id}")
        except Exception as error:  # no process could be started: the job cannot run
            log.exception("nbops job %s: could not start its process", job.id)
            job.finish(Outcome(False, None, f"could not start the job's process: {error}"))
            self._save(ticket)
            self._release(ticket)
            return
        with self._lock:
            ticket.child = child
            stopping = ticket.stop_as is not None
        self._save(ticket)
        if stopping:  # cancelled while its process was starting
            self._signal(ticket)
        ended = child.relay(job)
        for timer in ticket.timers:
            timer.cancel()
        job.finish(self._ending(ticket, child, ended))
        self._save(ticket)
        self._release(ticket)

    def _ending(self, ticket: Ticket, child: Child, ended: Ended) -> Outcome:
        """The job's outcome, and its unfinished records ended when it did not finish itself."""
        entry = self._entry(ticket)
        if ended.outcome is not None and not ended.aborted:
            return ended.outcome  # it finished, even if a cancel came too late to matter
        if ticket.stop_as is not None:
            outcome = Outcome(False, None, ticket.stop_reason, state=ticket.stop_as)
            status = "interrupted"
        elif ended.outcome is not None:
            outcome, status = ended.outcome, "failed"  # it raised: SystemExit, a bug...
        else:
            error = (
                f"the job's process {describe_exit(ended.exitcode)} {ticket.job.where()}, before "
                "the job finished: the notebook's code called os._exit() or crashed. The Jupyter "
                "server is unaffected."
            )
            outcome, status = Outcome(False, None, error), "failed"
        if ticket.footprint is not None:
            ticket.job.add_log("\n".join(self._settle(ticket, entry, outcome.error or "", status)))
        return outcome

    def _settle(self, ticket: Ticket, entry: Entry, reason: str, status: str) -> list[str]:
        assert ticket.footprint is not None
        since = entry.started_at or ticket.job.created_at
        try:
            return settle(
                ticket.footprint, pid=entry.pid, since=since, reason=reason, run_status=status
            )
        except Exception as error:  # the job still ends; the server's log says why
            log.exception("nbops job %s: its records could not be ended", ticket.job.id)
            return [f"its records could not be ended: {error}"]

    # stopping

    def _stop(self, ticket: Ticket, state: str, reason: str) -> None:
        with self._lock:
            if ticket.stop_as is None:
                ticket.stop_as, ticket.stop_reason = state, reason
            started, child = ticket.started, ticket.child
        if not started:  # it never ran: nothing to end but the job
            ticket.job.finish(Outcome(False, None, ticket.stop_reason, state=ticket.stop_as))
            self._save(ticket)
            self._release(ticket)
        elif child is not None:
            self._signal(ticket)

    def _signal(self, ticket: Ticket) -> None:
        """SIGTERM now, SIGKILL after the grace period if it is still there."""
        child = ticket.child
        assert child is not None
        child.terminate()
        timer = threading.Timer(self._grace_s, child.kill)
        timer.daemon = True
        ticket.timers.append(timer)
        timer.start()

    # memory and journal

    def _ticket(self, job_id: str) -> Ticket:
        with self._lock:
            ticket = self._tickets.get(job_id)
        if ticket is None:
            raise JobNotFound(
                f"no job {job_id!r}.", fix="Jobs are kept in memory, for the server's lifetime."
            )
        return ticket

    def _forget_finished(self) -> None:
        """Drop the oldest finished jobs past `keep`; running ones are never dropped."""
        finished = [job_id for job_id, ticket in self._tickets.items() if ticket.job.done]
        while len(self._tickets) > self._keep and finished:
            job_id = finished.pop(0)
            del self._tickets[job_id]
            if self._journal is not None:
                self._journal.forget(job_id)

    def _entry(self, ticket: Ticket) -> Entry:
        child = ticket.child
        pid, started_at = (child.pid, child.started_at) if child else (None, None)
        return Entry(ticket.job.snapshot(), ticket.footprint, pid, started_at)

    def _save(self, ticket: Ticket) -> None:
        if self._journal is not None:
            try:
                self._journal.save(self._entry(ticket))
            except OSError:  # a full disk must not stop the job
                log.exception("nbops job %s: could not write the journal", ticket.job.id)


def describe(job: Job) -> str:
    return f"the {job.kind} of {job.target} (job {job.id})"


_registries: weakref.WeakSet[JobRegistry] = weakref.WeakSet()


def shutdown_all(timeout: float | None = None) -> None:
    """Interrupt the jobs of every registry and wait for them: the process is exiting. Runs
    before multiprocessing's own exit hook, which would otherwise wait for each child."""
    registries = list(_registries)
    for registry in registries:
        registry.shutdown()
    for registry in registries:
        registry.shutdown(wait=True, timeout=timeout)


atexit.register(shutdown_all)

_shared: JobRegistry | None = None
_shared_lock = threading.Lock()


def shared_registry() -> JobRegistry:
    """The process's registry, for a kernel's widgets (a server keeps its own per app)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = JobRegistry()
        return _shared
