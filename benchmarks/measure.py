"""Timing: whole processes and in-process calls, warmed up once, summarised by their median."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RUNS = 5


class BenchmarkFailed(Exception):
    """A measured command failed or produced the wrong thing; the numbers would mean nothing."""


@dataclass(frozen=True)
class Measurement:
    """One row of the results: nbops's samples and, when there is one, the baseline's."""

    benchmark: str
    workload: str
    measure: str
    samples: tuple[float, ...]
    baseline: str | None = None
    baseline_samples: tuple[float, ...] = ()
    aim: str = ""
    aim_ratio: float | None = None
    aim_seconds: float | None = None
    # At most this many seconds above the baseline, run by run (see `excess`).
    aim_over_baseline_s: float | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def baseline_median(self) -> float | None:
        return statistics.median(self.baseline_samples) if self.baseline_samples else None

    @property
    def ratio(self) -> float | None:
        base = self.baseline_median
        return self.median / base if base else None

    @property
    def met(self) -> bool | None:
        """Whether the aim is reached; None when the row has no aim."""
        if self.aim_ratio is not None and self.ratio is not None:
            return self.ratio <= self.aim_ratio
        if self.aim_seconds is not None:
            return self.median < self.aim_seconds
        excess = self.excess
        if self.aim_over_baseline_s is not None and excess is not None:
            return excess <= self.aim_over_baseline_s
        return None

    @property
    def excess(self) -> float | None:
        """How far the samples lie above the baseline's: the median of the differences run by
        run when both have one sample per run (taken side by side, so drift in the machine's
        load cancels), else the difference of the medians."""
        base = self.baseline_median
        if base is None:
            return None
        if len(self.samples) != len(self.baseline_samples):
            return self.median - base
        return statistics.median(
            a - b for a, b in zip(self.samples, self.baseline_samples, strict=True)
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "benchmark": self.benchmark,
            "workload": self.workload,
            "measure": self.measure,
            "median_s": self.median,
            "samples_s": list(self.samples),
            "baseline": self.baseline,
            "baseline_median_s": self.baseline_median,
            "baseline_samples_s": list(self.baseline_samples),
            "ratio": self.ratio,
            "excess_s": self.excess if self.aim_over_baseline_s is not None else None,
            "aim": self.aim,
            "met": self.met,
            "notes": self.notes,
        }


def venv_binary(name: str) -> Path:
    """A console script installed next to the running interpreter (the checkout's venv)."""
    path = Path(sys.executable).parent / name
    if not path.is_file():
        raise BenchmarkFailed(f"{path} is missing; run `make setup` to install nbops[bench].")
    return path


def user_environment(pycache: Path) -> dict[str, str]:
    """This environment, but with bytecode caching on, as on a user's machine.

    With PYTHONDONTWRITEBYTECODE set (as in CI and some containers), an editable nbops is
    compiled from source on every run while site-packages (nbconvert) has its .pyc files from
    pip; that costs nbops ~30 ms a run. The cache goes to a temporary prefix, not the checkout.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def run_checked(
    argv: Sequence[str | Path], *, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run a command once, capturing its output; a non-zero exit stops the benchmark."""
    completed = subprocess.run(
        [str(a) for a in argv], cwd=cwd, env=env, capture_output=True, check=False
    )
    if completed.returncode != 0:
        raise BenchmarkFailed(_failure(argv, completed.returncode, completed.stderr))
    return completed


def time_process(
    argv: Sequence[str | Path], *, cwd: Path, env: dict[str, str] | None = None
) -> float:
    """Wall time of one run, output sent to /dev/null so neither side pays for a pipe."""
    start = time.perf_counter()
    completed = subprocess.run(
        [str(a) for a in argv],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        check=False,
    )
    elapsed = time.perf_counter() - start
    if completed.returncode != 0:
        raise BenchmarkFailed(_failure(argv, completed.returncode, completed.stderr))
    return elapsed


def time_processes_side_by_side(
    candidate: Sequence[str | Path],
    baseline: Sequence[str | Path],
    *,
    cwd: Path,
    env: dict[str, str] | None = None,
    runs: int = RUNS,
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Both commands timed in alternating order (ABBA...), so drift in load hits both alike.

    The caller has already run each once (its warm-up, which also checks the output).
    """
    ours: list[float] = []
    theirs: list[float] = []
    for round_ in range(runs):
        if round_ % 2 == 0:
            ours.append(time_process(candidate, cwd=cwd, env=env))
            theirs.append(time_process(baseline, cwd=cwd, env=env))
        else:
            theirs.append(time_process(baseline, cwd=cwd, env=env))
            ours.append(time_process(candidate, cwd=cwd, env=env))
    return tuple(ours), tuple(theirs)


def time_call(call: Callable[[], Any], *, runs: int = RUNS) -> tuple[float, ...]:
    """Wall time of an in-process call, after one untimed warm-up call."""
    call()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return tuple(samples)


def _failure(argv: Sequence[str | Path], code: int, stderr: bytes) -> str:
    tail = stderr.decode(errors="replace").strip().splitlines()[-10:]
    command = " ".join(str(a) for a in argv)
    return f"`{command}` exited with {code}:\n" + "\n".join(tail)
