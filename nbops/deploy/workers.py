"""A deployed version's uvicorn workers: the app each one serves, and which of them are ready.

With `--workers N` a version runs as uvicorn's manager process and N worker processes sharing
its port. One HTTP probe of /readyz reaches whichever worker accepts it, so it cannot say that
all N have loaded their artifacts. Each worker says so itself: the service sets its `nbops_ready`
gauge to 1 once its artifacts are loaded and checked, and with PROMETHEUS_MULTIPROC_DIR set
prometheus-client writes each process's gauges to a file of its own, `gauge_min_<pid>.db`. The
version's folder for those files is `<version dir>/worker-metrics/`, emptied at each start, so
the ready workers are the manager's live children whose file holds `nbops_ready` 1.

uvicorn loads the app in each worker through `service_app`, which also makes a worker end its
process group (its siblings) once the manager is gone, even killed by SIGKILL: no worker of a
version outlives the process the state db records for it.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import struct
from importlib import import_module
from pathlib import Path
from typing import Any

from nbops.run.pids import exit_when_orphaned, kill_group_when_orphaned

METRICS_FOLDER = "worker-metrics"
# prometheus-client's switch: each process writes its metrics to files of its own there.
METRICS_ENV = "PROMETHEUS_MULTIPROC_DIR"
# What uvicorn loads (with --factory) in each worker: the build's app, from service/main.py.
FACTORY = "nbops.deploy.workers:service_app"
FOREGROUND_FACTORY = "nbops.deploy.workers:foreground_app"
READY_GAUGE = "nbops_ready"
ORPHAN_CHECK_S = 0.2


def service_app() -> Any:
    """The build's FastAPI app, for one uvicorn worker of a deployed version (its manager
    leads a group of its own); a worker whose manager is gone kills its group, the manager's
    other workers with it."""
    if multiprocessing.parent_process() is not None:
        kill_group_when_orphaned(os.getppid(), ORPHAN_CHECK_S)
    return import_module("service.main").app


def foreground_app() -> Any:
    """The build's FastAPI app, for one uvicorn worker of `nbops serve --workers N`, whose
    group is the shell's job: a worker whose manager is gone ends itself alone."""
    if multiprocessing.parent_process() is not None:
        exit_when_orphaned(os.getppid(), ORPHAN_CHECK_S)
    return import_module("service.main").app


def metrics_folder(version_dir: Path) -> Path:
    return version_dir / METRICS_FOLDER


def fresh_metrics_folder(version_dir: Path) -> Path:
    """The version's metrics folder, emptied: files of an earlier start's workers would be
    counted as ready (and their requests added to /metrics) otherwise."""
    folder = metrics_folder(version_dir)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def ready_workers(manager_pid: int, folder: Path) -> set[int]:
    """Pids of the manager's live worker processes whose `nbops_ready` gauge reads 1."""
    ready = set()
    for path in folder.glob("gauge_*_*.db"):
        pid = _pid_of(path)
        if pid is not None and parent_pid(pid) == manager_pid and _ready(path):
            ready.add(pid)
    return ready


def parent_pid(pid: int) -> int | None:
    """The parent of a live process (/proc/<pid>/stat field 4); None for no such process."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] == "Z" else int(fields[1])


def _pid_of(path: Path) -> int | None:
    tail = path.stem.rsplit("_", 1)[-1]
    return int(tail) if tail.isdigit() else None


def _ready(path: Path) -> bool:
    from prometheus_client.mmap_dict import MmapedDict

    try:
        values = MmapedDict.read_all_values_from_file(str(path))  # type: ignore[no-untyped-call]
        return any(json.loads(key)[1] == READY_GAUGE and value == 1 for key, value, *_ in values)
    except (OSError, ValueError, RuntimeError, struct.error):  # a file still being laid out
        return False
