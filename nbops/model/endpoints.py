"""Endpoints read from `serve` cells: each public function, its route, signature and artifacts."""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace

from nbops.model.dataflow import FunctionNames
from nbops.model.diagnostic import Diagnostic, Severity
from nbops.model.effects import Effect
from nbops.model.pipeline import Argument, CellRef, Endpoint
from nbops.model.sections import CodeCell, Section, SectionNames

# Where a name a serve function reads comes from: "step", "global", or None for nowhere.
Resolver = Callable[[str], str | None]


@dataclass(frozen=True)
class _Function:
    code: CodeCell
    names: FunctionNames
    node: ast.FunctionDef | ast.AsyncFunctionDef


def read_endpoints(
    section: Section,
    names: SectionNames,
    resolve: Resolver,
    taken_routes: set[str],
    effects: Mapping[str, Effect] | None = None,
    *,
    batch: bool = False,
    earlier: Sequence[Endpoint] = (),
) -> tuple[list[Endpoint], list[Diagnostic]]:
    """The serve functions of a section as endpoints; a function's artifacts include what the
    notebook functions it calls read (`effects`), transitively. A `batch` section's functions
    take a list of inputs and return a list of results, which their hints must allow. A
    function whose generated names are those of an `earlier` one is an error."""
    functions = list(_functions(section))
    public = [f for f in functions if not f.names.name.startswith("_")]
    problems: list[Diagnostic] = []
    if not public:
        problems.append(
            _problem(
                section.first,
                1,
                "this serve cell defines no function to serve.",
                "Define one, e.g. 'def predict(features: dict) -> dict:'.",
            )
        )
        return [], problems
    if section.name and len(public) > 1:
        listed = ", ".join(f.names.name for f in public)
        problems.append(
            _problem(
                public[1].code,
                public[1].names.line,
                f"'serve:{section.name}' names one route but the cell defines "
                f"{len(public)} functions ({listed}).",
                "Put each function in its own serve cell, or start helpers' names with '_'.",
            )
        )
    module_artifacts = [n for n in names.reads if resolve(n) == "step"]
    helpers = {f.names.name: f for f in functions}
    endpoints: list[Endpoint] = []
    for function in public[:1] if section.name else public:
        route = section.name or function.names.name
        artifacts = _artifacts(function, helpers, names, resolve, problems, effects or {})
        if route in taken_routes:
            problems.append(
                _problem(
                    function.code,
                    function.names.line,
                    f"route '/{route}' is served by more than one function.",
                    "Give one of them its own route with 'serve:<route>'.",
                )
            )
            continue
        clash = _name_clash(function, route, bool(section.name), earlier)
        if clash:
            problems.append(clash)
            continue
        taken_routes.add(route)
        endpoint = _endpoint(
            function, route, section, tuple(dict.fromkeys(module_artifacts + artifacts))
        )
        if batch:
            endpoint = _batch_endpoint(endpoint, function, problems)
        endpoints.append(endpoint)
    return endpoints, problems


def class_name(function: str) -> str:
    """`predict_proba` -> `PredictProba`: the stem of the names of its schemas."""
    return "".join(part[:1].upper() + part[1:] for part in function.split("_") if part)


def generated_names(function: str) -> set[str]:
    """What the service names after a serve function: the function itself, its schemas, its
    two route functions and their operation ids."""
    model = class_name(function)
    schemas = {f"{model}Input", f"{model}Output", f"{model}BatchOutput"}
    return {function, f"{function}_batch", f"route_{function}", f"route_{function}_batch"} | schemas


def _name_clash(
    function: _Function, route: str, named: bool, earlier: Sequence[Endpoint]
) -> Diagnostic | None:
    """The service holds every serve function in one module and names its schemas and routes
    after them, so `predict` and `predict_batch` (whose answer and predict's batch answer would
    both be `PredictBatchOutput`) cannot both be served."""
    name = function.names.name
    mine = generated_names(name)
    for other in earlier:
        shared = sorted(mine & generated_names(other.name))
        if not shared:
            continue
        cell = other.cells[0]
        why = (
            "they share a name"
            if other.name == name
            else "the service names schemas and routes after their functions, and both would "
            f"have one named {shared[0]!r}"
        )
        return _problem(
            function.code,
            function.names.line,
            f"serve function {name!r} cannot be served beside {other.name!r} (route "
            f"/{other.route}, cell {cell.index}): {why}, in the one module of serve functions.",
            f"Rename {name!r} (e.g. '{_renamed(name)}'); "
            + (
                f"its route /{route} stays."
                if named
                else f"to keep its route /{route}, tag the cell 'serve:{route}'."
            ),
        )
    return None


def _renamed(name: str) -> str:
    stem = name.removesuffix("_batch")
    return f"{stem}_many" if stem != name else f"{name}_one"


def _functions(section: Section) -> Iterator[_Function]:
    for code in section.cells:
        nodes = {
            node.name: node
            for node in code.python.tree.body
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        }
        for names in code.names.functions:
            if names.name in nodes:
                yield _Function(code, names, nodes[names.name])


def _artifacts(
    function: _Function,
    helpers: dict[str, _Function],
    names: SectionNames,
    resolve: Resolver,
    problems: list[Diagnostic],
    effects: Mapping[str, Effect],
) -> list[str]:
    """Step values the function reads when called, through the helpers of its cell and the
    notebook functions it calls."""
    artifacts: list[str] = []
    for name, (owner, line) in _free_names(function, helpers, effects).items():
        if name in names.writes:
            continue
        where = resolve(name)
        if where == "step":
            artifacts.append(name)
        elif where is None:
            problems.append(
                _problem(
                    owner.code,
                    line,
                    f"serve function {function.names.name!r} reads {name!r}, "
                    "which no step produces.",
                    f"Compute {name!r} in a step above this cell, or define it in this cell.",
                )
            )
    return artifacts


def _free_names(
    function: _Function, helpers: dict[str, _Function], effects: Mapping[str, Effect]
) -> dict[str, tuple[_Function, int]]:
    found: dict[str, tuple[_Function, int]] = {}
    queue, visited = [function], {function.names.name}
    while queue:
        current = queue.pop()
        for name, line in current.names.free.items():
            found.setdefault(name, (current, line))
            if name in helpers and name not in visited:
                visited.add(name)
                queue.append(helpers[name])
            elif name in effects and name not in helpers:  # a notebook function from elsewhere
                for read in effects[name].reads:
                    found.setdefault(read, (current, line))
    return {n: where for n, where in found.items() if n not in helpers}


def _endpoint(
    function: _Function, route: str, section: Section, artifacts: tuple[str, ...]
) -> Endpoint:
    node = function.node
    return Endpoint(
        name=node.name,
        route=route,
        cells=tuple(CellRef(c.cell.index, c.cell.id) for c in section.cells),
        arguments=tuple(_arguments(node.args)),
        returns=ast.unparse(node.returns) if node.returns else None,
        docstring=ast.get_docstring(node) or "",
        artifacts=artifacts,
        line=node.lineno,
    )


# Hints of a list: a batch function's first argument and its result.
LIST_HINTS = frozenset({"list", "List", "typing.List"})
BATCH_FIX = "Write it like 'def predict(rows: list[dict]) -> list[dict]:', one result per row"


def list_item(hint: str) -> tuple[bool, str | None]:
    """Whether `hint` is a list, and the hint of its items (None: any, as for a bare `list`)."""
    try:
        node = ast.parse(hint, mode="eval").body
    except SyntaxError:
        return False, None
    if isinstance(node, ast.Subscript) and ast.unparse(node.value) in LIST_HINTS:
        return True, ast.unparse(node.slice)
    return ast.unparse(node) in LIST_HINTS, None


def _batch_endpoint(
    endpoint: Endpoint, function: _Function, problems: list[Diagnostic]
) -> Endpoint:
    """The endpoint of a `serve batch` function: its first argument a list of the requests'
    inputs, its other arguments left at their defaults, its result a list."""
    node, line = function.node, function.names.line
    name = node.name
    positional = [*node.args.posonlyargs, *node.args.args]
    if not positional:
        problems.append(
            _problem(
                function.code,
                line,
                f"serve function {name!r} is tagged 'batch', so its first argument is the list "
                "of the requests' inputs, but it takes no positional argument.",
                f"{BATCH_FIX}; or remove the 'batch' tag.",
            )
        )
        return replace(endpoint, batch=True)
    first, *others = positional
    required = others[: max(0, len(others) - len(node.args.defaults))]
    keywords = zip(node.args.kwonlyargs, node.args.kw_defaults, strict=True)
    required += [arg for arg, default in keywords if default is None]
    for arg in required[:1]:
        problems.append(
            _problem(
                function.code,
                line + arg.lineno - node.lineno,
                f"serve function {name!r} is tagged 'batch', so it is called with the list of "
                f"inputs alone, but its argument {arg.arg!r} has no default.",
                f"Give {arg.arg!r} a default, or make it part of each item of the list.",
            )
        )
    item = _batch_hint(function, first.annotation, f"its first argument {first.arg!r}", problems)
    returns = _batch_hint(function, node.returns, "its result", problems)
    return replace(endpoint, batch=True, item=item, item_returns=returns)


def _batch_hint(
    function: _Function, hint: ast.expr | None, what: str, problems: list[Diagnostic]
) -> str | None:
    """The item hint of a batch function's list hint; a diagnostic when it is not a list."""
    node, name = function.node, function.node.name
    line = function.names.line + ((hint.lineno if hint else node.lineno) - node.lineno)
    if hint is None:
        problems.append(
            _problem(
                function.code,
                line,
                f"serve function {name!r} is tagged 'batch', but {what} has no type hint, so "
                "nbops cannot check it is a list, nor type each request's part of it.",
                f"{BATCH_FIX}.",
                Severity.WARNING,
            )
        )
        return None
    is_list, item = list_item(ast.unparse(hint))
    if not is_list:
        problems.append(
            _problem(
                function.code,
                line,
                f"serve function {name!r} is tagged 'batch', so {what} is a list with one item "
                f"per request, but it is hinted {ast.unparse(hint)!r}.",
                f"Hint it 'list[{ast.unparse(hint)}]' ({BATCH_FIX}); or remove the 'batch' tag "
                "to serve the function one request at a time.",
            )
        )
    return item


def _arguments(args: ast.arguments) -> Iterator[Argument]:
    positional = [*args.posonlyargs, *args.args]
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults))
    defaults += list(args.defaults)
    for arg, default in zip(positional, defaults, strict=True):
        kind = "positional_only" if arg in args.posonlyargs else "positional_or_keyword"
        yield _argument(arg, default, kind)
    if args.vararg:
        yield _argument(args.vararg, None, "var_positional")
    for arg, default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
        yield _argument(arg, default, "keyword_only")
    if args.kwarg:
        yield _argument(args.kwarg, None, "var_keyword")


def _argument(arg: ast.arg, default: ast.expr | None, kind: str) -> Argument:
    return Argument(
        name=arg.arg,
        annotation=ast.unparse(arg.annotation) if arg.annotation else None,
        default=ast.unparse(default) if default is not None else None,
        kind=kind,
    )


def _problem(
    code: CodeCell, line: int, message: str, fix: str, severity: Severity = Severity.ERROR
) -> Diagnostic:
    return Diagnostic(
        severity,
        message,
        fix,
        cell_index=code.cell.index,
        cell_id=code.cell.id,
        line=line,
        tag=code.tag,
    )
