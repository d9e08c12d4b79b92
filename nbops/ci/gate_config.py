"""The gates a notebook declares for CI (and the sidebar): pyproject.toml's `[tool.nbops]`
table, else the notebook's own `metadata.nbops`, read into one value both agree on.

    [tool.nbops.notebooks."example_notebooks/churn.ipynb"]   # path from the project root
    require = ["test_accuracy>=0.8"]                        # gates of run, test and deploy
    must_beat = ["test_accuracy"]                           # deploy: not worse than serving
    tolerance = 0.005                                       # deploy: this much worse is fine
    params_file = "ci/churn.yaml"                           # --params-file of every run

A notebook's metadata may hold the same keys (`{"nbops": {"require": [...]}}`); a key the
pyproject entry sets wins over the metadata's. Everything here is pure but the two `read_`
functions at the end, which only read the files.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbops.ci.gates import Gate, Rival, parse_gates, parse_must_beat
from nbops.errors import CiConfigError, GateError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

PYPROJECT = "pyproject.toml"
KEYS = ("require", "must_beat", "tolerance", "params_file")


@dataclass(frozen=True)
class DeclaredGates:
    """What one notebook declares; `sources` says where each key came from, for messages."""

    require: tuple[Gate, ...] = ()
    must_beat: tuple[Rival, ...] = ()
    tolerance: float = 0.0
    params_file: str | None = None
    sources: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "require": [str(gate) for gate in self.require],
            "must_beat": [str(rival) for rival in self.must_beat],
            "tolerance": self.tolerance,
            "params_file": self.params_file,
            "sources": list(self.sources),
        }


def parse_pyproject(text: str, where: str = PYPROJECT) -> dict[str, Any]:
    """A pyproject.toml's text as data; a file that is not TOML is a CiConfigError."""
    try:
        data: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise CiConfigError(f"is not valid TOML: {error}.", where=where) from None
    return data


def tool_table(pyproject_text: str, where: str = PYPROJECT) -> dict[str, Any]:
    """The `[tool.nbops]` table of a pyproject.toml's text; empty without one."""
    table = parse_pyproject(pyproject_text, where).get("tool", {}).get("nbops", {})
    if not isinstance(table, dict):
        raise CiConfigError("[tool.nbops] must be a table.", where=where)
    return table


def notebook_tables(tool: Mapping[str, Any], where: str = PYPROJECT) -> dict[str, dict[str, Any]]:
    """`[tool.nbops.notebooks."PATH"]` tables by notebook path, their keys checked."""
    tables = tool.get("notebooks", {})
    if not isinstance(tables, dict) or not all(isinstance(t, dict) for t in tables.values()):
        raise CiConfigError(
            "[tool.nbops.notebooks] must hold one table per notebook.",
            where=where,
            fix='Write [tool.nbops.notebooks."churn.ipynb"] with require = ["accuracy>=0.8"].',
        )
    for path, table in tables.items():
        unknown = sorted(set(table) - set(KEYS))
        if unknown:
            raise CiConfigError(
                f"{', '.join(unknown)} is not a key nbops reads.",
                where=f'{where} [tool.nbops.notebooks."{path}"]',
                fix=f"Its keys are: {', '.join(KEYS)}.",
            )
    return tables


def declared_gates(
    notebook: str, tool: Mapping[str, Any], metadata: Mapping[str, Any]
) -> DeclaredGates:
    """The gates of `notebook` (its path from the project root, with `/`): the keys of its
    pyproject entry, then those of its `metadata.nbops` that the entry does not set."""
    entry = notebook_tables(tool).get(notebook, {})
    own = metadata.get("nbops") or {}
    if not isinstance(own, dict):
        raise CiConfigError("metadata.nbops must be an object.", where=notebook)
    chosen: dict[str, tuple[Any, str]] = {}
    for key in KEYS:
        if key in entry:
            chosen[key] = (entry[key], f'{PYPROJECT} [tool.nbops.notebooks."{notebook}"] {key}')
        elif key in own:
            chosen[key] = (own[key], f"{notebook} metadata.nbops.{key}")
    return DeclaredGates(
        require=_gates(chosen.get("require")),
        must_beat=_rivals(chosen.get("must_beat")),
        tolerance=_tolerance(chosen.get("tolerance")),
        params_file=_text(chosen.get("params_file")),
        sources=tuple(where for _, where in chosen.values()),
    )


def _texts(found: tuple[Any, str] | None) -> tuple[tuple[str, ...], str]:
    """A list of strings (or one string) and where it was declared."""
    if found is None:
        return (), ""
    value, where = found
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise CiConfigError(
            f"must be a list of strings, not {value!r}.",
            where=where,
            fix='Write it like ["test_accuracy>=0.8"].',
        )
    return tuple(values), where


def _gates(found: tuple[Any, str] | None) -> tuple[Gate, ...]:
    texts, where = _texts(found)
    try:
        return parse_gates(texts)
    except GateError as error:
        raise _declared(error, where) from None


def _rivals(found: tuple[Any, str] | None) -> tuple[Rival, ...]:
    texts, where = _texts(found)
    try:
        return parse_must_beat(texts)
    except GateError as error:
        raise _declared(error, where) from None


def _declared(error: GateError, where: str) -> CiConfigError:
    """A gate's own error, placed where it was declared: `--require 'acc=0.8'` -> `'acc=0.8'`."""
    written = error.where.split(" ", 1)[-1]
    return CiConfigError(f"{written}: {error.message}", where=where, fix=error.fix)


def _tolerance(found: tuple[Any, str] | None) -> float:
    if found is None:
        return 0.0
    value, where = found
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or value < 0:
        raise CiConfigError(
            f"must be a number of 0 or more, not {value!r}.", where=where, fix="e.g. 0.005"
        )
    return float(value)


def _text(found: tuple[Any, str] | None) -> str | None:
    if found is None:
        return None
    value, where = found
    if not isinstance(value, str) or not value:
        raise CiConfigError(f"must be a file path, not {value!r}.", where=where)
    return value


def read_tool_table(root: Path) -> dict[str, Any]:
    """`[tool.nbops]` of the pyproject.toml in `root`; empty when there is none."""
    path = root / PYPROJECT
    return tool_table(path.read_text(encoding="utf-8")) if path.is_file() else {}


def read_declared_gates(notebook: Path, root: Path) -> DeclaredGates:
    """The gates `notebook` declares, from `root`'s pyproject.toml and its own metadata."""
    relative = notebook.resolve().relative_to(root.resolve()).as_posix()
    try:
        metadata = json.loads(notebook.read_text(encoding="utf-8")).get("metadata") or {}
    except (OSError, ValueError, AttributeError):
        metadata = {}  # nbops check names what is wrong with the file; no gates from it here
    return declared_gates(relative, read_tool_table(root), metadata)
