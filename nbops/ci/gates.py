"""Metric gates (`--require "accuracy>=0.9"`): parsed, checked against the notebook, evaluated."""

from __future__ import annotations

import difflib
import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nbops.errors import MalformedGate, UnknownMetric

# Two-character operators first, so `>=` is not read as `>` followed by `=0.9`.
OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    "<": operator.lt,
}
GATE = re.compile(r"^\s*(?P<name>[^\W\d]\w*)\s*(?P<op>>=|<=|==|!=|>|<)\s*(?P<number>\S+)\s*$")
GATE_FIX = "Write it like 'accuracy>=0.9' (operators: >=, <=, >, <, ==, !=)."


@dataclass(frozen=True)
class Gate:
    """One requirement on a metric: `metric op threshold`."""

    metric: str
    op: str
    threshold: float

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{_number(self.threshold)}"


@dataclass(frozen=True)
class GateResult:
    """A gate against a run. `value` is None when the metric has no number; `passed` is None
    when the gate was not checked because the run stopped before the metrics were read."""

    gate: Gate
    value: float | None
    passed: bool | None
    reason: str

    @property
    def failed(self) -> bool:
        return self.passed is False

    def as_dict(self) -> dict[str, Any]:
        return {
            "gate": str(self.gate),
            "value": _json_number(self.value),
            "passed": self.passed,
            "reason": self.reason,
        }


def parse_gate(text: str) -> Gate:
    """`"accuracy>=0.9"` -> Gate; anything else is a MalformedGate naming the fix."""
    where = f"--require {text!r}"
    match = GATE.match(text)
    if match is None:
        raise MalformedGate(
            "a gate is a metric name, an operator and a number.",
            where=where,
            fix=_single_equals_fix(text) or GATE_FIX,
        )
    try:
        threshold = float(match["number"])
    except ValueError:
        threshold = math.nan
    if math.isnan(threshold):
        raise MalformedGate(
            f"{match['number']!r} is not a number to compare {match['name']!r} with.",
            where=where,
            fix=GATE_FIX,
        )
    return Gate(match["name"], match["op"], threshold)


def parse_gates(texts: Iterable[str]) -> tuple[Gate, ...]:
    return tuple(parse_gate(text) for text in texts)


def check_gate_metrics(gates: Sequence[Gate], metrics: Sequence[str], notebook: str) -> None:
    """Every gate names a metric the notebook records, or UnknownMetric says which it meant."""
    check_metric_names([(g.metric, f"--require {str(g)!r}") for g in gates], metrics, notebook)


def check_metric_names(
    wanted: Sequence[tuple[str, str]], metrics: Sequence[str], notebook: str
) -> None:
    """Each (metric, where it was asked for) names a metric the notebook records, or
    UnknownMetric says which it meant."""
    for name, where in wanted:
        if name in metrics:
            continue
        if not metrics:
            raise UnknownMetric(
                f"{notebook} records no metrics, so there is no {name!r} to check.",
                where=where,
                fix="Tag the cell that computes it 'metrics', e.g. 'accuracy = float(score)'.",
            )
        close = difflib.get_close_matches(name, list(metrics), n=1, cutoff=0.6)
        known = ", ".join(metrics)
        hint = f"Did you mean {close[0]!r}? " if close else ""
        raise UnknownMetric(
            f"{notebook} has no metric {name!r}.",
            where=where,
            fix=f"{hint}Its metrics are: {known}.",
        )


def evaluate_gates(
    gates: Sequence[Gate], values: Mapping[str, float], problems: Mapping[str, str]
) -> tuple[GateResult, ...]:
    """Each gate against the run's metric values; a value that is not a number fails it."""
    return tuple(_evaluate(gate, values, problems) for gate in gates)


def _evaluate(gate: Gate, values: Mapping[str, float], problems: Mapping[str, str]) -> GateResult:
    if gate.metric in problems:
        return GateResult(gate, None, False, f"{gate.metric} {problems[gate.metric]}")
    if gate.metric not in values:
        return GateResult(gate, None, None, "the run stopped before the metrics were read")
    value = values[gate.metric]
    passed = OPERATORS[gate.op](value, gate.threshold)
    shown = f"{gate.metric} = {_measured(value, gate.threshold)}"
    needs = f"{shown}, needs {gate.op} {_number(gate.threshold)}"
    return GateResult(gate, value, passed, shown if passed else needs)


def _single_equals_fix(text: str) -> str | None:
    """`accuracy=0.9` and `accuracy=>0.9`: a likely slip of the keyboard, so suggest the fix."""
    match = re.match(r"^\s*([^\W\d]\w*)\s*(=>|=<|=)\s*(\S+)\s*$", text)
    if match is None:
        return None
    name, op, number = match.groups()
    if op == "=":
        return f"Did you mean '{name}=={number}' or '{name}>={number}'?"
    return f"Did you mean '{name}{op[::-1]}{number}'?"


def _number(value: float) -> str:
    """The shortest text that reads back as the same float: `0.9`, `5000`, `1e-05`."""
    value = float(value)
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


def measured_text(value: float) -> str:
    """A metric value for people: six significant digits."""
    return f"{value:.6g}"


def _measured(value: float, threshold: float) -> str:
    # 0.8999999 shown as 0.9 next to "needs >= 0.9" would read as a bug; show all digits then.
    short = measured_text(value)
    return repr(value) if short == measured_text(threshold) and value != threshold else short


def _json_number(value: float | None) -> float | None:
    """JSON has no NaN or infinity; such a value is reported as null with its reason."""
    return value if value is not None and math.isfinite(value) else None


# champion and challenger: `--must-beat accuracy,-rmse` against the version serving

NAME = re.compile(r"^[^\W\d]\w*$")


@dataclass(frozen=True)
class Rival:
    """A metric the new version must not be worse at than the one serving; `-rmse` is one
    where lower is better."""

    metric: str
    higher_is_better: bool = True

    def __str__(self) -> str:
        return self.metric if self.higher_is_better else f"-{self.metric}"


@dataclass(frozen=True)
class Duel:
    """One rival metric, the challenger's value against the champion's."""

    rival: Rival
    challenger: float | None
    champion: float | None
    passed: bool
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "metric": self.rival.metric,
            "higher_is_better": self.rival.higher_is_better,
            "challenger": _json_number(self.challenger),
            "champion": _json_number(self.champion),
            "passed": self.passed,
            "reason": self.reason,
        }


def parse_must_beat(texts: Iterable[str]) -> tuple[Rival, ...]:
    """`test_accuracy,roc_auc` and `-rmse` (lower is better) -> Rivals; commas or repeats."""
    found: list[Rival] = []
    for text in texts:
        for part in text.split(","):
            written = part.strip()
            name = written.removeprefix("-")
            if not NAME.match(name):
                raise MalformedGate(
                    f"{written!r} is not a metric name.",
                    where=f"--must-beat {text!r}",
                    fix="Write metric names, comma-separated, e.g. 'accuracy,roc_auc'; put '-' "
                    "before one where lower is better, e.g. '-rmse'.",
                )
            found.append(Rival(name, higher_is_better=not written.startswith("-")))
    return tuple(found)


def duel(
    rivals: Sequence[Rival],
    challenger: Mapping[str, float],
    champion: Mapping[str, float],
    tolerance: float,
    champion_name: str,
) -> tuple[Duel, ...]:
    """Each rival metric: the challenger passes when it is not worse than the champion by more
    than `tolerance`; a champion that recorded no such value has nothing to beat."""
    return tuple(_duel(r, challenger, champion, tolerance, champion_name) for r in rivals)


def _duel(
    rival: Rival,
    challenger: Mapping[str, float],
    champion: Mapping[str, float],
    tolerance: float,
    champion_name: str,
) -> Duel:
    mine, theirs = challenger.get(rival.metric), champion.get(rival.metric)
    if mine is None or not math.isfinite(mine):
        return Duel(rival, None, theirs, False, f"the new version recorded no {rival.metric}")
    if theirs is None or not math.isfinite(theirs):
        reason = f"{champion_name} recorded no {rival.metric}: nothing to beat"
        return Duel(rival, mine, None, True, reason)
    margin = (mine - theirs) if rival.higher_is_better else (theirs - mine)
    better = "higher" if rival.higher_is_better else "lower"
    shown = (
        f"{rival.metric} {measured_text(mine)} against {measured_text(theirs)} of {champion_name}"
    )
    if margin >= -tolerance:
        return Duel(rival, mine, theirs, True, shown)
    allowed = f", {better} is better, tolerance {_number(tolerance)}"
    return Duel(rival, mine, theirs, False, f"{shown}{allowed}: worse")
