"""Parameters cells: literal assignments are the parameters; other statements run after them."""

from __future__ import annotations

import ast
import difflib
import io
import itertools
import tokenize
from collections.abc import Mapping
from typing import Any

from nbops.errors import ParameterError
from nbops.model.dataflow import scan
from nbops.model.diagnostic import Diagnostic, Severity
from nbops.model.pipeline import CellRef, Parameter, ParameterCode, Pipeline
from nbops.model.sections import CodeCell


def read_parameters(
    cells: tuple[CodeCell, ...],
) -> tuple[tuple[Parameter, ...], tuple[ParameterCode, ...], list[Diagnostic]]:
    """Parameters in order of first definition (later cells, papermill's injected, override),
    and each cell's other statements, which run after the values are injected."""
    found: dict[str, Parameter] = {}
    code_parts: list[ParameterCode] = []
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
        part = parameter_code(code)
        if part is not None:
            code_parts.append(part)
            problems.append(_not_parameters(code, part))
    return tuple(found.values()), tuple(code_parts), problems


def parameter_code(code: CodeCell) -> ParameterCode | None:
    """The statements of a parameters cell that are not parameters, as papermill runs them;
    None when every statement is a parameter (or a docstring)."""
    syntax = code.plain.syntax
    if syntax is None:
        return None
    tree, offset = syntax
    extra = [s for s in tree.body if not _is_parameter(s) and not _is_docstring(s)]
    if not extra:
        return None
    lines = code.plain.code.splitlines()
    kept = [""] * len(lines)
    for statement in extra:
        first, last = statement.lineno - offset, (statement.end_lineno or statement.lineno) - offset
        kept[first - 1 : last] = lines[first - 1 : last]
    names = scan(ast.Module(body=extra, type_ignores=[]))
    return ParameterCode(
        cell=CellRef(code.cell.index, code.cell.id),
        lines=tuple(s.lineno for s in extra),
        source="\n" * offset + "\n".join(kept).rstrip() + "\n",
        reads=tuple(names.reads),
        writes=tuple(names.writes),
    )


def parameter_code_key(pipeline: Pipeline, parameters: Mapping[str, Any]) -> dict[str, Any]:
    """What the parameters cell's other statements add to every step's cache key: their code
    and the values of the parameters they read (nothing when there are none)."""
    if not pipeline.parameter_code:
        return {}
    read = {name for part in pipeline.parameter_code for name in part.reads}
    return {
        "parameter_code": [part.source for part in pipeline.parameter_code],
        "parameter_code_reads": {n: repr(v) for n, v in parameters.items() if n in read},
    }


def _not_parameters(code: CodeCell, part: ParameterCode) -> Diagnostic:
    listed = ", ".join(str(line) for line in part.lines)
    if len(part.lines) == 1:
        what = f"line {listed} is not a parameter (a literal assignment); nbops runs it"
    else:
        what = f"lines {listed} are not parameters (literal assignments); nbops runs them"
    fix = "Nothing to do if that is meant."
    if part.writes:
        one = len(part.writes) == 1
        computed = ", ".join(repr(n) for n in part.writes)
        it = "it" if one else "them"
        fix += (
            f" {computed} {'is' if one else 'are'} computed, not "
            f"{'a parameter' if one else 'parameters'}: -p cannot set {it}. nbops test "
            f"computes {it} again from the values given, but papermill run by hand computes "
            f"{it} from the defaults, since it injects values after this cell."
        )
    return Diagnostic(
        Severity.WARNING,
        f"{what} after injecting the parameter values, before setup, so every step sees what "
        "the parameters cell computes.",
        fix,
        cell_index=code.cell.index,
        cell_id=code.cell.id,
        line=part.lines[0],
        tag=code.tag,
    )


def _parameter(
    code: CodeCell, statement: ast.stmt, comments: dict[int, str], problems: list[Diagnostic]
) -> Parameter | None:
    target, value, annotation = _assignment(statement)
    if target is None or (value is not None and not _is_literal(value)):
        return None  # other code: run after the parameters (parameter_code)
    if value is None:
        problems.append(
            _problem(
                code,
                statement.lineno,
                f"parameter {target!r} has no value.",
                "Give it a literal default, e.g. 'n: int = 10'.",
            )
        )
        return None
    default = ast.literal_eval(value)
    kind = annotation or type_name(default)
    help_text = comments.get(statement.end_lineno or statement.lineno, "")
    return Parameter(
        target, default, kind, help_text, CellRef(code.cell.index, code.cell.id), statement.lineno
    )


def _is_parameter(statement: ast.stmt) -> bool:
    """A literal assignment to one name (an annotation without value counts: it is reported)."""
    target, value, _ = _assignment(statement)
    return target is not None and (value is None or _is_literal(value))


def _is_literal(value: ast.expr) -> bool:
    try:
        ast.literal_eval(value)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


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


def parse_sweep(
    pairs: tuple[str, ...], parameters: tuple[Parameter, ...], grid: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """The runs `-p` pairs (and a params file's mapping) ask for: one, or a grid when a value
    lists several (`-p n_estimators=10,50,100`, or a list in the file) for a parameter that is
    not itself a tuple or list. A text parameter's values are split on commas unless quoted
    as one literal (`-p name="'a,b'"`)."""
    known = {p.name: p for p in parameters}
    axes: dict[str, list[Any]] = {}
    for name, value in (grid or {}).items():
        if name not in known:
            raise ParameterError(
                f"the params file sets {name!r}, which is no parameter.",
                fix=_known_fix(name, known),
            )
        many = isinstance(value, list) and known[name].type not in {"list", "tuple"}
        axes[name] = [_checked(v, known[name]) for v in (value if many else [value])]
    for pair in pairs:
        name = pair.partition("=")[0].strip()
        # The pair's form and name, checked as -p checks them; the values one by one below.
        parse_overrides((pair if "=" not in pair else f"{name}=None",), parameters)
        axes[name] = [_coerce(text, known[name]) for text in _sweep_texts(pair, known[name])]
    names = list(axes)
    return [dict(zip(names, values, strict=True)) for values in itertools.product(*axes.values())]


def _sweep_texts(pair: str, parameter: Parameter) -> list[str]:
    """The texts of the values one `-p NAME=V1,V2` lists; [the text] when it is one value."""
    text = pair.partition("=")[2]
    if parameter.type in {"list", "tuple"}:
        return [text]
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return [part.strip() for part in text.split(",")] if "," in text else [text]
    if isinstance(value, tuple):
        return [repr(item) for item in value]
    return [text]


def _checked(value: Any, parameter: Parameter) -> Any:
    """A value read from a params file, checked against the parameter's type like `-p`."""
    return _coerce(value if isinstance(value, str) else repr(value), parameter)
