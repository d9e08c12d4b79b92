"""Cells grouped by role: a tagged cell starts a section, untagged cells continue the one above."""

from __future__ import annotations

import ast
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field

from nbops.model.dataflow import Names, scan
from nbops.model.diagnostic import Diagnostic, Severity
from nbops.model.effects import Effect
from nbops.model.files import files_read
from nbops.model.notebook import Cell, Notebook
from nbops.model.options import TagOption
from nbops.model.plain_python import PlainPython, plain_python
from nbops.model.python_source import CellPython, cell_python
from nbops.model.tags import CellTags, Role, read_cell_tags

# Roles an untagged cell below may continue; parameters stand alone (papermill injects after).
CONTINUED_ROLES = frozenset({Role.SETUP, Role.STEP, Role.TEST, Role.METRICS, Role.SERVE})


@dataclass(frozen=True)
class CodeCell:
    """A code cell with its tags read and its Python parsed and scanned, once.

    Every face reuses this: the runner and the generated code take `plain`, the service and
    packaging take `python.tree`, codegen takes `names`.
    """

    cell: Cell
    tags: CellTags
    python: CellPython = field(compare=False)
    names: Names = field(compare=False)

    @property
    def tag(self) -> str | None:
        return self.tags.tag

    @functools.cached_property
    def plain(self) -> PlainPython:
        """The cell as plain Python (what a build generates and the runner runs)."""
        return plain_python(self.cell.source, self.python)

    @functools.cached_property
    def files_read(self) -> tuple[str, ...]:
        """The data files the cell's code reads, by the path literals it gives (`files`)."""
        return files_read(self.python.tree)


@dataclass(frozen=True)
class Section:
    """Consecutive code cells sharing one role; `role` is None for untagged cells with no owner."""

    role: Role | None
    name: str | None
    cells: tuple[CodeCell, ...]
    injected: bool = False

    @property
    def first(self) -> CodeCell:
        return self.cells[0]

    @property
    def title(self) -> str:
        """The name as the notebook writes it (`data-loading`); `name` is its Python form."""
        return self.first.tags.title or self.name or ""

    @property
    def tag(self) -> str:
        return self.first.tag or (self.role.value if self.role else "untagged")

    @property
    def after(self) -> tuple[tuple[str, CodeCell], ...]:
        return tuple((name, code) for code in self.cells for name in code.tags.after)

    def options(self, key: str) -> tuple[tuple[TagOption, CodeCell], ...]:
        """Option `key` on each of the section's cells that gives it (every one, for an option
        that repeats), in notebook order."""
        return tuple((option, code) for code in self.cells for option in code.tags.options_of(key))


def read_cells(notebook: Notebook) -> tuple[CodeCell, ...]:
    """Every code cell, tagged and parsed; markdown and raw cells play no part."""
    return tuple(read_cell(cell) for cell in notebook.cells if cell.is_code)


def read_cell(cell: Cell) -> CodeCell:
    # Skip cells are parsed too: when a step reads a name only a skipped cell makes, the
    # diagnostic can point at that cell.
    python = cell_python(cell.source)
    return CodeCell(cell=cell, tags=read_cell_tags(cell), python=python, names=scan(python.tree))


def group_sections(cells: tuple[CodeCell, ...]) -> tuple[Section, ...]:
    """Skip cells drop out; a tagged cell opens a section; untagged cells join the open one."""
    sections: list[Section] = []
    for code in cells:
        role = code.tags.role
        if role is Role.SKIP:
            continue
        if role is not None:
            sections.append(Section(role, code.tags.name, (code,), injected=code.tags.injected))
            continue
        last = sections[-1] if sections else None
        if last is not None and last.role in CONTINUED_ROLES:
            sections[-1] = Section(last.role, last.name, (*last.cells, code), last.injected)
        elif last is not None and last.role is None:
            sections[-1] = Section(None, None, (*last.cells, code))
        else:
            sections.append(Section(None, None, (code,)))
    return tuple(sections)


def untagged_diagnostics(section: Section, *, before_steps: bool) -> tuple[Diagnostic, ...]:
    """An untagged cell that belongs to nothing: say so, and suggest the tag its content fits."""
    where = "comes before the first step" if before_steps else "follows the parameters cell"
    return tuple(_orphan(code, where) for code in section.cells if code.cell.source.strip())


def _orphan(code: CodeCell, where: str) -> Diagnostic:
    statements = code.python.tree.body
    definitions = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    if statements and all(isinstance(s, definitions) for s in statements):
        fix = "It only imports or defines: tag it 'setup' so every step has it."
    elif code.names.writes:
        fix = (
            "Tag it 'step:<name>' if the pipeline needs what it computes, "
            "'setup' if it is shared set-up, or 'skip' if it is exploration."
        )
    else:
        fix = "It computes nothing later cells use: tag it 'skip' if it is exploration."
    return Diagnostic(
        Severity.WARNING,
        f"this untagged cell {where}, so it belongs to no step and the pipeline leaves it out.",
        fix,
        cell_index=code.cell.index,
        cell_id=code.cell.id,
        line=1,
    )


@dataclass(frozen=True)
class Use:
    """A name as one section uses it: which cell and line first reads or writes it."""

    code: CodeCell
    line: int


@dataclass
class SectionNames:
    reads: dict[str, Use] = field(default_factory=dict)
    deferred: dict[str, Use] = field(default_factory=dict)
    writes: dict[str, Use] = field(default_factory=dict)
    files: tuple[str, ...] = ()
    opaque: bool = False


def section_names(
    section: Section, imported: frozenset[str], effects: Mapping[str, Effect] | None = None
) -> SectionNames:
    """Combine a section's cells: a read counts only if no earlier cell of it bound the name.

    `effects` are the notebook's functions: a call of one changes the arguments and globals
    it changes, and reads (when called, so deferred) the globals it reads.
    """
    effects = effects or {}
    result = SectionNames()
    for code in section.cells:
        names = code.names
        for name, line in names.reads.items():
            if name not in result.writes:
                result.reads.setdefault(name, Use(code, line))
        changed = {**names.writes, **{n: code.cell.index for n in code.python.magic_writes}}
        changed.update({n: line for n, line in names.mutations.items() if n not in imported})
        for name, line in _changed_by_calls(names, effects).items():
            if name not in imported and name not in names.writes and name not in result.writes:
                result.reads.setdefault(name, Use(code, line))  # it must exist to be changed
            if name not in imported:
                changed.setdefault(name, line)
        for name, line in changed.items():
            result.writes.setdefault(name, Use(code, line))
        result.opaque |= names.opaque
        result.files += code.python.files_written
    for code in section.cells:
        for name, line in _deferred_reads(code.names, effects).items():
            if name not in result.writes and name not in result.reads:
                result.deferred.setdefault(name, Use(code, line))
    return result


def _changed_by_calls(names: Names, effects: Mapping[str, Effect]) -> dict[str, int]:
    """Names the code's calls of notebook functions change in place, at the call's line."""
    changed: dict[str, int] = {}
    for call in names.calls:
        effect = effects.get(call.callee)
        if effect is not None:
            for name in effect.changed_by(call):
                changed.setdefault(name, call.line)
    return changed


def _deferred_reads(names: Names, effects: Mapping[str, Effect]) -> dict[str, int]:
    """Globals read inside the code's own functions and by the notebook functions it calls."""
    found = dict(names.deferred_reads)
    for call in names.calls:
        effect = effects.get(call.callee)
        for name in effect.reads if effect is not None else ():
            found.setdefault(name, call.line)
    for function in names.functions:
        effect = effects.get(function.name)
        for name in effect.reads if effect is not None else ():
            found.setdefault(name, function.line)
    return found
