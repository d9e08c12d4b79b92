"""What a new version's run must show before it is started: metric gates (`--require`) and the
version serving to beat (`--must-beat`), champion against challenger.

The challenger's metrics are those its build recorded (nbops.json); the champion's, those of
the build the serving version was started from (its snapshot's nbops.json).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbops.ci.gate_config import DeclaredGates
from nbops.ci.gates import Duel, Gate, GateResult, Rival, duel, evaluate_gates
from nbops.deploy.records import Deployment


@dataclass(frozen=True)
class Gatekeeper:
    """The metric gates and rival metrics of one deploy; empty lets every version through."""

    require: tuple[Gate, ...] = ()
    must_beat: tuple[Rival, ...] = ()
    tolerance: float = 0.0

    def __bool__(self) -> bool:
        return bool(self.require or self.must_beat)

    @classmethod
    def declared(cls, gates: DeclaredGates) -> Gatekeeper:
        """The gatekeeper of a notebook's declared gates (pyproject.toml or its metadata), as
        `nbops deploy --require ... --must-beat ... --tolerance ...` from CI builds it."""
        return cls(gates.require, gates.must_beat, gates.tolerance)

    def as_dict(self) -> dict[str, Any]:
        return {
            "require": [str(gate) for gate in self.require],
            "must_beat": [str(rival) for rival in self.must_beat],
            "tolerance": self.tolerance,
        }


@dataclass(frozen=True)
class Verdict:
    """The gates and duels of a new version; `refused` when any failed."""

    gates: tuple[GateResult, ...]
    duels: tuple[Duel, ...]
    champion: int | None
    metrics: dict[str, float]  # the new version's, as its build recorded them

    @property
    def refused(self) -> bool:
        return any(not g.passed for g in self.gates) or any(not d.passed for d in self.duels)

    def reason(self) -> str:
        failed = [g.reason for g in self.gates if not g.passed]
        failed += [d.reason for d in self.duels if not d.passed]
        if failed:
            return "refused: " + "; ".join(failed) + " (it was not started)"
        passed = [g.reason for g in self.gates] + [d.reason for d in self.duels]
        return "metrics pass: " + "; ".join(passed)

    def report(self) -> dict[str, Any]:
        """The figures of `as_dict` with the outcome: `refused` and the one-line `reason`."""
        return {**self.as_dict(), "refused": self.refused, "reason": self.reason()}

    def as_dict(self) -> dict[str, Any]:
        return {
            "gates": [g.as_dict() for g in self.gates],
            "must_beat": [d.as_dict() for d in self.duels],
            "champion": self.champion,
            "metrics": self.metrics,
        }


def judge(keeper: Gatekeeper, manifest: dict[str, Any], serving: Deployment | None) -> Verdict:
    """The new build's recorded metrics against the gates and against the serving version."""
    metrics = _numbers(manifest.get("metrics"))
    gates = evaluate_gates(keeper.require, metrics, {})
    champion = _numbers(_manifest_metrics(serving)) if serving is not None else {}
    duels: tuple[Duel, ...] = ()
    if keeper.must_beat and serving is not None:
        name = f"v{serving.version} (serving)"
        duels = duel(keeper.must_beat, metrics, champion, keeper.tolerance, name)
    return Verdict(gates, duels, serving.version if serving is not None else None, metrics)


def recorded_metrics(row: Deployment) -> dict[str, float]:
    """The metrics the build of a version recorded (a refused one's, as judged); empty when
    none can be read."""
    if row.status == "refused" and row.figures:
        return _numbers(json.loads(row.figures).get("metrics"))
    return _numbers(_manifest_metrics(row))


def _manifest_metrics(row: Deployment | None) -> Any:
    if row is None or not row.build_dir:
        return {}
    try:
        return json.loads((Path(row.build_dir) / "nbops.json").read_text()).get("metrics")
    except (OSError, ValueError):
        return {}


def _numbers(metrics: Any) -> dict[str, float]:
    if not isinstance(metrics, dict):
        return {}
    return {
        str(k): float(v)
        for k, v in metrics.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }
