"""What calling a notebook function does, through the functions it calls in turn: the globals
it reads, and the arguments and globals it changes in place.

Each cell's scan (`dataflow`) sees one body at a time; this joins them across cells, so a step
that calls a setup helper reads what the helper reads, and `add_features(df)` writes `df`
when `add_features` changes its argument. Calls of names that are not notebook functions
(library code) are left alone: their effect is not guessed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from nbops.model.dataflow import Call, FunctionNames


@dataclass(frozen=True)
class Effect:
    """Calling one notebook function (or making an instance of one notebook class)."""

    reads: Mapping[str, int]
    params: tuple[str, ...]
    mutated_params: frozenset[str]
    mutated_globals: Mapping[str, int]

    def changed_by(self, call: Call) -> list[str]:
        """The caller's names this call changes: arguments for changed parameters, and the
        globals the function changes."""
        return [*call.roots_at(self.params, self.mutated_params), *self.mutated_globals]


@dataclass
class _Growing:
    reads: dict[str, int]
    mutated_params: set[str]
    mutated_globals: dict[str, int]
    function: FunctionNames = field(repr=False)


def function_effects(functions: Iterable[FunctionNames]) -> dict[str, Effect]:
    """Every function's effect, with those of the notebook functions it calls folded in.

    A later definition of a name replaces an earlier one, as running the notebook would.
    """
    table = {f.name: f for f in functions}
    growing = {
        name: _Growing(dict(f.free), set(f.mutated_params), dict(f.mutated_globals), f)
        for name, f in table.items()
    }
    changed = True
    while changed:  # a fixpoint: call chains of any length, recursion included
        changed = False
        for current in growing.values():
            for call in current.function.calls:
                callee = growing.get(call.callee)
                if callee is not None:
                    changed |= _fold(current, callee, call)
    return {
        name: Effect(
            reads=g.reads,
            params=g.function.params,
            mutated_params=frozenset(g.mutated_params),
            mutated_globals=g.mutated_globals,
        )
        for name, g in growing.items()
    }


def _fold(caller: _Growing, callee: _Growing, call: Call) -> bool:
    """Add what `call` does to the caller's effect; True when that grew."""
    before = (len(caller.reads), len(caller.mutated_params), len(caller.mutated_globals))
    for name in callee.reads:
        if name != caller.function.name:
            caller.reads.setdefault(name, call.line)
    function = caller.function
    for root in call.roots_at(callee.function.params, callee.mutated_params):
        if root in function.params:
            if root not in function.rebound:
                caller.mutated_params.add(root)
        elif root in function.free:  # a global the caller passes on
            caller.mutated_globals.setdefault(root, call.line)
    for name in callee.mutated_globals:
        caller.mutated_globals.setdefault(name, call.line)
    after = (len(caller.reads), len(caller.mutated_params), len(caller.mutated_globals))
    return after != before
