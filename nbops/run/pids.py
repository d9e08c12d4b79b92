"""Whether the process a record names (a run, a service, a proxy, a Jupyter server) still runs,
and whether it is still the same process: a pid is reused, its start time is not."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable


def pid_alive(pid: int | None) -> bool:
    """True while the process exists and is not a zombie; a pid of None or 0 is never alive."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)


def start_time(pid: int | None) -> int | None:
    """When the process started, in clock ticks since boot (/proc/<pid>/stat field 22); None
    when there is no such process. With the pid it names one process for the machine's uptime."""
    if not pid:
        return None
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return int(stat.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def same_process(pid: int | None, started: int | None) -> bool:
    """True while the process recorded as (pid, start time) runs; a pid now held by another
    process, or recorded without its start time, is never taken for it."""
    if not pid or started is None or not pid_alive(pid):
        return False
    return start_time(pid) == started


def _is_zombie(pid: int) -> bool:
    """A killed child its parent has not reaped yet still answers kill(0)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def kill_group_when_orphaned(parent: int, every_s: float) -> None:
    """Kill this process's group once `parent` is no longer its parent (killed, even by
    SIGKILL): a child that outlives what started it takes what it started with it."""
    _when_orphaned(parent, every_s, lambda: os.killpg(os.getpgid(0), signal.SIGKILL))


def exit_when_orphaned(parent: int, every_s: float) -> None:
    """Kill this process alone once `parent` is no longer its parent: for a child whose
    group is not its own (a shell's job), whose other members must live on."""
    _when_orphaned(parent, every_s, lambda: os.kill(os.getpid(), signal.SIGKILL))


def _when_orphaned(parent: int, every_s: float, end: Callable[[], None]) -> None:
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every_s)
        end()

    threading.Thread(target=watch, name="nbops-parent-watch", daemon=True).start()
