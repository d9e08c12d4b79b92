"""The package's layers: imports point down, and no module takes another's `_private` names."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "nbops"

# Each layer and the layers it may import, itself included. `errors` and `templating` sit below
# everything; the package root only holds the version and Jupyter's entry points.
FOUNDATION = frozenset({"nbops", "errors", "templating"})
ENTRY = frozenset({"__main__"})  # `python -m nbops`: the command line, like the console script
MAY_IMPORT: dict[str, frozenset[str]] = {
    "model": frozenset({"model"}),
    "run": frozenset({"model", "run"}),
    "ci": frozenset({"model", "run", "ci"}),
    "build": frozenset({"model", "run", "ci", "build"}),
    "deploy": frozenset({"model", "run", "ci", "build", "deploy"}),
    "lab": frozenset({"model", "run", "ci", "build", "deploy", "lab"}),
    "cli": frozenset({"model", "run", "ci", "build", "deploy", "cli"}),
}


@dataclass(frozen=True)
class Violation:
    module: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.module} line {self.line}: {self.message}"


def module_name(path: Path, package: Path) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> str:
    """`nbops.run.store` is in `run`; `nbops` and `nbops.errors` are the foundation."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "nbops"


def imported_modules(node: ast.AST) -> list[tuple[str, tuple[str, ...]]]:
    """(module, names taken from it) for one import statement; names empty for `import m`."""
    if isinstance(node, ast.Import):
        return [(alias.name, ()) for alias in node.names]
    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        return [(node.module, tuple(alias.name for alias in node.names))]
    return []


def violations_in(path: Path, package: Path = PACKAGE) -> list[Violation]:
    """Upward imports and `_private` names taken from another module, in one source file."""
    module = module_name(path, package)
    layer = layer_of(module)
    allowed = MAY_IMPORT.get(layer)
    found: list[Violation] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        for target, names in imported_modules(node):
            if target != "nbops" and not target.startswith("nbops."):
                continue
            line = getattr(node, "lineno", 0)
            found += _upward(module, allowed, target, names, line)
            found += _private(module, target, names, line)
    return sorted(found, key=lambda violation: violation.line)


def _upward(
    module: str, allowed: frozenset[str] | None, target: str, names: tuple[str, ...], line: int
) -> list[Violation]:
    if allowed is None:  # the package root and its `__main__` may start any face
        return []
    # `from nbops import run` names a layer through the root: judge the layer it names.
    targets = [f"nbops.{n}" for n in names if n in MAY_IMPORT] if target == "nbops" else [target]
    return [
        Violation(module, line, f"imports {what} from a layer above it ({layer_of(what)})")
        for what in targets
        if layer_of(what) not in FOUNDATION | allowed
    ]


def _private(module: str, target: str, names: tuple[str, ...], line: int) -> list[Violation]:
    if target == module:
        return []
    return [
        Violation(module, line, f"imports the private name {name} from {target}")
        for name in names
        if name.startswith("_") and not name.startswith("__")
    ]


def all_violations(package: Path = PACKAGE) -> list[Violation]:
    return [v for path in sorted(package.rglob("*.py")) for v in violations_in(path, package)]


def test_every_module_imports_only_its_own_layer_and_those_below() -> None:
    assert [str(v) for v in all_violations()] == []


def test_every_layer_says_what_it_holds_and_what_it_may_import() -> None:
    for layer in MAY_IMPORT:
        init = PACKAGE / layer / "__init__.py"
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
        assert "May import" in doc, f"{init} should say what the layer may import"


def test_every_module_is_in_a_known_layer() -> None:
    layers = {layer_of(module_name(p, PACKAGE)) for p in PACKAGE.rglob("*.py")}
    assert layers <= set(MAY_IMPORT) | FOUNDATION | ENTRY


@pytest.fixture
def planted(tmp_path: Path) -> Path:
    """A copy of two layers with an upward import and a private reach-in planted in `model`."""
    package = tmp_path / "nbops"
    for layer in ("model", "run"):
        (package / layer).mkdir(parents=True)
        (package / layer / "__init__.py").write_text('"""A layer. May import: below."""\n')
    (package / "__init__.py").write_text("")
    (package / "run" / "store.py").write_text("def _digest() -> str:\n    return ''\n")
    (package / "model" / "pipeline.py").write_text(
        "from nbops.run.store import _digest\nimport nbops.deploy.local\n"
    )
    return package


def test_the_layer_check_fails_on_a_planted_upward_import(planted: Path) -> None:
    assert [str(v) for v in all_violations(planted)] == [
        "nbops.model.pipeline line 1: imports nbops.run.store from a layer above it (run)",
        "nbops.model.pipeline line 1: imports the private name _digest from nbops.run.store",
        "nbops.model.pipeline line 2: imports nbops.deploy.local from a layer above it (deploy)",
    ]


def test_a_module_may_import_its_own_layer_and_those_below(planted: Path) -> None:
    (planted / "run" / "runner.py").write_text(
        "from nbops.model.pipeline import Pipeline\nfrom nbops.run import store\n"
        "from nbops.errors import NbopsError\n"
    )
    assert violations_in(planted / "run" / "runner.py", planted) == []
