"""Static dataflow of a piece of Python: the global names it reads and the ones it writes."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

# Methods that change the object they are called on, so `lst.append(x)` writes `lst`.
MUTATING_METHODS = frozenset(
    {
        "append",
        "extend",
        "insert",
        "remove",
        "pop",
        "popitem",
        "clear",
        "sort",
        "reverse",
        "update",
        "add",
        "discard",
        "setdefault",
        "fit",
        "partial_fit",
        "fit_transform",
        "set_params",
        "load_state_dict",
    }
)
# Line magics whose argument is Python run in the user's namespace (`%time y = f(x)`).
PYTHON_ARG_MAGICS = frozenset({"time", "timeit", "prun"})
# Line magics that bring names nobody can see statically (`%run other.py`).
OPAQUE_MAGICS = frozenset({"run", "load", "store"})
SHELL_METHODS = frozenset({"system", "getoutput"})

BRACED_EXPRESSION = re.compile(r"(?<!\{)\{([^{}]+)\}(?!\})")
DOLLAR_NAME = re.compile(r"(?<!\$)\$([A-Za-z_]\w*)")


@dataclass(frozen=True)
class FunctionNames:
    """A top-level function: where it is and the global names its body reads when called."""

    name: str
    line: int
    free: dict[str, int]


@dataclass(frozen=True)
class Names:
    """Names a code unit uses, each with the first 1-based line it appears on.

    `reads` are read before this code binds them; `deferred_reads` are read inside function
    bodies, so only when called; `writes` are bound or deleted at module level; `mutations`
    are existing values changed in place (`df["x"] = ...`, `model.fit(...)`).
    """

    reads: dict[str, int] = field(default_factory=dict)
    deferred_reads: dict[str, int] = field(default_factory=dict)
    writes: dict[str, int] = field(default_factory=dict)
    mutations: dict[str, int] = field(default_factory=dict)
    imports: frozenset[str] = frozenset()
    functions: tuple[FunctionNames, ...] = ()
    opaque: bool = False


def scan(tree: ast.Module) -> Names:
    """Walk a module in evaluation order and collect the names it reads and writes."""
    scanner = _Scanner()
    for statement in tree.body:
        scanner.visit(statement)
    return Names(
        reads=scanner.reads,
        deferred_reads=scanner.deferred,
        writes=scanner.writes,
        mutations=scanner.mutations,
        imports=frozenset(scanner.imports),
        functions=tuple(scanner.functions),
        opaque=scanner.opaque,
    )


@dataclass
class _Scope:
    kind: str  # "module" | "function" | "class" | "comprehension"
    names: set[str] = field(default_factory=set)
    globals: set[str] = field(default_factory=set)


class _Scanner(ast.NodeVisitor):
    def __init__(self) -> None:
        self.scopes: list[_Scope] = [_Scope("module")]
        self.bound: set[str] = set()
        self.reads: dict[str, int] = {}
        self.deferred: dict[str, int] = {}
        self.writes: dict[str, int] = {}
        self.mutations: dict[str, int] = {}
        self.imports: set[str] = set()
        self.functions: list[FunctionNames] = []
        self.current_function: FunctionNames | None = None
        self.opaque = False

    # name resolution

    def _resolve(self, name: str) -> str:
        """'local' to an inner scope, or 'module' / 'deferred' for a global read now / later."""
        crossed_function = False
        for scope in reversed(self.scopes[1:]):
            if scope.kind == "function":
                if name in scope.globals:
                    return "deferred"
                if name in scope.names:
                    return "local"
                crossed_function = True
            elif (scope.kind == "comprehension" and name in scope.names) or (
                scope.kind == "class" and not crossed_function and name in scope.names
            ):
                return "local"
        return "deferred" if crossed_function else "module"

    def _load(self, name: str, line: int) -> None:
        where = self._resolve(name)
        if where == "deferred":
            self.deferred.setdefault(name, line)
            if self.current_function is not None:
                self.current_function.free.setdefault(name, line)
        elif where == "module" and name not in self.bound:
            self.reads.setdefault(name, line)

    def _store(self, name: str, line: int) -> None:
        scope = next(s for s in reversed(self.scopes) if s.kind != "comprehension")
        if scope.kind == "module":
            self.bound.add(name)
            self.writes.setdefault(name, line)
        elif scope.kind == "function" and name in scope.globals:
            self.writes.setdefault(name, line)
        elif scope.kind == "class":
            scope.names.add(name)

    def _mutate(self, name: str, line: int) -> None:
        if self._resolve(name) == "local":
            return
        self._load(name, line)
        self.mutations.setdefault(name, line)

    # statements, in the order Python evaluates them

    def visit_Name(self, node: ast.Name) -> None:
        if not isinstance(node.ctx, ast.Store):
            self._load(node.id, node.lineno)  # `del x` needs x to exist, like a read
        if not isinstance(node.ctx, ast.Load):
            self._store(node.id, node.lineno)

    def visit_Assign(self, node: ast.Assign) -> None:
        self.visit(node.value)
        for target in node.targets:
            self.visit(target)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        if isinstance(node.target, ast.Name):
            self._load(node.target.id, node.lineno)
        self.visit(node.value)
        self.visit(node.target)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if self.scopes[-1].kind != "function":
            self.visit(node.annotation)
        if node.value is not None:
            self.visit(node.value)
            self.visit(node.target)
        elif not isinstance(node.target, ast.Name):
            # Without a value, `df.a: int` evaluates `df` (and any index) but sets nothing.
            self.generic_visit(node.target)

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self.visit(node.value)
        self.visit(node.target)

    def visit_For(self, node: ast.For | ast.AsyncFor) -> None:
        self.visit(node.iter)
        self.visit(node.target)
        self._visit_all(node.body)
        self._visit_all(node.orelse)

    visit_AsyncFor = visit_For

    def visit_With(self, node: ast.With | ast.AsyncWith) -> None:
        for item in node.items:
            self.visit(item.context_expr)
            if item.optional_vars is not None:
                self.visit(item.optional_vars)
        self._visit_all(node.body)

    visit_AsyncWith = visit_With

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.type is not None:
            self.visit(node.type)
        if node.name:
            self._store(node.name, node.lineno)
        self._visit_all(node.body)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._bind_import(alias.asname or alias.name.split(".")[0], node.lineno)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        for alias in node.names:
            if alias.name == "*":
                self.opaque = True
            else:
                self._bind_import(alias.asname or alias.name, node.lineno)

    def _bind_import(self, name: str, line: int) -> None:
        if self.scopes[-1].kind == "module":
            self.imports.add(name)
        self._store(name, line)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if not isinstance(node.ctx, ast.Load):
            self._mutate_root(node.value, node.lineno)
        self.visit(node.value)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        if not isinstance(node.ctx, ast.Load):
            self._mutate_root(node.value, node.lineno)
        self.visit(node.value)
        self.visit(node.slice)

    def _mutate_root(self, expr: ast.expr, line: int) -> None:
        root = root_name(expr)
        if root is not None:
            self._mutate(root, line)

    def visit_Call(self, node: ast.Call) -> None:
        if self._visit_ipython_call(node):
            return
        func = node.func
        if isinstance(func, ast.Attribute) and (
            func.attr in MUTATING_METHODS or _has_inplace_true(node)
        ):
            self._mutate_root(func.value, node.lineno)
        self.generic_visit(node)

    # scopes

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self._visit_all(node.decorator_list)
        self._visit_signature(node.args, node.returns)
        self._store(node.name, node.lineno)
        if len(self.scopes) > 1:
            self._in_function(node.args, node.body, node.body)
            return
        self.current_function = FunctionNames(node.name, node.lineno, {})
        self.functions.append(self.current_function)
        self._in_function(node.args, node.body, node.body)
        self.current_function = None

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self._visit_signature(node.args, None)
        self._in_function(node.args, [node.body], [ast.Expr(node.body)])

    def _visit_signature(self, args: ast.arguments, returns: ast.expr | None) -> None:
        self._visit_all(args.defaults)
        self._visit_all(d for d in args.kw_defaults if d is not None)
        self._visit_all(a.annotation for a in _all_args(args) if a.annotation is not None)
        if returns is not None:
            self.visit(returns)

    def _in_function(
        self, args: ast.arguments, nodes: Sequence[ast.AST], body: list[ast.stmt]
    ) -> None:
        local, declared_global = _function_locals(args, body)
        self.scopes.append(_Scope("function", local, declared_global))
        self._visit_all(nodes)
        self.scopes.pop()

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._visit_all(node.decorator_list)
        self._visit_all(node.bases)
        self._visit_all(k.value for k in node.keywords)
        self.scopes.append(_Scope("class"))
        self._visit_all(node.body)
        self.scopes.pop()
        self._store(node.name, node.lineno)

    def _visit_comprehension(
        self, generators: list[ast.comprehension], results: Iterable[ast.expr]
    ) -> None:
        self.visit(generators[0].iter)
        targets = {n.id for g in generators for n in ast.walk(g.target) if isinstance(n, ast.Name)}
        self.scopes.append(_Scope("comprehension", targets))
        for index, generator in enumerate(generators):
            if index:
                self.visit(generator.iter)
            self._visit_all(generator.ifs)
        self._visit_all(results)
        self.scopes.pop()

    def visit_ListComp(self, node: ast.ListComp) -> None:
        self._visit_comprehension(node.generators, [node.elt])

    def visit_SetComp(self, node: ast.SetComp) -> None:
        self._visit_comprehension(node.generators, [node.elt])

    def visit_GeneratorExp(self, node: ast.GeneratorExp) -> None:
        self._visit_comprehension(node.generators, [node.elt])

    def visit_DictComp(self, node: ast.DictComp) -> None:
        self._visit_comprehension(node.generators, [node.key, node.value])

    def visit_MatchAs(self, node: ast.MatchAs) -> None:
        if node.pattern is not None:
            self.visit(node.pattern)
        if node.name:
            self._store(node.name, node.lineno)

    def visit_MatchStar(self, node: ast.MatchStar) -> None:
        if node.name:
            self._store(node.name, node.lineno)

    def visit_MatchMapping(self, node: ast.MatchMapping) -> None:
        self._visit_all(node.keys)
        self._visit_all(node.patterns)
        if node.rest:
            self._store(node.rest, node.lineno)

    # IPython: the transformer turns `!ls {x}` and `%time f(y)` into get_ipython() calls

    def _visit_ipython_call(self, node: ast.Call) -> bool:
        method = _get_ipython_method(node.func)
        if method is None:
            return False
        strings = [a.value for a in node.args if isinstance(a, ast.Constant)]
        texts = [s for s in strings if isinstance(s, str)]
        if method in SHELL_METHODS and texts:
            self._visit_expanded(texts[0], node.lineno)
        elif method == "run_line_magic" and len(texts) >= 2:
            magic, argument = texts[0], texts[1]
            if magic in PYTHON_ARG_MAGICS:
                self._visit_inline(argument, node.lineno)
            elif magic in OPAQUE_MAGICS:
                self.opaque = True
            else:
                self._visit_expanded(argument, node.lineno)
        return True

    def _visit_expanded(self, text: str, line: int) -> None:
        """IPython expands `{expr}` and `$name` in shell commands and magic arguments."""
        for expression in BRACED_EXPRESSION.findall(text):
            self._visit_inline(expression, line)
        for name in DOLLAR_NAME.findall(text):
            if not name.isupper():  # `$HOME`, `$PATH`: IPython leaves those to the shell
                self._load(name, line)

    def _visit_inline(self, code: str, line: int) -> None:
        try:
            tree = ast.parse(without_magic_options(code.strip()))
        except (SyntaxError, ValueError):
            return
        for node in ast.walk(tree):
            if hasattr(node, "lineno"):
                node.lineno = line
        self._visit_all(tree.body)

    def _visit_all(self, nodes: Iterable[ast.AST]) -> None:
        for node in nodes:
            self.visit(node)


def without_magic_options(code: str) -> str:
    """`-n 10 -r 3 f(x)` -> `f(x)`: the options `%timeit` and `%prun` take before the code."""
    words = code.split(" ")
    while words and re.fullmatch(r"-[A-Za-z]+\S*", words[0]):
        option = words.pop(0)
        if option in {"-n", "-r", "-p", "-s", "-T", "-D", "-l"} and words:
            words.pop(0)
    return " ".join(words)


def root_name(expr: ast.expr) -> str | None:
    """`df` for `df`, `df.loc`, `df["x"]` or `df.a.b[0]`; None when the root is a call."""
    while isinstance(expr, (ast.Attribute, ast.Subscript)):
        expr = expr.value
    return expr.id if isinstance(expr, ast.Name) else None


def _has_inplace_true(call: ast.Call) -> bool:
    return any(
        k.arg == "inplace" and isinstance(k.value, ast.Constant) and k.value.value is True
        for k in call.keywords
    )


def _get_ipython_method(func: ast.expr) -> str | None:
    if (
        isinstance(func, ast.Attribute)
        and isinstance(func.value, ast.Call)
        and isinstance(func.value.func, ast.Name)
        and func.value.func.id == "get_ipython"
    ):
        return func.attr
    return None


def _all_args(args: ast.arguments) -> Iterator[ast.arg]:
    yield from args.posonlyargs
    yield from args.args
    if args.vararg:
        yield args.vararg
    yield from args.kwonlyargs
    if args.kwarg:
        yield args.kwarg


def _function_locals(args: ast.arguments, body: list[ast.stmt]) -> tuple[set[str], set[str]]:
    """Python's rule: a name bound anywhere in a function body is local to all of it."""
    local = {a.arg for a in _all_args(args)}
    declared: set[str] = set()
    for node in _own_scope_nodes(body):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            local.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            local.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            local.update(a.asname or a.name.split(".")[0] for a in node.names if a.name != "*")
        elif (isinstance(node, ast.ExceptHandler) and node.name) or (
            isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name
        ):
            local.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            local.add(node.rest)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            declared.update(node.names)
    globals_ = {n for n in declared if _is_global_decl(body, n)}
    return local - declared, globals_


def _is_global_decl(body: list[ast.stmt], name: str) -> bool:
    return any(
        isinstance(node, ast.Global) and name in node.names for node in _own_scope_nodes(body)
    )


def _own_scope_nodes(body: list[ast.stmt]) -> Iterator[ast.AST]:
    """Nodes of a function body, not descending into nested scopes (bar comprehension walrus)."""
    stack: list[ast.AST] = list(reversed(body))
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        if isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
            stack.extend(n for n in ast.walk(node) if isinstance(n, ast.NamedExpr))
            continue
        stack.extend(reversed(list(ast.iter_child_nodes(node))))
