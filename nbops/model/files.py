"""The data files a cell reads, found in its syntax tree: path literals given to `open`,
`pd.read_csv`, `np.load`, `joblib.load`, `Path(...).read_text()` and the like."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

# Calls whose first argument is a file read: `np.load`, `joblib.load`, `np.loadtxt`, ... A
# `read_*` method (pandas, polars, geopandas) is one too.
LOADERS = frozenset({"load", "loadtxt", "genfromtxt", "fromfile", "load_workbook", "imread"})
# `read_*` calls whose argument is a query or the like, not a file.
NOT_FILES = frozenset(
    {"read_sql", "read_sql_query", "read_sql_table", "read_gbq", "read_clipboard"}
)
# Keyword names a reader takes its path by (`pd.read_csv(filepath_or_buffer="data.csv")`).
PATH_KEYWORDS = ("filepath_or_buffer", "path", "path_or_buf", "io", "file", "fname", "source")
# `Path("data.csv").read_text()`: the methods of a path that read it.
PATH_READS = frozenset({"read_text", "read_bytes", "open"})
# Modes of `open` that write rather than read.
WRITE_MODES = frozenset("wax")
STATIC = "static"
TAGGED = "reads"


@dataclass(frozen=True)
class DataFile:
    """A data file a step reads, as the notebook writes it (relative to the notebook's folder,
    or absolute; a glob for a `reads=` one), and how nbops knows: `static` (found in the code)
    or `reads` (a `reads=` tag)."""

    path: str
    found: str = STATIC

    def __post_init__(self) -> None:
        if self.found not in (STATIC, TAGGED):
            raise ValueError(f"data file {self.path!r} found {self.found!r}, not static or reads")

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "found": self.found}


def files_read(tree: ast.Module) -> tuple[str, ...]:
    """The file paths the code passes as string literals to calls that read files, in the
    order they appear; URLs and f-strings are left out (nbops cannot hash what it cannot see)."""
    calls = sorted(
        (node for node in ast.walk(tree) if isinstance(node, ast.Call)),
        key=lambda call: (call.lineno, call.col_offset),
    )
    found = (_read_path(call) for call in calls)
    return tuple(dict.fromkeys(path for path in found if path is not None and _is_local(path)))


def _read_path(call: ast.Call) -> str | None:
    """The path literal this call reads, or None when it reads none nbops can see."""
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    if name == "open" and isinstance(func, ast.Name):
        return None if _writes(call) else _first_path(call)
    if isinstance(func, ast.Attribute) and name in PATH_READS:
        receiver = func.value  # `Path("data.csv").read_text()`
        if isinstance(receiver, ast.Call) and _callee(receiver) == "Path":
            return None if name == "open" and _writes(call) else _first_path(receiver)
        return None
    if name is None or name in NOT_FILES:
        return None
    if name.startswith("read_") or name in LOADERS:
        return _first_path(call)
    return None


def _first_path(call: ast.Call) -> str | None:
    """The call's first positional argument, or its path keyword, when it is a str literal."""
    candidates: Iterator[ast.expr] = iter(call.args[:1])
    if not call.args:
        candidates = (k.value for k in call.keywords if k.arg in PATH_KEYWORDS)
    node = next(candidates, None)
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _writes(call: ast.Call) -> bool:
    """`open(path, "w")`, `open(path, mode="a")`: a write, not a read."""
    mode = call.args[1] if len(call.args) > 1 else None
    mode = mode or next((k.value for k in call.keywords if k.arg == "mode"), None)
    return (
        isinstance(mode, ast.Constant)
        and isinstance(mode.value, str)
        and bool(WRITE_MODES & set(mode.value))
    )


def _callee(call: ast.Call) -> str | None:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)


def _is_local(path: str) -> bool:
    """A path on this machine: not a URL, not empty, one line (not a text literal)."""
    return bool(path.strip()) and "://" not in path and "\n" not in path
