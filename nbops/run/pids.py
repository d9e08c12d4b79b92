"""Whether the process a record names (a run, a service, a proxy, a Jupyter server) still runs."""

from __future__ import annotations

import os


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


def _is_zombie(pid: int) -> bool:
    """A killed child its parent has not reaped yet still answers kill(0)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False
