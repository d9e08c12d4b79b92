"""What a step's imports come from: installed distributions and their versions, or module files
beside the notebook. Both go into the step's cache key, so an upgrade re-runs its importers."""

from __future__ import annotations

import functools
import importlib.metadata
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

UNKNOWN_VERSION = "?"


@functools.cache
def module_distributions() -> Mapping[str, list[str]]:
    """Top-level module -> the distributions that provide it, built once per process: it reads
    every installed distribution's metadata, which takes a while (a distribution installed
    after that is seen by the next process)."""
    return importlib.metadata.packages_distributions()


def library_versions(modules: Iterable[str]) -> dict[str, str]:
    """{distribution: version} of the distributions the modules come from, sorted by name;
    standard-library modules, and modules no distribution provides, contribute nothing."""
    table = module_distributions()
    found: dict[str, str] = {}
    for module in modules:
        if module in sys.stdlib_module_names:
            continue
        for distribution in table.get(module, ()):
            found[distribution] = _version(distribution)
    return dict(sorted(found.items()))


def local_modules(modules: Iterable[str], folder: Path) -> list[str]:
    """The modules that are the notebook's own files (`helpers.py`, or a `helpers/` package
    beside it), as paths and globs relative to its folder: their content counts, as a data
    file's does. A module a distribution provides is that distribution's."""
    table = module_distributions()
    found: list[str] = []
    for module in modules:
        if module in sys.stdlib_module_names or module in table:
            continue
        if (folder / f"{module}.py").is_file():
            found.append(f"{module}.py")
        elif (folder / module / "__init__.py").is_file():
            found.append(f"{module}/**/*.py")
    return found


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution) or UNKNOWN_VERSION
    except importlib.metadata.PackageNotFoundError:  # its metadata went away since the map
        return UNKNOWN_VERSION
