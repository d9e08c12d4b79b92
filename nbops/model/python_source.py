"""A cell's source as Python: IPython syntax translated by IPython itself, cell magics sorted."""

from __future__ import annotations

import ast
import shlex
from dataclasses import dataclass

# Cell magics that run their body as Python in the user's namespace.
PYTHON_BODY_MAGICS = frozenset({"time", "timeit", "capture", "prun", "debug"})
# Cell magics that write their body to a file: the body is text, the file is an output.
FILE_MAGICS = frozenset({"writefile", "file"})


@dataclass(frozen=True)
class SyntaxProblem:
    line: int
    message: str


@dataclass(frozen=True)
class CellPython:
    """The parsed Python of a cell; `tree` is empty when the cell is not code (e.g. `%%bash`).

    `plain` is True when the source is plain Python as written (no magic, no `!shell`), so the
    code a build generates is the source itself and `tree` is its tree.
    """

    tree: ast.Module
    cell_magic: str | None = None
    files_written: tuple[str, ...] = ()
    magic_writes: tuple[str, ...] = ()
    syntax_error: SyntaxProblem | None = None
    plain: bool = False


EMPTY = ast.Module(body=[], type_ignores=[])


def cell_python(source: str) -> CellPython:
    """Parse a cell; IPython's transformer is imported only for cells plain Python cannot parse."""
    blank, rest = _leading_blank_lines(source)
    first, _, body = rest.partition("\n")
    if first.startswith("%%"):  # IPython, too, looks for it past leading blank lines
        return _cell_magic(first[2:], body, body_line=blank + 2)
    try:
        return CellPython(tree=ast.parse(source), plain=True)
    except (SyntaxError, ValueError):
        pass
    tree, problem = parse_ipython(source)
    return CellPython(tree=tree, syntax_error=problem)


def parse_ipython(source: str) -> tuple[ast.Module, SyntaxProblem | None]:
    """Parse source that may hold IPython syntax; lines keep their numbers."""
    try:
        return ast.parse(source), None
    except SyntaxError:
        pass
    except ValueError as error:  # e.g. null bytes in the source
        return EMPTY, SyntaxProblem(1, str(error))
    try:
        return ast.parse(_ipython_to_python(source)), None
    except SyntaxError as error:
        return EMPTY, SyntaxProblem(error.lineno or 1, error.msg)
    except ValueError as error:
        return EMPTY, SyntaxProblem(1, str(error))


def _ipython_to_python(source: str) -> str:
    from IPython.core.inputtransformer2 import TransformerManager

    # The transformer drops leading blank lines; putting them back keeps the line numbers.
    blank, rest = _leading_blank_lines(source)
    transformed: str = TransformerManager().transform_cell(rest)  # type: ignore[no-untyped-call]
    return "\n" * blank + transformed


def _leading_blank_lines(source: str) -> tuple[int, str]:
    """How many whitespace-only lines open the source, and the source after them."""
    lines = source.split("\n")
    count = next((i for i, line in enumerate(lines) if line.strip()), 0)
    return count, "\n".join(lines[count:])


def _cell_magic(line: str, body: str, body_line: int) -> CellPython:
    name, _, args = line.partition(" ")
    name = name.strip()
    if name in PYTHON_BODY_MAGICS:
        # Leading blank lines keep the body's line numbers those of the cell.
        tree, problem = parse_ipython("\n" * (body_line - 1) + body)
        writes = _capture_target(args) if name == "capture" else ()
        return CellPython(tree=tree, cell_magic=name, magic_writes=writes, syntax_error=problem)
    files = _written_file(args) if name in FILE_MAGICS else ()
    return CellPython(tree=EMPTY, cell_magic=name, files_written=files)


def _words(args: str) -> list[str]:
    try:
        return shlex.split(args)
    except ValueError:
        return args.split()


def _written_file(args: str) -> tuple[str, ...]:
    paths = [word for word in _words(args) if not word.startswith("-")]
    return (paths[0],) if paths else ()


def _capture_target(args: str) -> tuple[str, ...]:
    names = [word for word in _words(args) if not word.startswith("-")]
    return (names[0],) if names and names[0].isidentifier() else ()
