"""Type hints of serve functions as the generated service's pydantic fields: what JSON can carry.

A hint is source text. Builtins (`int`, `list[str]`, `dict`), typing's forms (`Optional`,
`Literal`, `X | None`) and the types setup cells define or import for data (TypedDict, pydantic
models, dataclasses, enums, named tuples; dates, decimals, UUIDs) become the field's type as
written, the notebook's own names read from the generated `pipeline.shared`. Anything else
(`pd.DataFrame`, a class of a serve cell) has no JSON schema: the field takes any JSON value,
with a note saying why.
"""

from __future__ import annotations

import ast
import io
import tokenize
from collections.abc import Iterable
from dataclasses import dataclass

# Builtins pydantic reads from JSON; `bytes` is left out: JSON text cannot hold any byte string.
JSON_BUILTINS = frozenset(
    ("int", "float", "str", "bool", "list", "dict", "tuple", "set", "frozenset")
)
# Names the schema module imports from `typing`.
TYPING_NAMES = frozenset(
    {"Any", "Optional", "Union", "Literal", "List", "Dict", "Tuple", "Set", "FrozenSet"}
) | {"Sequence", "Mapping"}
# A class of a setup cell with one of these bases (or a dataclass) is a type of data.
DATA_BASES = {
    "TypedDict": "typeddict",
    "BaseModel": "model",
    "Enum": "enum",
    "IntEnum": "enum",
    "StrEnum": "enum",
    "NamedTuple": "namedtuple",
}
# Names setup imports from these modules are types pydantic reads (`date`, `Decimal`, `UUID`).
DATA_MODULES = frozenset({"datetime", "decimal", "uuid"})
SHARED = "shared"  # the schema module does `from pipeline import shared`
TYPED_DICT = "typed_dict"  # its helper that makes a typing.TypedDict readable by pydantic


@dataclass(frozen=True)
class NotebookTypes:
    """The names setup cells define or import that a JSON schema can describe.

    `typed_dicts` are the TypedDict classes among them: pydantic reads those only when they
    come from typing_extensions, or from typing on Python 3.12 and later.
    """

    names: frozenset[str] = frozenset()
    typed_dicts: frozenset[str] = frozenset()


@dataclass(frozen=True)
class FieldType:
    """A hint as the schema module writes it, the typing names it needs, and why it is `Any`."""

    text: str
    typing: frozenset[str] = frozenset()
    note: str = ""


def notebook_types(trees: Iterable[ast.Module]) -> NotebookTypes:
    """The data types setup cells define (classes) or import (from DATA_MODULES), in order."""
    kinds: dict[str, str] = {}
    for tree in trees:
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                kind = _class_kind(node, kinds)
                if kind:
                    kinds[node.name] = kind
            elif isinstance(node, ast.ImportFrom) and node.module in DATA_MODULES:
                for alias in node.names:
                    if alias.name != "*":
                        kinds[alias.asname or alias.name] = "imported"
    typed = frozenset(name for name, kind in kinds.items() if kind == "typeddict")
    return NotebookTypes(frozenset(kinds), typed)


def _class_kind(node: ast.ClassDef, known: dict[str, str]) -> str | None:
    for base in node.bases:
        name = _last_name(base)
        if name in DATA_BASES:
            return DATA_BASES[name]
        if name in known and known[name] != "imported":
            return known[name]  # a subclass of a data type of this notebook
    for decorator in node.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        if _last_name(target) == "dataclass":
            return "dataclass"
    return None


def _last_name(node: ast.expr) -> str | None:
    """`X` of `X` or `module.X`."""
    if isinstance(node, ast.Name):
        return node.id
    return node.attr if isinstance(node, ast.Attribute) else None


def field_type(hint: str | None, types: NotebookTypes) -> FieldType:
    """The pydantic type of an argument or a result hinted `hint` (None: no hint)."""
    if hint is None:
        return FieldType("Any", frozenset({"Any"}), "no type hint, so any JSON value")
    try:
        tree = ast.parse(hint, mode="eval")
    except SyntaxError:
        return FieldType("Any", frozenset({"Any"}), f"`{hint}` is not a Python expression")
    converter = _Converter(types)
    try:
        converted = converter.convert(tree.body)
    except _NoSchema as reason:
        return FieldType("Any", frozenset({"Any"}), f"`{hint}` has no JSON schema ({reason})")
    return FieldType(_in_ruff_style(ast.unparse(converted)), frozenset(converter.typing))


def _in_ruff_style(text: str) -> str:
    """ast.unparse's `Literal['a']` as the rest of the module writes it: `Literal["a"]`.

    `text` is one line, as ast.unparse writes an expression.
    """
    from nbops.build.codegen import python_literal

    parts: list[str] = []
    column = 0
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type == tokenize.STRING:
            parts += [text[column : token.start[1]], python_literal(ast.literal_eval(token.string))]
            column = token.end[1]
    return "".join(parts) + text[column:]


class _NoSchema(Exception):
    """The hint holds something a JSON schema cannot describe; the message says what."""


class _Converter:
    """A hint's expression with the notebook's names read from `shared`; typing names noted."""

    def __init__(self, types: NotebookTypes) -> None:
        self.types = types
        self.typing: set[str] = set()

    def convert(self, node: ast.expr) -> ast.expr:
        if isinstance(node, ast.Name):
            return self._name(node.id)
        if isinstance(node, ast.Constant) and (node.value is None or node.value is Ellipsis):
            return node
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            return ast.BinOp(self.convert(node.left), ast.BitOr(), self.convert(node.right))
        if isinstance(node, ast.Subscript):
            return self._subscript(node)
        if isinstance(node, ast.Attribute):
            raise _NoSchema(f"{ast.unparse(node)} is not a type of data the notebook defines")
        raise _NoSchema(f"{ast.unparse(node)} is not a type")

    def _name(self, name: str) -> ast.expr:
        if name in self.types.names:
            shared = ast.Attribute(ast.Name(SHARED), name)
            if name in self.types.typed_dicts:
                return ast.Call(ast.Name(TYPED_DICT), [shared], [])
            return shared
        if name in JSON_BUILTINS:
            return ast.Name(name)
        if name in TYPING_NAMES:
            self.typing.add(name)
            return ast.Name(name)
        raise _NoSchema(f"{name} is not a type of data the notebook's setup defines")

    def _subscript(self, node: ast.Subscript) -> ast.expr:
        head = self.convert(node.value)
        if isinstance(head, ast.Name) and head.id == "Literal":
            if not all(_is_literal(item) for item in _items(node.slice)):
                raise _NoSchema("Literal takes constants only")
            return ast.Subscript(head, node.slice)
        items = [self.convert(item) for item in _items(node.slice)]
        inner = items[0] if len(items) == 1 else ast.Tuple(items)
        return ast.Subscript(head, inner)


def _items(node: ast.expr) -> list[ast.expr]:
    return list(node.elts) if isinstance(node, ast.Tuple) else [node]


def _is_literal(node: ast.expr) -> bool:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        node = node.operand
    return isinstance(node, ast.Constant) and not isinstance(node.value, (bytes, complex))
