"""Serve cells are what the service runs when it starts: definitions only, or a warning."""

from __future__ import annotations

import pytest
from builders import messages, pipeline

TRAIN = ("model = 2", ["step:train"])
PREDICT = "def predict(x: float) -> float:\n    return x * model\n"
FIX = (
    "Move it to a test or skip cell: keep serve cells to imports, functions, classes and "
    "constants (calls of the served function stay, as examples)."
)


@pytest.mark.parametrize(
    "extra",
    [
        "import math\nTHRESHOLD = 0.5\nLABELS: list[str] = ['a', 'b']",
        "class Request:\n    '''A request.'''\n    size: int = 1",
        "predict(2.0)",  # the example call: the service leaves it out
        "'''Notes on the endpoint.'''\npass",
    ],
)
def test_definitions_constants_and_example_calls_are_quiet(extra: str) -> None:
    assert messages(pipeline([TRAIN, (PREDICT + extra, ["serve"])])) == []


@pytest.mark.parametrize(
    ("extra", "line", "shown"),
    [
        ("print('loaded')", 3, "print('loaded')"),
        ("check = predict(2.0)", 3, "check = predict(2.0)"),
        ("assert predict(1.0) == 2", 3, "assert predict(1.0) == 2"),
        ("for x in range(3):\n    predict(x)", 3, "for x in range(3):"),
        ("SCALE = float(input())", 3, "SCALE = float(input())"),
    ],
)
def test_statements_that_run_at_start_up_are_a_warning_with_the_fix(
    extra: str, line: int, shown: str
) -> None:
    assert messages(pipeline([TRAIN, (PREDICT + extra, ["serve"])])) == [
        f"warning cell 1 line {line}: this serve cell runs '{shown}' when the service starts; "
        f"a failure there makes the whole service unready. | {FIX}"
    ]


def test_an_untagged_cell_after_a_skip_cell_is_told_it_continues_the_serve_cell() -> None:
    found = messages(
        pipeline([TRAIN, (PREDICT, ["serve"]), ("data = [1]", ["skip"]), "x = data[0]"])
    )
    assert found[0] == (
        "error cell 3 line 1: 'data' is read here but only cell 2 (skip) writes it. | "
        "Cell 3 is untagged, so it continues the serve cell above it (skip cells in between "
        "do not end that). Tag cell 3 'skip' too if it is exploration, or tag cell 2 'setup' "
        "if 'data' is needed."
    )
