"""Which modules a step's code runs: those its cells import, and the setup imports it uses.

The runner maps them to installed distributions and their versions for the step's cache key;
here they are only names, found in the trees the cells were parsed into once.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from nbops.model.sections import CodeCell

DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
NOT_MODULES = frozenset({"__future__"})


@dataclass(frozen=True)
class SetupModules:
    """What the setup cells bring: for each name they bind, the modules behind it (an import's
    module; those a function or class imports in its body), and the modules setup code uses as
    it runs, which every step therefore runs."""

    by_name: Mapping[str, frozenset[str]] = field(default_factory=dict)
    everywhere: frozenset[str] = frozenset()

    def for_step(self, cells: Iterable[CodeCell], read: Iterable[str]) -> tuple[str, ...]:
        """The modules a step runs: its cells' imports, the setup names it reads (directly, or
        in a notebook function it calls: `read` holds those too), and `everywhere`."""
        own = {module for code in cells for _, module in code.names.modules}
        used = {module for name in read for module in self.by_name.get(name, ())}
        return tuple(sorted((own | used | self.everywhere) - NOT_MODULES))


def setup_modules(cells: Iterable[CodeCell]) -> SetupModules:
    """Read the setup cells' imports, definitions and the statements that run at once."""
    cells = tuple(cells)
    by_name: dict[str, set[str]] = {}
    for code in cells:
        for name, module in code.names.modules:
            by_name.setdefault(name, set()).add(module)
        for statement in code.python.tree.body:
            if isinstance(statement, DEFINITIONS):
                by_name.setdefault(statement.name, set()).update(_imported_in(statement))
    everywhere = {
        module
        for code in cells
        for name in _names_run(code.python.tree)
        for module in by_name.get(name, ())
    }
    frozen = {name: frozenset(modules) for name, modules in by_name.items()}
    return SetupModules(frozen, frozenset(everywhere))


def _imported_in(definition: ast.stmt) -> set[str]:
    """The top-level modules a function or class imports in its body (absolute imports)."""
    found: set[str] = set()
    for node in ast.walk(definition):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
    return found


def _names_run(tree: ast.Module) -> set[str]:
    """Names the module's statements read as they run: not inside function or class bodies,
    which run only when called (their imports count for the steps that call them)."""
    return {
        node.id
        for statement in tree.body
        if not isinstance(statement, (ast.Import, ast.ImportFrom, *DEFINITIONS))
        for node in ast.walk(statement)
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)
    }
