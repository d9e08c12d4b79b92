"""The per-name lease of deploy, rollback and stop; process identity; the supervisor's backoff."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from nbops.deploy import records
from nbops.deploy.records import DeployBusy, Deployment
from nbops.deploy.supervisor import BACKOFF_S, WINDOW_S, Restarts
from nbops.run.pids import same_process, start_time
from nbops.run.state import StateDb


@pytest.fixture
def db(tmp_path: Path) -> StateDb:
    return StateDb(tmp_path / "state.db")


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield process
    process.kill()
    process.wait()


def version(db: StateDb, number: int, status: str, pid: int | None, started: int | None) -> None:
    now = time.time()
    records.insert(
        db,
        Deployment(
            name="churn",
            version=number,
            status=status,
            build_dir="",
            build_id="",
            notebook_sha256="",
            run_id=None,
            port=None,
            pid=pid,
            url=None,
            reason=None,
            log_tail=None,
            started_by="test",
            created_at=now,
            updated_at=now,
            pid_started=started,
        ),
    )


def test_a_second_operation_of_the_same_process_is_refused(db: StateDb) -> None:
    """Two requests of one Jupyter server are two owners: the pid does not let the second in."""
    with records.deploy_lock(db, "churn"):
        outcome: list[BaseException] = []

        def stop_from_another_request() -> None:
            try:
                with records.deploy_lock(db, "churn", "stop"):
                    pass
            except DeployBusy as busy:
                outcome.append(busy)

        thread = threading.Thread(target=stop_from_another_request)
        thread.start()
        thread.join()
        assert [e.message for e in outcome if isinstance(e, DeployBusy)] == [
            f"another deploy of 'churn' is in progress (pid {os.getpid()})."
        ]
    with records.deploy_lock(db, "churn", "stop"):  # released: free again
        pass


def test_an_expired_lease_is_taken_over(db: StateDb) -> None:
    lease = records.acquire(db, "churn", "deploy")
    with db.transaction() as conn:
        conn.execute("UPDATE leases SET expires_at = ? WHERE name = 'churn'", (time.time() - 1,))
    taken = records.acquire(db, "churn", "rollback")
    assert taken.owner != lease.owner
    assert not records.renew(db, lease)  # the first owner learns it lost the lease
    assert records.renew(db, taken)


def test_a_lease_whose_owner_died_is_free_at_once(db: StateDb) -> None:
    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    started = start_time(owner.pid)
    with db.transaction() as conn:
        conn.execute(
            "INSERT INTO leases VALUES ('churn', 'gone', ?, ?, 'deploy', ?)",
            (owner.pid, started, time.time() + 3600),
        )
    assert not records.lease_free(db, "churn")
    owner.kill()
    owner.wait()
    assert records.lease_free(db, "churn")


def test_taking_the_lease_ends_what_a_killed_operation_left(
    db: StateDb, sleeper: subprocess.Popen[bytes]
) -> None:
    version(db, 1, "starting", sleeper.pid, start_time(sleeper.pid))
    version(db, 2, "building", None, None)
    records.release(db, records.acquire(db, "churn", "deploy"))
    sleeper.wait(timeout=15)
    assert [(d.version, d.status, d.pid) for d in records.history(db, "churn")] == [
        (1, "failed", None),
        (2, "failed", None),
    ]
    assert records.history(db, "churn")[0].reason == (
        "interrupted: the operation bringing it up ended before it did"
    )


def test_a_reused_pid_is_never_stopped(db: StateDb, sleeper: subprocess.Popen[bytes]) -> None:
    """The row names the sleeper's pid with another start time: another process, left alone."""
    version(db, 1, "starting", sleeper.pid, (start_time(sleeper.pid) or 0) - 100)
    records.release(db, records.acquire(db, "churn", "deploy"))
    assert sleeper.poll() is None
    assert records.history(db, "churn")[0].status == "failed"
    assert not same_process(sleeper.pid, None)


def test_ctrl_c_ends_the_version_being_brought_up_on_the_spot(
    db: StateDb, sleeper: subprocess.Popen[bytes]
) -> None:
    with pytest.raises(KeyboardInterrupt), records.deploy_lock(db, "churn"):
        version(db, 1, "starting", sleeper.pid, start_time(sleeper.pid))
        raise KeyboardInterrupt
    sleeper.wait(timeout=15)
    (row,) = records.history(db, "churn")
    assert (row.status, row.reason) == (
        "failed",
        "interrupted: the deploy was stopped before it ended",
    )
    assert records.lease_free(db, "churn")


def test_restarts_back_off_then_call_a_crash_loop() -> None:
    restarts = Restarts()
    delays = []
    for _ in range(len(BACKOFF_S) + 1):
        delays.append(restarts.next_delay(100.0))
        restarts.record(100.0)
    assert delays == [*BACKOFF_S, None]
    assert restarts.next_delay(100.0 + WINDOW_S + 1) == BACKOFF_S[0]
