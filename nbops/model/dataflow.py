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
        "fill",
        "resize",
        "itemset",
        "put",
    }
)
# Library functions that change their first argument in place (`rng.shuffle(arr)`,
# `np.copyto(dst, src)`, `heapq.heappush(heap, x)`, `bisect.insort(lst, x)`).
ARGUMENT_MUTATORS = frozenset(
    {
        "shuffle",
        "copyto",
        "place",
        "putmask",
        "fill_diagonal",
        "heappush",
        "heappop",
        "heapify",
        "heappushpop",
        "heapreplace",
        "insort",
        "insort_left",
        "insort_right",
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
class Call:
    """A call of a plain name, `f(a, key=b)`: each argument's root name (None: not a name)."""

    callee: str
    line: int
    args: tuple[str | None, ...] = ()
    keywords: tuple[tuple[str, str | None], ...] = ()

    def roots_at(self, params: tuple[str, ...], wanted: Iterable[str]) -> list[str]:
        """The names passed for the parameters `wanted` of a function taking `params`."""
        wanted = set(wanted)
        by_position = [
            root for param, root in zip(params, self.args, strict=False) if param in wanted
        ]
        by_keyword = [root for key, root in self.keywords if key in wanted]
        return [root for root in [*by_position, *by_keyword] if root is not None]


@dataclass(frozen=True)
class FunctionNames:
    """A top-level function or class: where it is and what calling it does, as far as its own
    body shows: the global names it reads (`free`; for a class, its methods'), the parameters
    and globals it changes in place, and the calls of other names it makes."""

    name: str
    line: int
    free: dict[str, int]
    params: tuple[str, ...] = ()
    mutated_params: set[str] = field(default_factory=set)
    mutated_globals: dict[str, int] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    rebound: frozenset[str] = frozenset()  # parameters the body assigns: no longer the caller's
    is_class: bool = False


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
    calls: tuple[Call, ...] = ()  # made when the code runs, not inside function bodies
    shell_reads: dict[str, int] = field(default_factory=dict)  # put into `!cmd {x}` lines
    # (bound name, top-level module) of every absolute import, in any scope: `import a.b as c`
    # gives ("c", "a"), `from sklearn.svm import SVC` gives ("SVC", "sklearn").
    modules: tuple[tuple[str, str], ...] = ()


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
        calls=tuple(scanner.calls),
        shell_reads=scanner.shell_reads,
        modules=tuple(scanner.modules),
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
        self.function_scope: _Scope | None = None  # the scope of current_function's body
        self.calls: list[Call] = []
        self.shell_reads: dict[str, int] = {}
        self.modules: list[tuple[str, str]] = []
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
            self._mutate_local(name)
            return
        self._load(name, line)
        self.mutations.setdefault(name, line)
        if self.current_function is not None and self.function_scope is not None:
            self.current_function.mutated_globals.setdefault(name, line)

    def _mutate_local(self, name: str) -> None:
        """A top-level function changing its own parameter changes the caller's value."""
        function = self.current_function
        innermost = next((s for s in reversed(self.scopes) if s.kind == "function"), None)
        if (
            function is not None
            and innermost is self.function_scope
            and name in function.params
            and name not in function.rebound
        ):
            function.mutated_params.add(name)

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
            bound = alias.asname or alias.name.split(".")[0]
            self.modules.append((bound, alias.name.split(".")[0]))
            self._bind_import(bound, node.lineno)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module.split(".")[0] if node.module and not node.level else None
        for alias in node.names:
            if module is not None:
                self.modules.append((alias.asname or alias.name, module))
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
            func.attr in MUTATING_METHODS or _has_inplace_true(node) or _torch_in_place(func.attr)
        ):
            self._mutate_root(func.value, node.lineno)
        if isinstance(func, ast.Attribute) and func.attr in ARGUMENT_MUTATORS and node.args:
            self._mutate_root(node.args[0], node.lineno)
        for keyword in node.keywords:
            if keyword.arg == "out":  # numpy's ufuncs write into `out=`
                self._mutate_root(keyword.value, node.lineno)
        if isinstance(func, ast.Name):
            self._record_call(func.id, node)
        self.generic_visit(node)

    def _record_call(self, callee: str, node: ast.Call) -> None:
        call = Call(
            callee,
            node.lineno,
            tuple(root_name(arg) for arg in node.args),
            tuple((k.arg, root_name(k.value)) for k in node.keywords if k.arg is not None),
        )
        if self.current_function is not None:  # a top-level def, or a class and its methods
            self.current_function.calls.append(call)
        elif len(self.scopes) == 1 or all(s.kind == "comprehension" for s in self.scopes[1:]):
            self.calls.append(call)

    # scopes

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self._visit_all(node.decorator_list)
        self._visit_signature(node.args, node.returns)
        self._store(node.name, node.lineno)
        if len(self.scopes) > 1:
            self._in_function(node.args, node.body, node.body)
            return
        params = tuple(a.arg for a in _all_args(node.args))
        rebound = frozenset(params) & _assigned_names(node.body)
        self.current_function = FunctionNames(
            node.name, node.lineno, {}, params=params, rebound=rebound
        )
        self.functions.append(self.current_function)
        self._in_function(node.args, node.body, node.body, top=True)
        self.current_function = None
        self.function_scope = None

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
        self, args: ast.arguments, nodes: Sequence[ast.AST], body: list[ast.stmt], top: bool = False
    ) -> None:
        local, declared_global = _function_locals(args, body)
        scope = _Scope("function", local, declared_global)
        if top:
            self.function_scope = scope
        self.scopes.append(scope)
        self._visit_all(nodes)
        self.scopes.pop()

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._visit_all(node.decorator_list)
        self._visit_all(node.bases)
        self._visit_all(k.value for k in node.keywords)
        top = len(self.scopes) == 1
        if top:  # what its methods read and call is what making and using one does
            self.current_function = FunctionNames(node.name, node.lineno, {}, is_class=True)
            self.functions.append(self.current_function)
        self.scopes.append(_Scope("class"))
        self._visit_all(node.body)
        self.scopes.pop()
        if top:
            self.current_function = None
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
            for name in _expanded_names(texts[0]):
                self.shell_reads.setdefault(name, node.lineno)
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


def _expanded_names(text: str) -> list[str]:
    """The names IPython puts into a shell line: in `{expression}`s and as `$name`."""
    names: list[str] = []
    for expression in BRACED_EXPRESSION.findall(text):
        try:
            tree = ast.parse(expression.strip(), mode="eval")
        except (SyntaxError, ValueError):
            continue
        names += [n.id for n in ast.walk(tree) if isinstance(n, ast.Name)]
    names += [n for n in DOLLAR_NAME.findall(text) if not n.isupper()]
    return names


def root_name(expr: ast.expr) -> str | None:
    """`df` for `df`, `df.loc`, `df["x"]` or `df.a.b[0]`; None when the root is a call."""
    while isinstance(expr, (ast.Attribute, ast.Subscript)):
        expr = expr.value
    return expr.id if isinstance(expr, ast.Name) else None


def _torch_in_place(method: str) -> bool:
    """PyTorch's convention: `x.add_(1)`, `w.zero_()` change `x` and `w`."""
    return len(method) > 1 and method.endswith("_") and not method.startswith("_")


def _assigned_names(body: list[ast.stmt]) -> frozenset[str]:
    """Names a function body binds with `=`, `for`, `with ... as` and the like."""
    return frozenset(
        node.id
        for node in _own_scope_nodes(body)
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load)
    )


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
