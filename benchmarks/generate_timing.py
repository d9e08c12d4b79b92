"""Time analyse + generate (package, tests, service, packaging) in one process; print JSON.

Run by bench_build.py with this checkout's nbops or, first on PYTHONPATH, an earlier one, so
it imports from either layout: `python generate_timing.py NOTEBOOK RUNS`.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
from typing import Any

# (module in the layered package, module in the flat one) for each function used.
PLACES = {
    "load_notebook": ("nbops.model.notebook", "nbops.notebook"),
    "analyse": ("nbops.model.analysis", "nbops.analysis"),
    "render_pipeline": ("nbops.build.codegen", "nbops.codegen"),
    "render_tests": ("nbops.build.codegen", "nbops.codegen"),
    "render_service": ("nbops.build.service", "nbops.service"),
    "render_packaging": ("nbops.build.packaging", "nbops.packaging"),
    "current_environment": ("nbops.build.packaging", "nbops.packaging"),
}


def function(name: str) -> Any:
    for module in PLACES[name]:
        try:
            return getattr(importlib.import_module(module), name)
        except ModuleNotFoundError:
            continue
    raise SystemExit(f"no {name} in {PLACES[name]}")


def main() -> None:
    path, runs = sys.argv[1], int(sys.argv[2])
    notebook = function("load_notebook")(path)
    analyse = function("analyse")
    renders = [function(n) for n in ("render_pipeline", "render_tests", "render_service")]
    packaging, environment = function("render_packaging"), function("current_environment")()

    def once() -> int:
        pipeline = analyse(notebook)  # a fresh model: nothing parsed is carried over
        files = [f for render in renders for f in render(pipeline)]
        return len(files) + len(packaging(pipeline, environment))

    files = once()  # warm-up: imports, template compilation
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        once()
        samples.append(time.perf_counter() - start)
    print(json.dumps({"samples": samples, "files": files}))


if __name__ == "__main__":
    main()
