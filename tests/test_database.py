"""The state db as a file: never silently recreated, errors in one line, backups that restore,
readers that do not wait for writers, and a lock that names its holder."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from builders import notebook_json

from nbops.run.database import StateDbDamaged, StateDbLocked
from nbops.run.home import Home
from nbops.run.state import StateDb

NBOPS = str(Path(sys.executable).parent / "nbops")
CELLS = [("numbers = [1, 2]", ["step:load"]), ("total = sum(numbers)", ["metrics"])]


def nbops(*args: str, home: Path, timeout: str = "30") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NBOPS_HOME": str(home), "NBOPS_DB_TIMEOUT": timeout}
    return subprocess.run([NBOPS, *args], capture_output=True, text=True, env=env, check=False)


@pytest.fixture
def notebook(tmp_path: Path) -> Path:
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps(notebook_json(CELLS)))
    return path


@pytest.fixture
def ran(tmp_path: Path, notebook: Path) -> Path:
    """A home with one recorded run and one backup."""
    home = tmp_path / ".nbops"
    assert nbops("run", str(notebook), home=home).returncode == 0
    assert nbops("db", "backup", home=home).returncode == 0
    return home


def test_a_new_db_is_made_whole_and_is_never_empty(tmp_path: Path) -> None:
    db = StateDb(tmp_path / "state.db")
    assert db.path.stat().st_size > 0
    assert not list(tmp_path.glob(".state.db.new-*"))


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda p: p.write_bytes(b""), "the file is empty (truncated)"),
        (lambda p: p.write_bytes(b"not a database at all" * 300), "file is not a database"),
    ],
)
def test_a_damaged_db_is_one_error_line_and_is_not_recreated(
    ran: Path, notebook: Path, damage: object, reason: str
) -> None:
    db_file = ran / "state.db"
    for suffix in ("-wal", "-shm"):
        Path(f"{db_file}{suffix}").unlink(missing_ok=True)
    damage(db_file)  # type: ignore[operator]
    before = db_file.read_bytes()
    done = nbops("runs", home=ran)
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"error: {db_file}: the state db is damaged ({reason})")
    assert "Restore the newest backup with `nbops db restore` (state-" in line
    assert db_file.read_bytes() == before  # nothing written over it


def test_restore_brings_back_the_runs_and_keeps_the_damaged_file(ran: Path) -> None:
    db_file = ran / "state.db"
    Path(f"{db_file}-wal").unlink(missing_ok=True)
    db_file.write_bytes(b"")
    done = nbops("db", "restore", home=ran)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("restored state-")
    (aside,) = ran.glob("state.db.damaged-*")
    assert aside.read_bytes() == b""
    listed = json.loads(nbops("runs", "--format", "json", home=ran).stdout)
    assert [run["status"] for run in listed] == ["succeeded"]
    assert nbops("db", "check", home=ran).stdout.startswith(f"{db_file}: ok")


def test_a_restore_refuses_a_damaged_backup(ran: Path) -> None:
    (backup,) = (ran / "backups").glob("state-*.db")
    backup.write_bytes(b"garbage" * 100)
    done = nbops("db", "restore", backup.name, home=ran)
    assert done.returncode == 2
    assert "the backup is damaged too" in done.stderr


def test_backups_are_kept_to_the_newest_ten(tmp_path: Path) -> None:
    db = StateDb(tmp_path / "state.db")
    taken = [db.backup(f"op{i}") for i in range(12)]
    assert db.backups() == sorted(taken[-10:], reverse=True)


def hold_write_lock(db_file: Path) -> subprocess.Popen[str]:
    """Another process in the middle of a long write transaction."""
    script = (
        "import sqlite3, sys, time\n"
        f"c = sqlite3.connect({str(db_file)!r}, isolation_level=None)\n"
        "c.execute('BEGIN IMMEDIATE'); print('locked', flush=True); time.sleep(60)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    return holder


def test_a_locked_db_names_who_holds_it(ran: Path, notebook: Path) -> None:
    holder = hold_write_lock(ran / "state.db")
    try:
        started = time.monotonic()
        done = nbops("run", str(notebook), home=ran, timeout="0.5")
        assert time.monotonic() - started < 15
        assert done.returncode == 2
        (line,) = done.stderr.strip().splitlines()
        assert "the state db stayed locked for 0.5 s: another process is writing to it" in line
        assert f"pid {holder.pid}: {sys.executable} -c import sqlite3" in line
    finally:
        holder.kill()
        holder.wait()


def test_readers_do_not_wait_for_a_writer(ran: Path) -> None:
    holder = hold_write_lock(ran / "state.db")
    try:
        started = time.monotonic()
        done = nbops("runs", "--format", "json", home=ran, timeout="30")
        assert done.returncode == 0, done.stderr
        assert time.monotonic() - started < 10  # not the 30 s a writer would wait
        assert len(json.loads(done.stdout)) == 1
    finally:
        holder.kill()
        holder.wait()


def test_the_lock_error_in_process_is_a_state_db_error(tmp_path: Path) -> None:
    db = StateDb(tmp_path / "state.db", timeout=0.2)
    holder = hold_write_lock(db.path)
    try:
        with pytest.raises(StateDbLocked):
            db.remember_outputs("key", "nb", "step", {})
    finally:
        holder.kill()
        holder.wait()


def test_an_integrity_failure_found_on_open_is_damage(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    StateDb(path).backup("x")
    data = bytearray(path.read_bytes())
    data[100:4096] = b"\x00" * (4096 - 100)  # the header's tail and the first page's body
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    path.write_bytes(bytes(data))
    with pytest.raises((StateDbDamaged, sqlite3.DatabaseError)):
        Home(tmp_path).db()


@pytest.mark.slow
def test_a_truncated_db_leaves_the_service_answering_and_restores_from_its_backup(
    tmp_path: Path,
) -> None:
    import urllib.request

    from test_deploy import model_notebook

    from nbops.deploy.processes import free_port

    notebook = tmp_path / "model.ipynb"
    notebook.write_text(json.dumps(model_notebook(2)))
    home, port = tmp_path / ".nbops", free_port()
    url = f"http://127.0.0.1:{port}/predict"

    def predict() -> int:
        request = urllib.request.Request(url, b'{"x": 3.0}', {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=5) as answer:
            return int(answer.status)

    deployed = nbops("deploy", str(notebook), "--port", str(port), home=home)
    try:
        assert deployed.returncode == 0, deployed.stderr
        assert predict() == 200
        db_file = home / "state.db"
        db_file.write_bytes(b"")
        status = nbops("status", home=home)
        assert status.returncode == 2
        assert "the state db is damaged (the file is empty (truncated))" in status.stderr
        assert "nbops db restore" in status.stderr
        assert [predict() for _ in range(10)] == [200] * 10  # the proxy keeps serving
        restored = nbops("db", "restore", home=home)
        assert restored.returncode == 0, restored.stderr
        listed = json.loads(nbops("status", "--format", "json", home=home).stdout)
        assert [(d["name"], d["status"]) for d in listed] == [("model", "healthy")]
        assert predict() == 200
    finally:
        assert nbops("stop", "model", home=home).returncode == 0


def test_threads_of_one_process_may_create_the_db_at_once(tmp_path: Path) -> None:
    """The server's handlers run in a thread pool: the first requests on a fresh home may
    all find no state db and create it together."""
    import threading

    from nbops.run.state import StateDb

    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def open_db() -> None:
        start.wait()
        try:
            StateDb(tmp_path / "state.db").runs()
        except BaseException as error:  # collected: the test reports every one
            errors.append(error)

    threads = [threading.Thread(target=open_db) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".state.db.new")] == []
