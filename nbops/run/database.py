"""The SQLite file under `.nbops/` as a file: made whole, checked when opened, read without
waiting for writers, backed up before deploy operations, restored on request, and every failure
said in one line that names the file and the way out.

A damaged file is never replaced by a new, empty one: that would forget every deployment while
their processes kept running.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from nbops.errors import NbopsError

BACKUPS_KEPT = 10
# Files this process has checked with PRAGMA quick_check: (path, inode).
_CHECKED: set[tuple[str, int]] = set()


class StateDbError(NbopsError):
    """The state db cannot be used: newer than this nbops, damaged, locked, or unreadable."""


class StateDbLocked(StateDbError):
    """Another process holds the write lock longer than the busy timeout."""


class StateDbDamaged(StateDbError):
    """The file is not a SQLite database any more, or fails its integrity check."""


class Database:
    """One SQLite file in WAL mode: `transaction()` for writes, `reading()` for reads.

    `migrations[n]` takes the schema from version n to n + 1; a new file is made whole from
    them in a temporary file, then linked into place, so a real state db is never empty.
    """

    def __init__(
        self, path: str | Path, migrations: Sequence[str], *, timeout: float | None = None
    ) -> None:
        self.path = Path(path)
        self.migrations = tuple(migrations)
        default = float(os.environ.get("NBOPS_DB_TIMEOUT", "30"))
        self.timeout = default if timeout is None else timeout
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            self._create()
        self._check()
        self._migrate()

    @property
    def backups_dir(self) -> Path:
        return backups_dir(self.path)

    # connections

    def connect(self) -> sqlite3.Connection:
        with self.translated():
            conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA foreign_keys = ON")
        return conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction, taken at once (BEGIN IMMEDIATE), committed or rolled back."""
        conn = self.connect()
        try:
            with self.translated():
                conn.execute("BEGIN IMMEDIATE")
                yield conn
                conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        finally:
            conn.close()

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """A read: in WAL mode it sees the last commit and never waits for a writer."""
        conn = self.connect()
        try:
            with self.translated():
                conn.execute("BEGIN")
                yield conn
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            conn.close()

    @contextmanager
    def translated(self) -> Iterator[None]:
        """SQLite's errors as one line naming the file, the cause and the way out."""
        try:
            yield
        except sqlite3.OperationalError as error:
            if "locked" in str(error) or "busy" in str(error):
                raise self._locked() from None
            raise StateDbError(
                f"cannot use the state db: {error}.", where=str(self.path), fix=self._way_out()
            ) from None
        except sqlite3.DatabaseError as error:
            raise self._damaged(str(error)) from None

    # backups

    def backup(self, reason: str) -> Path:
        """A consistent copy (SQLite's backup API) in backups/; the newest ten are kept."""
        self.backups_dir.mkdir(exist_ok=True)
        now = time.time()
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f"{int(now * 1e6) % 10**6:06d}"
        label = "".join(c if c.isalnum() or c in "-_" else "-" for c in reason)[:40]
        target = self.backups_dir / f"state-{stamp}-{label}.db"
        source = self.connect()
        try:
            copy = sqlite3.connect(target)
            with self.translated(), copy:
                source.backup(copy)
            copy.close()
        finally:
            source.close()
        for old in self.backups()[BACKUPS_KEPT:]:
            old.unlink(missing_ok=True)
        return target

    def backups(self) -> list[Path]:
        """Backups, newest first."""
        return list_backups(self.path)

    # opening

    def _create(self) -> None:
        # Its own name: two threads of one process (the server's handlers) may both create it.
        temporary = self.path.with_name(f".{self.path.name}.new-{os.getpid()}-{uuid.uuid4().hex}")
        conn = sqlite3.connect(temporary, isolation_level=None)
        try:
            self._apply(conn, 0)
        finally:
            conn.close()
        with contextlib.suppress(FileExistsError):  # another process made it first: use that
            os.link(temporary, self.path)
        temporary.unlink(missing_ok=True)

    def _check(self) -> None:
        size = self.path.stat().st_size
        if size == 0:
            raise self._damaged("the file is empty (truncated)")
        key = (str(self.path), self.path.stat().st_ino)
        if key in _CHECKED:
            return
        conn = self.connect()
        try:
            with self.translated():
                result = conn.execute("PRAGMA quick_check").fetchone()[0]
        finally:
            conn.close()
        if result != "ok":
            raise self._damaged(f"its integrity check says: {result}")
        _CHECKED.add(key)

    def _migrate(self) -> None:
        with self.reading() as conn:  # the usual case: nothing to do, and no write lock taken
            if conn.execute("PRAGMA user_version").fetchone()[0] == len(self.migrations):
                return
        with self.transaction() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > len(self.migrations):
                raise StateDbError(
                    f"its schema is version {version}, newer than this nbops knows "
                    f"({len(self.migrations)}).",
                    where=str(self.path),
                    fix="Upgrade nbops (pip install -U nbops).",
                )
            self._apply(conn, version)

    def _apply(self, conn: sqlite3.Connection, version: int) -> None:
        for number in range(version, len(self.migrations)):
            for statement in _statements(self.migrations[number]):
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {len(self.migrations)}")

    # what to tell the user

    def _damaged(self, reason: str) -> StateDbDamaged:
        return StateDbDamaged(
            f"the state db is damaged ({reason}); nbops will not start an empty one over it, "
            "which would forget every deployment (they keep serving meanwhile).",
            where=str(self.path),
            fix=self._way_out(),
        )

    def _locked(self) -> StateDbLocked:
        holders = lock_holders(self.path)
        who = "; ".join(f"pid {pid}: {command}" for pid, command in holders) or "unknown"
        return StateDbLocked(
            f"the state db stayed locked for {self.timeout:g} s: another process is writing "
            f"to it (holding it open: {who}).",
            where=str(self.path),
            fix="Wait for that command to finish, or stop it; a process that died leaves no "
            "lock behind.",
        )

    def _way_out(self) -> str:
        backups = list_backups(self.path)
        if backups:
            return (
                f"Restore the newest backup with `nbops db restore` ({backups[0].name}; "
                f"`nbops db backups` lists all {len(backups)})."
            )
        return (
            f"No backup exists yet: move the file aside (mv {self.path} {self.path}.damaged) to "
            "start afresh; running deployments keep serving but nbops will not know them."
        )


def backups_dir(path: Path) -> Path:
    return path.parent / "backups"


def list_backups(path: Path) -> list[Path]:
    """The backups of the db at `path`, newest first; readable while the db is damaged."""
    folder = backups_dir(path)
    return sorted(folder.glob("state-*.db"), reverse=True) if folder.is_dir() else []


def restore_backup(path: Path, backup: Path) -> Path | None:
    """Put `backup` in place of the db at `path`; a damaged db is moved aside, never deleted.
    Returns where the old file went (None when there was none)."""
    _check_file(backup)
    aside = None
    if path.exists():
        aside = path.with_name(f"{path.name}.damaged-{int(time.time())}")
        os.replace(path, aside)
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    source = sqlite3.connect(f"file:{backup}?mode=ro", uri=True)
    target = sqlite3.connect(path)
    with target:
        source.backup(target)
    source.close()
    target.close()
    return aside


def lock_holders(path: Path) -> list[tuple[int, str]]:
    """Other processes with the db open, from /proc (Linux); empty where that cannot be read."""
    target = str(path.resolve())
    found: list[tuple[int, str]] = []
    for proc in _other_processes():
        with contextlib.suppress(OSError):
            if any(os.readlink(fd) == target for fd in (proc / "fd").iterdir()):
                raw = (proc / "cmdline").read_bytes().replace(b"\0", b" ")
                found.append((int(proc.name), " ".join(raw.decode(errors="replace").split())[:100]))
    return found


def _other_processes() -> Iterator[Path]:
    proc = Path("/proc")
    if not proc.is_dir():
        return
    for entry in proc.iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            yield entry


def _check_file(path: Path) -> None:
    """A backup must itself be a sound database before it replaces anything."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            result = conn.execute("PRAGMA quick_check").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.DatabaseError as error:
        result = str(error)
    if result != "ok":
        raise StateDbDamaged(
            f"the backup is damaged too ({result}).",
            where=str(path),
            fix="Pick another one: `nbops db backups` lists them.",
        )


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]
