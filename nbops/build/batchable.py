"""Batch serve functions (`serve batch`) checked at build time with their example call.

The function is called as the service calls it, in a child process that imports the staged
service, so the build's own process never imports user code: with the example's first item
alone, and with three items (the example's, repeated when it has fewer). Each call must return
a list with one result per item, and each item's result in the list of three must equal its
result alone: the service hands the function whatever requests are waiting, so a result that
depends on its neighbours would answer one client with another's data.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import math
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nbops.model.endpoints import class_name
from nbops.model.examples import smoke_example
from nbops.model.pipeline import Endpoint, Pipeline

# The child's exit code when the function broke the rules: its stdout is the reason, as JSON.
BROKEN = 3
ITEMS = 3  # the list of several items the function is called with


def check_batch_functions(pipeline: Pipeline, staging: Path, manifest: Path) -> None:
    """Raise BuildFailed when a batch function's example call shows it breaks the rules."""
    for endpoint in pipeline.endpoints:
        example = smoke_example(pipeline, endpoint) if endpoint.batch else None
        if example is None or not example.items:
            continue
        plan = {
            "function": endpoint.name,
            "model": f"{class_name(endpoint.name)}Input",
            "argument": endpoint.arguments[0].name,
            "items": list(example.items),
            "manifest": str(manifest),
        }
        _check_in_child(pipeline, endpoint, plan, staging)


def _check_in_child(
    pipeline: Pipeline, endpoint: Endpoint, plan: dict[str, Any], staging: Path
) -> None:
    from nbops.build.builder import BuildFailed

    env = {k: v for k, v in os.environ.items() if k != "NBOPS_STORE"}
    done = subprocess.run(
        [sys.executable, "-m", "nbops.build.batchable", json.dumps(plan)],
        cwd=staging,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode == 0:
        return
    cell = endpoint.cells[0]
    where = f"{pipeline.notebook.display_name} cell {cell.index} [serve]"
    if done.returncode == BROKEN:
        raise BuildFailed(
            f"serve function {endpoint.name!r} is tagged 'batch', but {json.loads(done.stdout)}, "
            "so the build was not replaced.",
            where=where,
            fix="Return a list with one result per item of the list, in its order, each "
            "computed from its item alone; or remove the 'batch' tag.",
        )
    raise BuildFailed(
        f"serve function {endpoint.name!r} could not be checked with its example's items, so "
        "the build was not replaced.",
        where=where,
        fix="It must answer the example's items once the service has started (the error is "
        "above).",
        details=(done.stdout + done.stderr).strip(),
    )


def judge(function: Callable[..., Any], items: list[Any], plain: Callable[[Any], Any]) -> str:
    """What is wrong with the function's answers to `items` alone and together ("" if
    nothing): wrong lengths, or an item answered differently beside others."""
    several = (items * ITEMS)[:ITEMS]
    alone: list[Any] = []
    for item in several:
        results = _called(function, [item])
        if _count(results) != 1:
            return f"called with a list of 1 item it returned {_described(results)}"
        alone.append(plain(list(results)[0]))
    together = _called(function, several)
    if _count(together) != ITEMS:
        return f"called with a list of {ITEMS} items it returned {_described(together)}"
    for index, (result, single) in enumerate(zip(together, alone, strict=True)):
        if not same(plain(result), single):
            return (
                f"item {index} of a list of {ITEMS} got {_shown(plain(result))} but "
                f"{_shown(single)} alone"
            )
    return ""


def _called(function: Callable[..., Any], items: list[Any]) -> Any:
    if inspect.iscoroutinefunction(function):
        return asyncio.run(function(items))
    return function(items)


def _count(results: Any) -> int | None:
    """How many results a list (a tuple, an array) holds; None for anything else."""
    if isinstance(results, (list, tuple)):
        return len(results)
    if type(results).__module__ == "numpy" and getattr(results, "ndim", 0) > 0:
        return len(results)
    return None


def _described(results: Any) -> str:
    count = _count(results)
    if count is None:
        return f"an object of type {type(results).__name__}, not a list"
    return f"{count} result" + ("" if count == 1 else "s")


def _shown(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def same(a: Any, b: Any) -> bool:
    """Equal as JSON carries them, floats to within rounding (a batch may sum in another
    order)."""
    if isinstance(a, BaseException) or isinstance(b, BaseException):  # an item's failure
        return type(a) is type(b) and str(a) == str(b)
    if isinstance(a, float) or isinstance(b, float):
        both = isinstance(a, (int, float)) and isinstance(b, (int, float))
        return both and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def main(plan: dict[str, Any]) -> None:
    """In the child, inside the staged build: load the service, call, judge."""
    staging = Path.cwd()
    sys.path.insert(0, str(staging))
    from service import schemas  # type: ignore[import-not-found]
    from service.artifacts import start  # type: ignore[import-not-found]
    from service.routes import plain  # type: ignore[import-not-found]

    startup = start(Path(plan["manifest"]), staging / "artifacts")
    if startup.endpoints is None:
        raise SystemExit(f"the service did not start: {startup.reason}")
    function = getattr(startup.endpoints, plan["function"])
    model = getattr(schemas, plan["model"])
    items = [model.model_validate({plan["argument"]: item}).item() for item in plan["items"]]
    problem = judge(function, items, plain)
    if problem:
        print(json.dumps(problem))
        raise SystemExit(BROKEN)


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
