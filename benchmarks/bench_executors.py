"""Executors: the four-branch notebook sequential (inline) against two worker processes and a
two-worker Dask LocalCluster, each from an empty .nbops, whole process, in one run."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from measure import (
    RUNS,
    BenchmarkFailed,
    Measurement,
    run_checked,
    time_process,
    user_environment,
    venv_binary,
)

NAME = "executors"
REPO = Path(__file__).resolve().parent.parent
BRANCHES = REPO / "example_notebooks" / "branches.ipynb"
# Work enough that each branch takes a few seconds: what is measured is the branches side by
# side, next to the fixed cost of starting workers (and, for Dask, a LocalCluster).
SIZE = "40_000_000"
EXECUTORS = {
    "inline": ["--executor", "inline"],
    "process": ["--executor", "process", "--jobs", "2"],
    "dask": ["--executor", "dask", "--jobs", "2"],
}


def run(*, quick: bool = False, runs: int = RUNS) -> list[Measurement]:
    """Each executor in turn, round-robin, so load drift hits all alike."""
    runs = min(runs, 2 if quick else 3)  # ~10 s a run: three are enough here
    with tempfile.TemporaryDirectory(prefix="nbops-bench-executors-") as tmp:
        folder = Path(tmp)
        env = user_environment(folder / "pycache")
        samples: dict[str, list[float]] = {name: [] for name in EXECUTORS}
        hashes: dict[str, list[str]] = {}
        for _ in range(runs):
            for name, options in EXECUTORS.items():
                home = folder / f"home-{name}"
                shutil.rmtree(home, ignore_errors=True)
                argv = [
                    venv_binary("nbops"),
                    "run",
                    BRANCHES,
                    "-p",
                    f"size={SIZE}",
                    *options,
                    "--format",
                    "json",
                ]
                samples[name].append(
                    time_process(argv, cwd=folder, env={**env, "NBOPS_HOME": str(home)})
                )
                hashes[name] = _hashes(home, folder, env)
        if len({json.dumps(h) for h in hashes.values()}) != 1:
            raise BenchmarkFailed(f"the executors computed different artifacts: {hashes}")
    return _rows(samples)


def _hashes(home: Path, folder: Path, env: dict[str, str]) -> list[str]:
    listed = run_checked(
        [venv_binary("nbops"), "runs", "--format", "json", "--limit", "1"],
        cwd=folder,
        env={**env, "NBOPS_HOME": str(home)},
    )
    record = json.loads(listed.stdout)[0]
    return [sha for step in record["steps"] for sha in sorted(step["outputs"].values())]


def _rows(samples: dict[str, list[float]]) -> list[Measurement]:
    workload = (
        f"branches.ipynb -p size={SIZE} (load, 4 CPU-bound branches, join), whole process, cold"
    )
    inline = tuple(samples["inline"])
    return [
        Measurement(
            NAME,
            workload,
            f"`nbops run --executor {name} --jobs 2`",
            tuple(samples[name]),
            baseline="`--executor inline` (one step after another)",
            baseline_samples=inline,
            aim="baseline/nbops >= 1.7 on 2 cores",
            aim_ratio=1 / 1.7,
        )
        for name in ("process", "dask")
    ]
