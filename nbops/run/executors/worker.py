"""A worker process of the `process` executor: `python -m nbops.run.executors.worker FD`.

It reads messages from the socket FD (its parent's end), runs work with `perform` and sends
back which cell it is in and the result. It leads its own process group, so a time limit or a
cancel stops whatever the step started too; and it kills that group itself if its parent dies,
so no step outlives the run that started it.
"""

from __future__ import annotations

import os
import pickle
import sys
from multiprocessing.connection import Connection
from typing import Any

from nbops.run.pids import kill_group_when_orphaned

PARENT_CHECK_S = 0.2


def main(fd: int) -> None:
    connection = Connection(fd)
    kill_group_when_orphaned(os.getppid(), PARENT_CHECK_S)
    from nbops.run.work import perform  # after the watch: imports take a while

    pipelines: dict[str, Any] = {}
    while True:
        try:
            message = connection.recv()
        except (EOFError, OSError):
            return
        if message[0] == "pipeline":
            pipelines[message[1]] = pickle.loads(message[2])
        elif message[0] == "work":
            work = message[1]
            result = perform(
                work,
                pipelines[work.notebook_sha256],
                on_cell=lambda index: connection.send(("cell", index)),
            )
            result.worker = f"pid {os.getpid()}"
            connection.send(("done", result))
        else:
            return


if __name__ == "__main__":
    main(int(sys.argv[1]))
