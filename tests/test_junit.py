"""JUnit XML of a headless run: what CI reads, built here from run results made by hand."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from builders import notebook

from nbops.ci.gates import evaluate_gates, parse_gates
from nbops.ci.headless import CellFailure, CellLabel, CellOutcome, CellStatus, HeadlessRun
from nbops.ci.junit import junit_xml, write_junit

TRAIN_TEST = CellLabel(12, "churn-12", "test", "train")
FEATURES_TEST = CellLabel(16, "churn-16", "test:features", "features")
TRACEBACK = (
    "Cell In[9], line 2\n----> 2 assert n == 3, 'n should be 3'\nAssertionError: n should be 3"
)


def run_of(
    *,
    failure: CellFailure | None = None,
    tests: tuple[CellOutcome, ...] = (),
    metrics: dict[str, float] | None = None,
) -> HeadlessRun:
    return HeadlessRun(
        notebook=notebook(["x = 1"], path="churn.ipynb"),
        kernel="python3",
        parameters={"n": 3, "path": "data/x.csv"},
        overrides={"n": 3},
        executed=None,
        output=None,
        failure=failure,
        tests=tests,
        metrics=metrics or {},
        metric_problems={},
        duration=2.5,
    )


def cases(root: ET.Element) -> list[dict[str, Any]]:
    found = []
    for case in root.iter("testcase"):
        outcome = next(iter(case), None)
        found.append(
            {
                "name": case.get("name"),
                "classname": case.get("classname"),
                "outcome": outcome.tag if outcome is not None else "passed",
                "message": outcome.get("message") if outcome is not None else None,
            }
        )
    return found


def test_a_failing_test_cell_names_the_cell_and_later_ones_are_skipped() -> None:
    failure = CellFailure(TRAIN_TEST, "AssertionError", "n should be 3", TRACEBACK, line=2)
    run = run_of(
        failure=failure,
        tests=(
            CellOutcome(TRAIN_TEST, CellStatus.FAILED, 0.01, failure),
            CellOutcome(FEATURES_TEST, CellStatus.NOT_RUN),
        ),
    )
    root = junit_xml(run, ())
    assert cases(root) == [
        {
            "name": "cell 12 [test] (churn-12)",
            "classname": "train",
            "outcome": "failure",
            "message": "line 2: AssertionError: n should be 3",
        },
        {
            "name": "cell 16 [test:features] (churn-16)",
            "classname": "features",
            "outcome": "skipped",
            "message": "not run: cell 12 [test] (churn-12) failed first",
        },
    ]
    (suite,) = root.iter("testsuite")
    assert dict(suite.attrib) == {
        "name": "nbops test churn.ipynb",
        "tests": "2",
        "failures": "1",
        "errors": "0",
        "skipped": "1",
        "time": "2.500",
    }
    assert root.find(".//failure").text == TRACEBACK  # type: ignore[union-attr]


def test_a_step_that_raises_is_an_error_testcase_before_the_test_cells() -> None:
    step = CellLabel(11, "churn-11", "step:train", "train")
    failure = CellFailure(step, "ValueError", "Input contains NaN", "Traceback ...", line=7)
    run = run_of(failure=failure, tests=(CellOutcome(TRAIN_TEST, CellStatus.NOT_RUN),))
    assert [(c["name"], c["outcome"], c["message"]) for c in cases(junit_xml(run, ()))] == [
        ("cell 11 [step:train] (churn-11)", "error", "line 7: ValueError: Input contains NaN"),
        (
            "cell 12 [test] (churn-12)",
            "skipped",
            "not run: cell 11 [step:train] (churn-11) failed first",
        ),
    ]


def test_gates_are_testcases_of_their_own() -> None:
    run = run_of(
        tests=(CellOutcome(TRAIN_TEST, CellStatus.PASSED, 0.02),), metrics={"accuracy": 0.5}
    )
    gates = evaluate_gates(parse_gates(["accuracy>=0.99", "accuracy>0.1"]), run.metrics, {})
    root = junit_xml(run, gates)
    assert cases(root) == [
        {
            "name": "cell 12 [test] (churn-12)",
            "classname": "train",
            "outcome": "passed",
            "message": None,
        },
        {
            "name": "gate accuracy>=0.99",
            "classname": "metrics",
            "outcome": "failure",
            "message": "accuracy = 0.5, needs >= 0.99",
        },
        {"name": "gate accuracy>0.1", "classname": "metrics", "outcome": "passed", "message": None},
    ]
    assert root.find(".//testsuite").get("failures") == "1"  # type: ignore[union-attr]


def test_parameters_are_suite_properties() -> None:
    properties = {p.get("name"): p.get("value") for p in junit_xml(run_of(), ()).iter("property")}
    assert properties == {"kernel": "python3", "parameter.n": "3", "parameter.path": "'data/x.csv'"}


def test_control_characters_of_a_traceback_do_not_break_the_xml(tmp_path: Path) -> None:
    failure = CellFailure(TRAIN_TEST, "AssertionError", "bad\x1b byte\x00", "\x1b[0;31mred\x07")
    run = run_of(failure=failure, tests=(CellOutcome(TRAIN_TEST, CellStatus.FAILED, 0.0, failure),))
    path = write_junit(tmp_path / "ci" / "junit.xml", run, ())
    root = ET.parse(path).getroot()
    failure_element = root.find(".//failure")
    assert failure_element is not None
    assert failure_element.get("message") == "AssertionError: bad byte"
    assert failure_element.text == "[0;31mred"
