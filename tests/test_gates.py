"""Metric gates: parsing `--require`, checking names against the notebook, evaluating."""

from __future__ import annotations

import math

import pytest

from nbops.ci.gates import Gate, check_gate_metrics, evaluate_gates, parse_gate, parse_gates
from nbops.errors import MalformedGate, UnknownMetric


@pytest.mark.parametrize(
    ("text", "gate"),
    [
        ("accuracy>=0.9", Gate("accuracy", ">=", 0.9)),
        ("loss<=0.25", Gate("loss", "<=", 0.25)),
        ("auc>0.5", Gate("auc", ">", 0.5)),
        ("mae<10", Gate("mae", "<", 10.0)),
        ("n_rows==5000", Gate("n_rows", "==", 5000.0)),
        ("errors!=1e-3", Gate("errors", "!=", 0.001)),
        ("  test_r2 >= -0.5  ", Gate("test_r2", ">=", -0.5)),
    ],
)
def test_parse_gate_reads_every_operator(text: str, gate: Gate) -> None:
    assert parse_gate(text) == gate


def test_gate_prints_as_written() -> None:
    assert [str(g) for g in parse_gates(["accuracy >= 0.9", "n==5000", "x<1e-05"])] == [
        "accuracy>=0.9",
        "n==5000",
        "x<1e-05",
    ]


@pytest.mark.parametrize(
    ("text", "rendered"),
    [
        (
            "accuracy",
            "--require 'accuracy': a gate is a metric name, an operator and a number. "
            "Write it like 'accuracy>=0.9' (operators: >=, <=, >, <, ==, !=).",
        ),
        (
            "accuracy=0.9",
            "--require 'accuracy=0.9': a gate is a metric name, an operator and a number. "
            "Did you mean 'accuracy==0.9' or 'accuracy>=0.9'?",
        ),
        (
            "accuracy=>0.9",
            "--require 'accuracy=>0.9': a gate is a metric name, an operator and a number. "
            "Did you mean 'accuracy>=0.9'?",
        ),
        (
            "accuracy>=high",
            "--require 'accuracy>=high': 'high' is not a number to compare 'accuracy' with. "
            "Write it like 'accuracy>=0.9' (operators: >=, <=, >, <, ==, !=).",
        ),
        (
            "accuracy>=nan",
            "--require 'accuracy>=nan': 'nan' is not a number to compare 'accuracy' with. "
            "Write it like 'accuracy>=0.9' (operators: >=, <=, >, <, ==, !=).",
        ),
        (
            ">=0.9",
            "--require '>=0.9': a gate is a metric name, an operator and a number. "
            "Write it like 'accuracy>=0.9' (operators: >=, <=, >, <, ==, !=).",
        ),
    ],
)
def test_malformed_gates_say_how_to_write_one(text: str, rendered: str) -> None:
    with pytest.raises(MalformedGate) as caught:
        parse_gate(text)
    assert caught.value.render() == rendered


def test_unknown_metric_suggests_the_close_one() -> None:
    with pytest.raises(UnknownMetric) as caught:
        check_gate_metrics([Gate("acuracy", ">=", 0.9)], ["accuracy", "roc_auc"], "nb.ipynb")
    assert caught.value.render() == (
        "--require 'acuracy>=0.9': nb.ipynb has no metric 'acuracy'. "
        "Did you mean 'accuracy'? Its metrics are: accuracy, roc_auc."
    )


def test_unknown_metric_lists_the_known_ones() -> None:
    with pytest.raises(UnknownMetric) as caught:
        check_gate_metrics([Gate("latency", "<", 1)], ["accuracy"], "nb.ipynb")
    assert caught.value.render() == (
        "--require 'latency<1': nb.ipynb has no metric 'latency'. Its metrics are: accuracy."
    )


def test_a_gate_on_a_notebook_without_metrics_says_how_to_record_them() -> None:
    with pytest.raises(UnknownMetric) as caught:
        check_gate_metrics([Gate("accuracy", ">=", 0.9)], [], "nb.ipynb")
    assert caught.value.render() == (
        "--require 'accuracy>=0.9': nb.ipynb records no metrics, so there is no 'accuracy' to "
        "check. Tag the cell that computes it 'metrics', e.g. 'accuracy = float(score)'."
    )


def test_known_metrics_pass_the_check() -> None:
    check_gate_metrics(parse_gates(["accuracy>=0.9", "auc>0.5"]), ["auc", "accuracy"], "nb")


def test_evaluate_passes_fails_and_explains() -> None:
    gates = parse_gates(["accuracy>=0.9", "accuracy>=0.5", "accuracy==0.5", "accuracy!=0.5"])
    results = evaluate_gates(gates, {"accuracy": 0.5}, {})
    assert [(r.passed, r.reason) for r in results] == [
        (False, "accuracy = 0.5, needs >= 0.9"),
        (True, "accuracy = 0.5"),
        (True, "accuracy = 0.5"),
        (False, "accuracy = 0.5, needs != 0.5"),
    ]


def test_a_value_just_below_the_threshold_shows_all_its_digits() -> None:
    (result,) = evaluate_gates([Gate("accuracy", ">=", 0.9)], {"accuracy": 0.8999999}, {})
    assert result.reason == "accuracy = 0.8999999, needs >= 0.9"


def test_a_metric_that_is_not_a_number_fails_its_gate() -> None:
    problems = {"accuracy": "is a str, not a number"}
    (result,) = evaluate_gates([Gate("accuracy", ">=", 0.9)], {}, problems)
    assert (result.passed, result.value, result.reason) == (
        False,
        None,
        "accuracy is a str, not a number",
    )


def test_a_metric_never_read_leaves_its_gate_unchecked() -> None:
    (result,) = evaluate_gates([Gate("accuracy", ">=", 0.9)], {}, {})
    assert (result.passed, result.failed) == (None, False)
    assert result.as_dict() == {
        "gate": "accuracy>=0.9",
        "value": None,
        "passed": None,
        "reason": "the run stopped before the metrics were read",
    }


def test_nan_fails_every_comparison_and_is_null_in_json() -> None:
    (result,) = evaluate_gates([Gate("loss", "<", 1)], {"loss": math.nan}, {})
    assert result.passed is False
    assert result.as_dict()["value"] is None
