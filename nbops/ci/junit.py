"""JUnit XML of a headless run, for CI: a testcase per test cell and per metric gate."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nbops.ci.gates import GateResult
    from nbops.ci.headless import CellFailure, CellLabel, CellOutcome, HeadlessRun

GATES_CLASS = "metrics"
# XML 1.0 cannot carry most control characters; a traceback can hold any of them.
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def junit_xml(run: HeadlessRun, gates: Sequence[GateResult]) -> ET.Element:
    """One testsuite named after the notebook. A failing cell that is not a test cell gets a
    testcase too, with an error, so CI shows why the tests after it did not run."""
    suite = ET.Element("testsuite", name=f"nbops test {run.notebook.display_name}")
    _properties(suite, run)
    cases = [_cell_case(run, outcome) for outcome in run.tests]
    if run.stopped is not None:
        cases.insert(0, _failed_cell_case(run, run.stopped))
    cases += [_gate_case(run, result) for result in gates]
    suite.extend(cases)
    suite.set("tests", str(len(cases)))
    for kind in ("failures", "errors", "skipped"):
        suite.set(kind, str(sum(1 for case in cases if case.find(kind.rstrip("s")) is not None)))
    suite.set("time", _seconds(run.duration))
    root = ET.Element("testsuites")
    root.append(suite)
    return root


def write_junit(path: str | Path, run: HeadlessRun, gates: Sequence[GateResult]) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tree = ET.ElementTree(junit_xml(run, gates))
    ET.indent(tree)
    tree.write(target, encoding="utf-8", xml_declaration=True)
    return target


def case_name(cell: CellLabel) -> str:
    """`cell 12 [test] (churn-12)`: what CI lists, and what `nbops test` prints."""
    return str(cell)


def _properties(suite: ET.Element, run: HeadlessRun) -> None:
    properties = ET.SubElement(suite, "properties")
    ET.SubElement(properties, "property", name="kernel", value=run.kernel)
    for name, value in run.parameters.items():
        ET.SubElement(properties, "property", name=f"parameter.{name}", value=_text(repr(value)))


def _cell_case(run: HeadlessRun, outcome: CellOutcome) -> ET.Element:
    case = _case(run, outcome.cell, outcome.duration)
    if outcome.failure is not None:
        _add_failure(case, outcome.failure)
    elif outcome.status.value == "not run":
        first = run.stopped or run.failure
        skipped = f"not run: {first.cell} failed first" if first else "not run"
        ET.SubElement(case, "skipped", message=skipped)
    return case


def _failed_cell_case(run: HeadlessRun, failure: CellFailure) -> ET.Element:
    case = _case(run, failure.cell, None)
    _add_failure(case, failure)
    return case


def _case(run: HeadlessRun, cell: CellLabel, duration: float | None) -> ET.Element:
    case = ET.Element("testcase", name=case_name(cell), classname=cell.step or run.notebook.name)
    case.set("time", _seconds(duration or 0.0))
    return case


def _add_failure(case: ET.Element, failure: CellFailure) -> None:
    """An assertion is a `failure`, any other exception an `error`, as pytest reports them."""
    kind = "failure" if failure.ename == "AssertionError" else "error"
    where = f"line {failure.line}: " if failure.line else ""
    element = ET.SubElement(
        case, kind, message=_text(where + failure.message), type=_text(failure.ename)
    )
    element.text = _text(failure.traceback)


def _gate_case(run: HeadlessRun, result: GateResult) -> ET.Element:
    case = ET.Element("testcase", name=f"gate {result.gate}", classname=GATES_CLASS)
    case.set("time", "0")
    if result.passed is None:
        ET.SubElement(case, "skipped", message=_text(result.reason))
    elif not result.passed:
        failure = ET.SubElement(case, "failure", message=_text(result.reason), type="MetricGate")
        failure.text = _text(f"{result.gate}: {result.reason}")
    return case


def _seconds(value: float) -> str:
    return f"{value:.3f}"


def _text(value: str) -> str:
    return NOT_XML.sub("", value)
