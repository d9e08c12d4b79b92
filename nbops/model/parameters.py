"""Parameters read from the parameters cell: literal assignments, typed, with their comments."""

from __future__ import annotations

import ast
import difflib
import io
import tokenize
from typing import Any

from nbops.errors import ParameterError
from nbops.model.diagnostic import Diagnostic, Severity
from nbops.model.pipeline import CellRef, Parameter
from nbops.model.sections import CodeCell

LITERAL_FIX = (
    "Parameters are injected as literals (papermill's way), so give a literal here "
    "and compute derived values in a step or the setup cell."
)


def read_parameters(cells: tuple[CodeCell, ...]) -> tuple[tuple[Parameter, ...], list[Diagnostic]]:
    """Parameters in order of first definition; later cells (papermill's injected) override."""
    found: dict[str, Parameter] = {}
    problems: list[Diagnostic] = []
    for code in cells:
        comments = _comments_by_line(code.cell.source)
        for statement in code.python.tree.body:
            parameter = _parameter(code, statement, comments, problems)
            if parameter is not None:
                previous = found.get(parameter.name)
                keep_help = previous.help if previous and not parameter.help else parameter.help
                found[parameter.name] = Parameter(
                    parameter.name,
                    parameter.default,
                    parameter.type,
                    keep_help,
                    previous.cell if previous else parameter.cell,
                    previous.line if previous else parameter.line,
                )
    return tuple(found.values()), problems


def _parameter(
    code: CodeCell, statement: ast.stmt, comments: dict[int, str], problems: list[Diagnostic]
) -> Parameter | None:
    target, value, annotation = _assignment(statement)
    if target is None:
        if not _is_docstring(statement):
            problems.append(
                _problem(
                    code,
                    statement.lineno,
                    "a parameters cell holds only assignments of literals, one per line.",
                    "Move other code to the setup cell or a step.",
                )
            )
        return None
    try:
        default = ast.literal_eval(value) if value is not None else None
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        problems.append(
            _problem(
                code,
                statement.lineno,
                f"parameter {target!r} is set to {ast.unparse(value)!r}, which is not a literal."
                if value is not None
                else f"parameter {target!r} has no value.",
                LITERAL_FIX,
            )
        )
        return None
    kind = annotation or type_name(default)
    help_text = comments.get(statement.end_lineno or statement.lineno, "")
    return Parameter(
        target, default, kind, help_text, CellRef(code.cell.index, code.cell.id), statement.lineno
    )


def _assignment(statement: ast.stmt) -> tuple[str | None, ast.expr | None, str | None]:
    if (
        isinstance(statement, ast.Assign)
        and len(statement.targets) == 1
        and isinstance(statement.targets[0], ast.Name)
    ):
        return statement.targets[0].id, statement.value, None
    if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
        return statement.target.id, statement.value, ast.unparse(statement.annotation)
    return None, None, None


def _is_docstring(statement: ast.stmt) -> bool:
    return isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant)


def type_name(value: Any) -> str:
    return "None" if value is None else type(value).__name__


def _comments_by_line(source: str) -> dict[int, str]:
    comments: dict[int, str] = {}
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.COMMENT and not token.string.startswith("#|"):
                comments[token.start[0]] = token.string.lstrip("#").strip()
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass
    return comments


def _problem(code: CodeCell, line: int, message: str, fix: str) -> Diagnostic:
    return Diagnostic(
        Severity.ERROR,
        message,
        fix,
        cell_index=code.cell.index,
        cell_id=code.cell.id,
        line=line,
        tag=code.tag,
    )


def parse_overrides(pairs: tuple[str, ...], parameters: tuple[Parameter, ...]) -> dict[str, Any]:
    """`-p name=value` pairs, values read as Python literals (else text), checked by name."""
    known = {p.name: p for p in parameters}
    values: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ParameterError(
                f"{pair!r} is not NAME=VALUE.", fix="Write it like -p n_estimators=200."
            )
        if name not in known:
            raise ParameterError(f"there is no parameter {name!r}.", fix=_known_fix(name, known))
        values[name] = _coerce(text, known[name])
    return values


def _coerce(text: str, parameter: Parameter) -> Any:
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        value = text  # a bare word is text, as on papermill's command line
    if value is None:
        # A literal default is typed as `<its type> | None`: `-p max_depth=None` is how
        # scikit-learn's "no limit" is asked for, and papermill reads `None` the same way.
        return None
    if parameter.type == "float" and type(value) is int:
        return float(value)
    if parameter.type == "str" and not isinstance(value, str):
        return text
    if parameter.type in {"int", "float", "bool"} and type_name(value) != parameter.type:
        article = "an" if parameter.type == "int" else "a"
        raise ParameterError(
            f"parameter {parameter.name!r} is {parameter.type} "
            f"(default {parameter.default!r}), and {text!r} is not.",
            fix=f"Pass {article} {parameter.type} (or None), "
            f"e.g. -p {parameter.name}={parameter.default!r}.",
        )
    return value


def _known_fix(name: str, known: dict[str, Parameter]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    if close:
        return f"Did you mean {close[0]!r}?"
    return f"Parameters are: {', '.join(known) or 'none (tag a cell parameters)'}."
