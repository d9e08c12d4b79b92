"""Build speed on 1,000 cells, this checkout against an earlier commit of nbops.

Two rows: the whole `nbops build --no-run` process, and, in one process, analysing the notebook
and generating the build's files (where "each cell parsed once" shows without the fixed work
of the HTML report, the generated tests and ruff).

The baseline is nbops itself at `NBOPS_BENCH_BASELINE` (a git ref; default: the last commit
before the layered package, where every face parsed each cell again). Its `nbops/` and
`templates/` are unpacked with `git archive` into a temporary folder and run from there with
the same venv, so the two differ only in nbops's own code. Both build from one recorded run
and must generate the same pipeline/, service/ and tests/ byte for byte.
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
GENERATED = ("pipeline", "service", "tests")


@dataclass(frozen=True)
class _Workspace:
    folder: Path
    notebook: Path
    baseline: Path
    env: dict[str, str]


def run(*, quick: bool = False, runs: int = RUNS) -> list[Measurement]:
    """One row: the whole `nbops build --no-run` process, ours against the baseline commit."""
    ref = os.environ.get("NBOPS_BENCH_BASELINE", DEFAULT_BASELINE)
    with tempfile.TemporaryDirectory(prefix="nbops-bench-build-") as tmp:
        space = _workspace(Path(tmp), ref)
        ours = _build_command(space, space.folder / "ours", pythonpath=None)
        theirs = _build_command(space, space.folder / "theirs", pythonpath=space.baseline)
        run_checked(ours, cwd=space.folder, env=space.env)
        run_checked(theirs, cwd=space.folder, env=space.env)
        _check_same_code(space.folder / "ours", space.folder / "theirs")
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
    if ours["files"] != theirs["files"]:
        raise BenchmarkFailed(f"generated {ours['files']} files, the baseline {theirs['files']}")
    return tuple(ours["samples"]), tuple(theirs["samples"])


def _workspace(folder: Path, ref: str) -> _Workspace:
    env = user_environment(folder / "pycache") | {"NBOPS_HOME": str(folder / ".nbops")}
    notebook = write_synthetic_notebook(folder, 1000).path
    baseline = folder / "baseline"
    _unpack(ref, baseline)
    # The run both builds take their artifacts from, recorded by this checkout's runner.
    run_checked([sys.executable, "-m", "nbops", "run", notebook], cwd=folder, env=env)
    return _Workspace(folder, notebook, baseline, env)


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


def _build_command(space: _Workspace, out: Path, *, pythonpath: Path | None) -> list[str | Path]:
    # PYTHONPATH comes before the venv's editable install, so the baseline's nbops is imported.
    prefix: list[str | Path] = ["env", f"PYTHONPATH={pythonpath}"] if pythonpath else []
    return [*prefix, sys.executable, "-m", "nbops", "build", space.notebook, "--no-run", "-o", out]


def _check_same_code(ours: Path, theirs: Path) -> None:
    """The refactor must not change what a build generates; else the timing compares apples
    with pears."""
    for part in GENERATED:
        mine = _files(ours / part)
        other = _files(theirs / part)
        if mine != other:
            differing = sorted(k for k in mine.keys() | other.keys() if mine.get(k) != other.get(k))
            raise BenchmarkFailed(f"{part}/ differs from the baseline's: {differing[:5]}")


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts and ".pytest_cache" not in path.parts
    }
