"""Lineage speed: `nbops lineage --format json` against `jupyter nbconvert --to script`, one run."""

from __future__ import annotations

import hashlib
import json
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from measure import (
    RUNS,
    BenchmarkFailed,
    Measurement,
    run_checked,
    time_call,
    time_processes_side_by_side,
    user_environment,
    venv_binary,
)
from synthetic_notebook import SyntheticNotebook, write_synthetic_notebook

NAME = "lineage"
REPO = Path(__file__).resolve().parent.parent
CHURN = REPO / "example_notebooks" / "churn.ipynb"
BASELINE = "jupyter nbconvert --to script --stdout"
WHOLE_PROCESS = "whole process, `nbops lineage --format json`"


@dataclass(frozen=True)
class _Tools:
    """The venv's two command-line tools and the environment both run in."""

    nbops: Path
    jupyter: Path
    env: dict[str, str]


def run(*, quick: bool = False, runs: int = RUNS) -> list[Measurement]:
    """Every lineage measurement; `quick` leaves out the 10,000-cell notebook."""
    with tempfile.TemporaryDirectory(prefix="nbops-bench-") as tmp:
        folder = Path(tmp)
        tools = _Tools(
            venv_binary("nbops"), venv_binary("jupyter"), user_environment(folder / "pycache")
        )
        sizes = (1000,) if quick else (1000, 10_000)
        generated = [write_synthetic_notebook(folder, cells) for cells in sizes]
        for notebook in generated:
            _check_no_errors(tools, notebook.path)
        workloads = [(f"churn.ipynb ({_cell_count(CHURN)} cells)", CHURN)]
        workloads += [(_describe(notebook), notebook.path) for notebook in generated]
        rows = [_whole_process(tools, label, path, runs=runs) for label, path in workloads]
        rows += _in_process(generated[0], runs=runs)
    return rows


def _whole_process(tools: _Tools, label: str, notebook: Path, *, runs: int) -> Measurement:
    ours = [tools.nbops, "lineage", notebook, "--format", "json"]
    theirs = [tools.jupyter, "nbconvert", "--to", "script", notebook, "--stdout"]
    steps = _warm_up(ours, theirs, notebook, tools.env)
    samples, baseline_samples = time_processes_side_by_side(
        ours, theirs, cwd=REPO, env=tools.env, runs=runs
    )
    return Measurement(
        benchmark=NAME,
        workload=label,
        measure=WHOLE_PROCESS,
        samples=samples,
        baseline=BASELINE,
        baseline_samples=baseline_samples,
        aim="nbops/baseline <= 1.0",
        aim_ratio=1.0,
        notes={
            "steps": steps,
            "bytes": notebook.stat().st_size,
            "sha256": hashlib.sha256(notebook.read_bytes()).hexdigest(),
        },
    )


def _warm_up(
    ours: list[str | Path], theirs: list[str | Path], notebook: Path, env: dict[str, str]
) -> int:
    """Run each command once untimed and check it produced what it should; returns nbops's steps.

    The warm-up also fills the bytecode cache and the OS's file cache for both tools.
    """
    lineage = json.loads(run_checked(ours, cwd=REPO, env=env).stdout)
    if not lineage.get("steps"):
        raise BenchmarkFailed(f"nbops lineage found no steps in {notebook}; the workload is wrong.")
    if not run_checked(theirs, cwd=REPO, env=env).stdout.strip():
        raise BenchmarkFailed(f"nbconvert printed no script for {notebook}.")
    return len(lineage["steps"])


def _in_process(notebook: SyntheticNotebook, *, runs: int) -> list[Measurement]:
    """Parse and analyse timed apart, in this process, after a warm-up that pays the imports."""
    from nbops.model.analysis import analyse
    from nbops.model.notebook import parse_notebook

    raw, path = notebook.path.read_bytes(), str(notebook.path)
    parsed = parse_notebook(raw, path)
    parse_samples = time_call(lambda: parse_notebook(raw, path), runs=runs)
    analyse_samples = time_call(lambda: analyse(parsed), runs=runs)
    label = _describe(notebook)
    return [
        Measurement(
            benchmark=NAME,
            workload=label,
            measure="in process, `parse_notebook(raw, path)`",
            samples=parse_samples,
        ),
        Measurement(
            benchmark=NAME,
            workload=label,
            measure="in process, `analyse(notebook)`",
            samples=analyse_samples,
            aim="< 0.3 s",
            aim_seconds=0.3,
        ),
    ]


def _check_no_errors(tools: _Tools, notebook: Path) -> None:
    """The generated notebook must be valid, or the benchmark would time error reporting."""
    argv = [str(tools.nbops), "check", str(notebook), "--format", "json"]
    completed = subprocess.run(argv, cwd=REPO, env=tools.env, capture_output=True, check=False)
    if completed.returncode not in (0, 1):
        raise BenchmarkFailed(f"`{' '.join(argv)}` crashed:\n{completed.stderr.decode()}")
    errors = [d for d in json.loads(completed.stdout) if d["severity"] == "error"]
    if errors:
        shown = "\n".join(f"  cell {d['cell_index']}: {d['message']}" for d in errors[:5])
        raise BenchmarkFailed(
            f"nbops check finds {len(errors)} errors in the generated {notebook.name}; "
            f"fix benchmarks/synthetic_notebook.py:\n{shown}"
        )


def _describe(notebook: SyntheticNotebook) -> str:
    return f"generated, {notebook.cells:,} cells ({notebook.steps:,} steps)"


def _cell_count(notebook: Path) -> int:
    return len(json.loads(notebook.read_text(encoding="utf-8"))["cells"])
