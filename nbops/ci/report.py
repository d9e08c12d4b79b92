"""The HTML run report: an executed notebook rendered by nbconvert, the run's summary on top."""

from __future__ import annotations

import copy
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbops.ci.gates import measured_text
from nbops.templating import templates_dir

if TYPE_CHECKING:
    from nbops.ci.gates import GateResult
    from nbops.ci.headless import CellFailure, CellOutcome, HeadlessRun

TEMPLATE = "nbops_report"  # templates/nbconvert/nbops_report, which extends nbconvert's `lab`
FAILED_ANCHOR = "nbops-failed-cell"
# Cells a run adds that the report leaves out: nbops' metrics read-back (the metrics are in the
# summary) and papermill's error markers (the summary links the failing cell itself).
HIDDEN_TAGS = frozenset(
    {"nbops-metrics", "nbops-round-trip", "nbops-parameter-code", "papermill-error-cell-tag"}
)


@dataclass(frozen=True)
class ReportRun:
    """What the report's summary shows about a run; `nbops build` fills it for its own runs."""

    title: str
    parameters: Mapping[str, Any]
    metrics: Mapping[str, float]
    failure: CellFailure | None = None
    overridden: Collection[str] = ()
    metric_problems: Mapping[str, str] = field(default_factory=dict)
    gates: Sequence[GateResult] = ()
    tests: Sequence[CellOutcome] = ()
    details: str = ""

    @property
    def status(self) -> str:
        failed = self.failure is not None or any(g.failed for g in self.gates)
        return "failed" if failed else "passed"


def report_of(run: HeadlessRun, gates: Sequence[GateResult]) -> ReportRun:
    """The report summary of an `nbops test` run, gates included."""
    seconds = f"{run.duration:.1f} s"
    return ReportRun(
        title=run.notebook.display_name,
        parameters=run.parameters,
        metrics=run.metrics,
        failure=run.failure,
        overridden=tuple(run.overrides),
        metric_problems=run.metric_problems,
        gates=gates,
        tests=run.tests,
        details=f"nbops test on kernel {run.kernel}, {seconds}",
    )


def render_report(executed: Any, run: ReportRun) -> str:
    """The executed notebook as HTML: inputs and outputs, with the run's summary on top."""
    from nbconvert import HTMLExporter

    basedirs = [str(templates_dir() / "nbconvert")]
    exporter = HTMLExporter(extra_template_basedirs=basedirs, template_name=TEMPLATE)  # type: ignore[no-untyped-call]
    shown = copy.deepcopy(executed)
    shown.cells = [c for c in shown.cells if not HIDDEN_TAGS & set(c.metadata.get("tags") or [])]
    html, _ = exporter.from_notebook_node(shown, resources={"nbops": report_context(run)})
    return str(html)


def write_report(path: str | Path, executed: Any, run: ReportRun) -> Path:
    """Write the HTML report of `executed` to `path` (its folder is created if missing)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_report(executed, run), encoding="utf-8")
    return target


def report_context(run: ReportRun) -> dict[str, Any]:
    """The template's plain data: strings and numbers only, escaped by the template."""
    failure = run.failure
    return {
        "title": run.title,
        "status": run.status,
        "details": run.details,
        "failure": None if failure is None else _failure(failure),
        "parameters": [
            {"name": name, "value": repr(value), "overridden": name in run.overridden}
            for name, value in run.parameters.items()
        ],
        "metrics": _metrics(run),
        "tests": [
            {
                "cell": str(t.cell),
                "anchor": f"cell-id={t.cell.id}",  # the id nbconvert's lab template gives a cell
                "status": t.status.value.replace(" ", "-"),
            }
            for t in run.tests
        ],
    }


def _failure(failure: CellFailure) -> dict[str, Any]:
    return {
        "cell": str(failure.cell),
        "id": failure.cell.id,
        "line": failure.line,
        "message": failure.message,
        # A bare `assert` already shows its statement in the message.
        "source_line": failure.source_line if failure.evalue else None,
    }


def _metrics(run: ReportRun) -> list[dict[str, Any]]:
    names = dict.fromkeys([*run.metrics, *run.metric_problems, *(g.gate.metric for g in run.gates)])
    return [
        {
            "name": name,
            "value": measured_text(run.metrics[name]) if name in run.metrics else None,
            "problem": run.metric_problems.get(name, "not recorded"),
            "gates": [_gate(g) for g in run.gates if g.gate.metric == name],
        }
        for name in names
    ]


def _gate(result: GateResult) -> dict[str, str]:
    status = {True: "passed", False: "failed", None: "not-checked"}[result.passed]
    return {"gate": str(result.gate), "status": status, "reason": result.reason}
