"""Running the churn example: `nbops run` cold and warm against the plain script and papermill."""

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

NAME = "run"
REPO = Path(__file__).resolve().parent.parent
CHURN = REPO / "example_notebooks" / "churn.ipynb"


def run(*, quick: bool = False, runs: int = RUNS) -> list[Measurement]:
    """Four ways to run the same notebook, timed round-robin so load drift hits all alike."""
    runs = min(runs, 3) if quick else runs
    with tempfile.TemporaryDirectory(prefix="nbops-bench-run-") as tmp:
        folder = Path(tmp)
        env = user_environment(folder / "pycache")
        script = _export_script(folder, env)
        commands = {
            "script": [Path(_python()), script],
            "papermill": [
                venv_binary("papermill"),
                CHURN,
                folder / "out.ipynb",
                "--no-progress-bar",
                "--cwd",
                folder,
            ],
            "cold": [venv_binary("nbops"), "run", CHURN, "--format", "json"],
            "cold-inline": [
                venv_binary("nbops"),
                "run",
                CHURN,
                "--executor",
                "inline",
                "--format",
                "json",
            ],
            "warm": [venv_binary("nbops"), "run", CHURN, "--format", "json"],
        }
        _check_warm_run_is_cached(commands["warm"], folder, env)
        samples: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(runs):
            for name, argv in commands.items():
                home = folder / ("home-warm" if name == "warm" else "home-cold")
                if name.startswith("cold"):
                    home = folder / f"home-{name}"
                    shutil.rmtree(home, ignore_errors=True)
                samples[name].append(
                    time_process(argv, cwd=folder, env={**env, "NBOPS_HOME": str(home)})
                )
    return _rows(samples)


def _export_script(folder: Path, env: dict[str, str]) -> Path:
    jupyter = venv_binary("jupyter")
    run_checked(
        [jupyter, "nbconvert", "--to", "script", CHURN, "--output-dir", folder], cwd=folder, env=env
    )
    return folder / "churn.py"


def _python() -> str:
    import sys

    return sys.executable


def _check_warm_run_is_cached(argv: list[str | Path], folder: Path, env: dict[str, str]) -> None:
    home = {**env, "NBOPS_HOME": str(folder / "home-warm")}
    run_checked(argv, cwd=folder, env=home)
    record = json.loads(run_checked(argv, cwd=folder, env=home).stdout)
    if {s["status"] for s in record["steps"]} != {"cached"}:
        raise BenchmarkFailed("the warm nbops run was not all cache hits; the workload is wrong")


def _rows(samples: dict[str, list[float]]) -> list[Measurement]:
    workload = "churn.ipynb, whole process"
    script = tuple(samples["script"])
    papermill = tuple(samples["papermill"])
    return [
        Measurement(
            NAME,
            workload,
            "`nbops run` (process executor, the default), cold",
            tuple(samples["cold"]),
            baseline="`nbops run --executor inline`, cold",
            baseline_samples=tuple(samples["cold-inline"]),
            aim="nbops/baseline <= 1.15",
            aim_ratio=1.15,
        ),
        Measurement(
            NAME,
            workload,
            "`nbops run --executor inline`, cold",
            tuple(samples["cold-inline"]),
            baseline="exported script (`nbconvert --to script`, then `python`)",
            baseline_samples=script,
            aim="nbops/baseline <= 1.2",
            aim_ratio=1.2,
        ),
        Measurement(
            NAME,
            workload,
            "`nbops run`, cold (empty .nbops)",
            tuple(samples["cold"]),
            baseline="exported script (`nbconvert --to script`, then `python`)",
            baseline_samples=script,
            aim="nbops/baseline <= 1.2",
            aim_ratio=1.2,
        ),
        Measurement(
            NAME,
            workload,
            "`nbops run`, cold (empty .nbops)",
            tuple(samples["cold"]),
            baseline="papermill",
            baseline_samples=papermill,
            aim="faster than papermill",
            aim_ratio=1.0,
        ),
        Measurement(
            NAME,
            workload,
            "`nbops run`, warm (all cached)",
            tuple(samples["warm"]),
            baseline="papermill",
            baseline_samples=papermill,
            aim="under 1 s, faster than papermill",
            aim_ratio=1.0,
            aim_seconds=1.0,
        ),
        Measurement(
            NAME,
            workload,
            "`nbops run`, warm (all cached)",
            tuple(samples["warm"]),
            baseline="exported script",
            baseline_samples=script,
            aim="under 1 s",
            aim_seconds=1.0,
        ),
    ]
