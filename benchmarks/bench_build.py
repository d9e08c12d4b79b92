"""Build speed on 1,000 cells, this checkout against an earlier commit of nbops.

Two rows: the whole `nbops build --no-run` process, and, in one process, analysing the notebook
and generating the build's files (where "each cell parsed once" shows without the fixed work
of the HTML report, the generated tests and ruff).

The baseline is nbops itself at `NBOPS_BENCH_BASELINE` (a git ref; default: the last commit
before the layered package, where every face parsed each cell again). Its `nbops/` and
`templates/` are unpacked with `git archive` into a temporary folder and run from there with
the same venv, so the two differ only in nbops's own code. Each side builds from a run its own
code recorded (in its own NBOPS_HOME: the state db's schema moved on), and both must generate
a module for every step.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

from measure import (
    RUNS,
    BenchmarkFailed,
    Measurement,
    run_checked,
    time_processes_side_by_side,
    user_environment,
)
from synthetic_notebook import write_synthetic_notebook

NAME = "build"
HERE = Path(__file__).resolve().parent
REPO = HERE.parent
# The flat layout, before "each cell parsed once" (issue 9).
DEFAULT_BASELINE = "6225380"


@dataclass(frozen=True)
class _Workspace:
    folder: Path
    notebook: Path
    baseline: Path
    env: dict[str, str]

    def side(self, name: str, *, baseline: bool) -> list[str | Path]:
        """`env NBOPS_HOME=... [PYTHONPATH=baseline]`: one side's home, and its nbops first on
        the path (PYTHONPATH comes before the venv's editable install)."""
        path = [f"PYTHONPATH={self.baseline}"] if baseline else []
        return ["env", f"NBOPS_HOME={self.folder / name / '.nbops'}", *path]


def run(*, quick: bool = False, runs: int = RUNS) -> list[Measurement]:
    """One row: the whole `nbops build --no-run` process, ours against the baseline commit."""
    ref = os.environ.get("NBOPS_BENCH_BASELINE", DEFAULT_BASELINE)
    with tempfile.TemporaryDirectory(prefix="nbops-bench-build-") as tmp:
        space = _workspace(Path(tmp), ref)
        ours = _build_command(space, "ours", baseline=False)
        theirs = _build_command(space, "theirs", baseline=True)
        run_checked(ours, cwd=space.folder, env=space.env)
        run_checked(theirs, cwd=space.folder, env=space.env)
        _check_same_steps(space.folder / "ours", space.folder / "theirs")
        samples, baseline_samples = time_processes_side_by_side(
            ours, theirs, cwd=space.folder, env=space.env, runs=runs
        )
        generated, baseline_generated = _generation(space, runs=max(runs, 5))
    workload = "synthetic_1000.ipynb (1,000 cells)"
    return [
        Measurement(
            benchmark=NAME,
            workload=workload,
            measure="whole process, `nbops build --no-run`",
            samples=samples,
            baseline=f"nbops at {ref}",
            baseline_samples=baseline_samples,
            aim="nbops/baseline <= 1.0",
            aim_ratio=1.0,
        ),
        Measurement(
            benchmark=NAME,
            workload=workload,
            measure="in process, analyse + generate package, tests, service, packaging",
            samples=generated,
            baseline=f"nbops at {ref}",
            baseline_samples=baseline_generated,
            aim="nbops/baseline <= 1.0",
            aim_ratio=1.0,
        ),
    ]


def _generation(space: _Workspace, *, runs: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """In-process timings from generate_timing.py, run once with each nbops."""
    script = [sys.executable, str(HERE / "generate_timing.py"), str(space.notebook), str(runs)]
    ours = json.loads(run_checked(script, cwd=space.folder, env=space.env).stdout)
    theirs_env = space.env | {"PYTHONPATH": str(space.baseline)}
    theirs = json.loads(run_checked(script, cwd=space.folder, env=theirs_env).stdout)
    if not ours["files"] or abs(ours["files"] - theirs["files"]) > 10:
        raise BenchmarkFailed(f"generated {ours['files']} files, the baseline {theirs['files']}")
    return tuple(ours["samples"]), tuple(theirs["samples"])


def _workspace(folder: Path, ref: str) -> _Workspace:
    env = user_environment(folder / "pycache")
    notebook = write_synthetic_notebook(folder, 1000).path
    baseline = folder / "baseline"
    _unpack(ref, baseline)
    space = _Workspace(folder, notebook, baseline, env)
    # The run each side's build takes its artifacts from, recorded by that side's runner.
    for name, is_baseline in (("ours", False), ("theirs", True)):
        command = [*space.side(name, baseline=is_baseline), sys.executable, "-m", "nbops", "run"]
        run_checked([*command, notebook], cwd=folder, env=env)
    return space


def _unpack(ref: str, target: Path) -> None:
    """nbops/ and templates/ as they were at `ref`."""
    done = subprocess.run(
        ["git", "archive", "--format=tar", ref, "nbops", "templates"],
        cwd=REPO,
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        raise BenchmarkFailed(f"git archive {ref} failed: {done.stderr.decode().strip()}")
    target.mkdir()
    with tarfile.open(fileobj=BytesIO(done.stdout)) as archive:
        archive.extractall(target, filter="data")


def _build_command(space: _Workspace, name: str, *, baseline: bool) -> list[str | Path]:
    out = space.folder / name / "build"
    command = [sys.executable, "-m", "nbops", "build", space.notebook, "--no-run", "-o", out]
    return [*space.side(name, baseline=baseline), *command]


def _check_same_steps(ours: Path, theirs: Path) -> None:
    """Both builds generated a module for every step: they did the same work."""
    mine = sorted(p.name for p in (ours / "build" / "pipeline" / "steps").glob("*.py"))
    other = sorted(p.name for p in (theirs / "build" / "pipeline" / "steps").glob("*.py"))
    if mine != other or len(mine) < 2:
        raise BenchmarkFailed(f"the builds differ in their steps: {mine[:5]} vs {other[:5]}")
