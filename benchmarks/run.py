"""Run every benchmarks/bench_*.py module, then write and print the results table.

.venv/bin/python benchmarks/run.py [--quick] [--runs N] [NAME ...]
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
NOISE = "Differences under ~15 % are noise on a shared 2-vCPU machine; re-run before trusting one."

sys.path.insert(0, str(HERE))

from measure import RUNS, BenchmarkFailed, Measurement  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    modules = _modules(args.names)
    started, load_before = time.perf_counter(), _load()
    rows: list[Measurement] = []
    try:
        for name in modules:
            print(f"== {name}", file=sys.stderr, flush=True)
            module = importlib.import_module(name)
            rows += module.run(quick=args.quick, runs=args.runs)
    except BenchmarkFailed as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        return 1
    context = _context(args, load_before, time.perf_counter() - started)
    table = render_markdown(rows, context)
    written = _write(rows, context, table)
    print(table)
    print(f"written: {', '.join(str(p.relative_to(HERE.parent)) for p in written)}")
    return 0


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Run nbops's benchmarks.")
    parser.add_argument("names", nargs="*", help="benchmarks to run, e.g. lineage (default: all)")
    parser.add_argument("--quick", action="store_true", help="leave out the slowest workloads")
    parser.add_argument("--runs", type=int, default=RUNS, help="timed runs per measurement")
    return parser.parse_args(argv)


def _modules(names: list[str]) -> list[str]:
    found = sorted(path.stem for path in HERE.glob("bench_*.py"))
    wanted = [f"bench_{name.removeprefix('bench_')}" for name in names] or found
    unknown = sorted(set(wanted) - set(found))
    if unknown:
        known = ", ".join(m.removeprefix("bench_") for m in found)
        raise SystemExit(f"unknown benchmark {', '.join(unknown)}; known: {known}")
    return wanted


def _context(args: argparse.Namespace, load_before: list[float], elapsed: float) -> dict[str, Any]:
    """What a reader needs to judge the numbers: the machine, its load, the versions."""
    return {
        "when": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "commit": _commit(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_before": load_before,
        "load_after": _load(),
        "runs": args.runs,
        "quick": args.quick,
        "versions": {name: _version(name) for name in ("nbops", "nbconvert", "nbformat")},
        "elapsed_s": round(elapsed, 1),
    }


def render_markdown(rows: list[Measurement], context: dict[str, Any]) -> str:
    lines = [
        f"# nbops benchmarks, {context['when']}",
        "",
        "| workload | measure | nbops | baseline | nbops/baseline | aim | met |",
        "| --- | --- | ---: | ---: | ---: | --- | --- |",
    ]
    for row in rows:
        baseline = "" if row.baseline is None else _spread(row.baseline_samples)
        ratio = "" if row.ratio is None else f"{row.ratio:.2f}"
        met = {True: "yes", False: "NO", None: ""}[row.met]
        lines.append(
            f"| {row.workload} | {row.measure} | {_spread(row.samples)} | {baseline} "
            f"| {ratio} | {row.aim} | {met} |"
        )
    baselines = sorted({row.baseline for row in rows if row.baseline})
    load = context["load_before"] + context["load_after"]
    lines += [
        "",
        f"Medians of {context['runs']} timed runs after one warm-up, (min-max) after them; "
        "whole-process pairs alternate which runs first and share one bytecode cache. Baseline: "
        + ", ".join(f"`{b}`" for b in baselines)
        + ", measured in the same run.",
        f"{context['cpus']} CPUs; load average (1/5/15 min) {_triple(load[:3])} before, "
        f"{_triple(load[3:])} after; Python {context['python']}; "
        + ", ".join(f"{k} {v}" for k, v in context["versions"].items())
        + f"; commit {context['commit']}; {context['elapsed_s']} s in all.",
        NOISE,
    ]
    return "\n".join(lines) + "\n"


def _write(rows: list[Measurement], context: dict[str, Any], table: str) -> list[Path]:
    RESULTS.mkdir(exist_ok=True)
    stamp = context["when"].replace(":", "").replace("-", "")
    data = json.dumps({"context": context, "results": [r.as_dict() for r in rows]}, indent=2)
    written = []
    for stem in (stamp, "latest"):
        for suffix, text in ((".json", data + "\n"), (".md", table)):
            path = RESULTS / f"{stem}{suffix}"
            path.write_text(text, encoding="utf-8")
            written.append(path)
    return written


def _spread(samples: tuple[float, ...]) -> str:
    """`0.598 s (0.531-0.665)`: the median, then the fastest and slowest run in the same unit."""
    median = statistics.median(samples)
    scale, unit, digits = (1000, "ms", 1) if median < 0.1 else (1, "s", 3)
    low, high = (f"{value * scale:.{digits}f}" for value in (min(samples), max(samples)))
    return f"{median * scale:.{digits}f} {unit} ({low}-{high})"


def _triple(values: list[float]) -> str:
    return "/".join(f"{v:.2f}" for v in values)


def _load() -> list[float]:
    try:
        return list(os.getloadavg())
    except OSError:
        return [float("nan")] * 3


def _commit() -> str:
    git = ["git", "-C", str(HERE.parent)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    if head.returncode != 0:
        return "unknown"
    dirty = subprocess.run([*git, "status", "--porcelain"], capture_output=True, text=True)
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


if __name__ == "__main__":
    sys.exit(main())
