"""Option tags (`timeout=30m`): read onto the role, checked, and carried to Step.timeout_s."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from builders import messages, pipeline
from hypothesis import given
from hypothesis import strategies as st

from nbops.build.codegen import render_pipeline, render_tests
from nbops.model.diagnostic import Diagnostic, Severity
from nbops.model.durations import format_duration, parse_duration
from nbops.model.lineage import lineage_dict, to_dot, to_mermaid
from nbops.model.notebook import Cell
from nbops.model.options import TagOption, split_option
from nbops.model.tags import ROLE_OPTIONS, CellTags, Role, read_cell_tags, roles_taking

ACCEPTED = "(accepted forms: 30s, 2m, 1h, 1h30m, 500ms, 1.5h, or a bare number of seconds)"


def read(tags: Sequence[str] = (), source: str = "x = 1") -> CellTags:
    return read_cell_tags(
        Cell(index=4, id="cell-4", cell_type="code", source=source, tags=tuple(tags))
    )


def diagnostic(
    severity: Severity, message: str, fix: str, tag: str, line: int | None = None
) -> Diagnostic:
    return Diagnostic(severity, message, fix, cell_index=4, cell_id="cell-4", line=line, tag=tag)


# reading options


def test_a_metadata_option_tag_is_an_option_of_the_role() -> None:
    assert read(["step:train", "timeout=30m"]) == CellTags(
        role=Role.STEP, name="train", tag="step:train", options=(TagOption("timeout", "30m"),)
    )


def test_an_option_line_gives_options_with_their_line() -> None:
    result = read([], "#| echo: false\n#| nbops: step:train timeout=2s\nx = 1")

    assert result.options == (TagOption("timeout", "2s", line=2),)
    assert result.option("timeout") == TagOption("timeout", "2s", line=2)
    assert result.option("reads") is None
    assert result.diagnostics == ()


def test_an_option_may_come_before_the_role_tag() -> None:
    assert read(["timeout=1h", "step:train"]).options == (TagOption("timeout", "1h"),)


def test_the_same_option_twice_with_one_value_is_not_a_conflict() -> None:
    result = read(["step:train", "timeout=30m", "timeout=1800"])

    assert result.options == (TagOption("timeout", "30m"),)
    assert result.diagnostics == ()


def test_a_skipped_cell_keeps_its_options_quietly() -> None:
    # `skip` goes on top of a step's tags to leave it out for a while; nothing to report.
    assert read(["step:train", "timeout=30m", "skip"]) == CellTags(role=Role.SKIP, tag="skip")


@pytest.mark.parametrize(
    ("tag", "split"),
    [
        ("timeout=30m", ("timeout", "30m")),
        ("timeout = 30m", ("timeout", "30m")),
        ("reads=s3://bucket/x.csv", ("reads", "s3://bucket/x.csv")),
        ("timeout=", ("timeout", "")),
        ("step:train=x", None),
        ("=30m", None),
        ("hide-input", None),
    ],
)
def test_an_option_tag_is_a_word_an_equals_sign_and_a_value(
    tag: str, split: tuple[str, str] | None
) -> None:
    assert split_option(tag) == split


def test_the_option_table_says_which_roles_take_an_option() -> None:
    assert set(ROLE_OPTIONS[Role.STEP]) == {"timeout", "reads"}
    assert roles_taking("timeout") == (Role.STEP,)
    assert roles_taking("reads") == (Role.STEP,)
    assert roles_taking("writes") == ()


# diagnostics


def test_a_bad_value_is_an_error_naming_the_accepted_forms() -> None:
    result = read([], "#| nbops: step:train timeout=soon\nx = 1")

    assert result.options == ()
    assert result.diagnostics == (
        diagnostic(
            Severity.ERROR,
            f"'timeout=soon': 'soon' is not a positive duration {ACCEPTED}.",
            "Write it like 'timeout=30m'.",
            "timeout=soon",
            line=1,
        ),
    )


@pytest.mark.parametrize("value", ["0", "0s", "-5m", "", "1h1h", "30m1h", "1e3", "5 m"])
def test_zero_negative_and_garbage_timeouts_are_errors(value: str) -> None:
    (problem,) = read(["step:train", f"timeout={value}"]).diagnostics

    assert problem.is_error
    assert problem.message == f"'timeout={value}': {value!r} is not a positive duration {ACCEPTED}."


def test_an_unknown_option_gets_a_did_you_mean_among_the_roles_options() -> None:
    assert read(["step:train", "timout=30m"]).diagnostics == (
        diagnostic(
            Severity.WARNING,
            "'timout' is not an option step cells take, so nbops ignores it.",
            "Did you mean 'timeout=30m'?",
            "timout=30m",
        ),
    )


def test_an_unknown_option_far_from_any_lists_the_roles_options() -> None:
    assert read([], "#| nbops: step:train, retries=3\nx = 1").diagnostics == (
        diagnostic(
            Severity.WARNING,
            "'retries' is not an option step cells take, so nbops ignores it.",
            "Step cells take 'timeout=30m', 'reads=data/*.csv'.",
            "retries=3",
            line=1,
        ),
    )


def test_an_option_on_a_role_without_options_says_it_takes_none() -> None:
    (problem,) = read(["metrics", "retries=3"]).diagnostics

    assert problem.fix == "Metrics cells take no options; remove it."


@pytest.mark.parametrize(("tags", "kind"), [(["serve:predict"], "serve"), (["test"], "test")])
def test_an_option_on_a_role_that_does_not_take_it_is_an_error(tags: list[str], kind: str) -> None:
    result = read([*tags, "timeout=30m"])

    assert result.options == ()
    assert result.diagnostics == (
        diagnostic(
            Severity.ERROR,
            f"'timeout=30m' is on a {kind} cell, but only step cells take 'timeout', "
            "so nbops ignores it.",
            "Put it on the step cell, beside its tag: 'step:<name> timeout=30m'.",
            "timeout=30m",
        ),
    )


def test_an_option_on_an_untagged_cell_is_an_error() -> None:
    result = read([], "#| nbops: timeout=30m\nx = 1")

    assert result == CellTags(
        diagnostics=(
            diagnostic(
                Severity.ERROR,
                "'timeout=30m' is on an untagged cell, but only step cells take 'timeout', "
                "so nbops ignores it.",
                "Put it on the step cell, beside its tag: 'step:<name> timeout=30m'.",
                "timeout=30m",
                line=1,
            ),
        )
    )


def test_a_mistyped_option_on_an_untagged_cell_gets_a_suggestion() -> None:
    assert read(["timeuot=5m"]).diagnostics == (
        diagnostic(
            Severity.WARNING,
            "tag 'timeuot=5m' is not an nbops tag, so the cell is treated as untagged.",
            "Did you mean 'timeout=5m'?",
            "timeuot=5m",
        ),
    )


def test_someone_elses_key_value_tag_on_an_untagged_cell_is_left_alone() -> None:
    assert read(["jupyter=hide"]) == CellTags()


def test_two_different_timeouts_on_one_cell_are_an_error() -> None:
    result = read([], "#| nbops: step:train timeout=30m\n#| nbops: timeout=1h\nx = 1")

    assert result.options == (TagOption("timeout", "30m", line=1),)
    assert result.diagnostics == (
        diagnostic(
            Severity.ERROR,
            "the cell gives 'timeout' twice ('timeout=30m', 'timeout=1h'); "
            "nbops uses 'timeout=30m'.",
            "Keep one of these tags.",
            "timeout=1h",
            line=2,
        ),
    )


# the pipeline


def test_timeouts_reach_the_steps() -> None:
    p = pipeline(
        [
            ("a = 1", ["step:load", "timeout=30m"]),
            "#| nbops: step:train timeout=2s\nb = a + 1",
            ("c = b", ["step:report"]),
            ("assert c", ["test"]),
        ]
    )

    assert [(s.name, s.timeout_s) for s in p.steps] == [
        ("load", 1800.0),
        ("train", 2.0),
        ("report", None),
    ]
    assert messages(p) == []


def test_cells_of_one_step_that_give_different_timeouts_are_an_error() -> None:
    p = pipeline(
        [
            ("a = 1", ["step:train", "timeout=30m"]),
            ("b = 2", ["step:other"]),
            "#| nbops: step:train, timeout=1h\nc = a",
            ("assert b and c", ["test"]),
        ]
    )

    assert p.step("train").timeout_s == 1800.0
    assert messages(p) == [
        "info cell 2 line None: step 'train' is also the name of cell 0; as in Kale, cells with "
        "the same step name are one step, run where it first appears. | Nothing to do if that "
        "is meant; give this cell its own name to make it a step of its own.",
        "error cell 2 line 1: step 'train' has two timeouts: 'timeout=30m' (cell 0) and "
        "'timeout=1h'; nbops uses 'timeout=30m'. | Keep one 'timeout=' tag for the step.",
    ]
    assert p.errors[0].tag == "timeout=1h"


def test_cells_of_one_step_may_repeat_the_same_timeout() -> None:
    p = pipeline(
        [
            ("a = 1", ["step:train", "timeout=90"]),
            ("b = a", ["step:train", "timeout=1m30s"]),
            ("assert b", ["test"]),
        ]
    )

    assert p.step("train").timeout_s == 90.0
    assert p.errors == ()


def test_an_option_on_a_cell_continuing_a_step_is_an_error_and_ignored() -> None:
    p = pipeline([("a = 1", ["step:train"]), ("b = a", ["timeout=30m"]), ("assert b", ["test"])])

    assert p.step("train").timeout_s is None
    assert [d.cell_index for d in p.errors] == [1]


def test_the_lineage_shows_the_timeout() -> None:
    p = pipeline([("a = 1", ["step:load", "timeout=1h30m"]), ("b = a", ["step:train"]), "b"])

    steps = lineage_dict(p)["steps"]
    assert [s["timeout_s"] for s in steps] == [5400.0, None]
    assert 'step_load["load<br/>cell 0<br/>timeout 1h30m"]' in to_mermaid(p)
    assert 'step_load [label="load\\ncell 0\\ntimeout 1h30m"];' in to_dot(p)


# durations


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30.0),
        ("2m", 120.0),
        ("1h", 3600.0),
        ("1h30m", 5400.0),
        ("500ms", 0.5),
        ("1.5h", 5400.0),
        ("90", 90.0),
        ("0.25", 0.25),
        (".5s", 0.5),
        ("1h2m3s4ms", 3723.004),
        ("0h30m", 1800.0),
        (" 2m ", 120.0),
    ],
)
def test_parse_duration_reads_the_accepted_forms(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text",
    ["0", "0s", "0h0m", "-5s", "-1", "", "soon", "m", "1h1h", "30m1h", "5 m", "30S", "1e3", "inf"],
)
def test_parse_duration_rejects_the_rest_naming_the_accepted_forms(text: str) -> None:
    with pytest.raises(ValueError) as raised:
        parse_duration(text)

    assert str(raised.value) == f"{text!r} is not a positive duration {ACCEPTED}"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (90, "1m30s"),
        (30, "30s"),
        (1800, "30m"),
        (5400, "1h30m"),
        (0.5, "500ms"),
        (3723.004, "1h2m3s4ms"),
        (90000, "25h"),
        (0.0001, "1ms"),
    ],
)
def test_format_duration_gives_the_compact_form(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize("seconds", [0, -1, float("inf"), float("nan")])
def test_format_duration_rejects_what_is_not_a_duration(seconds: float) -> None:
    with pytest.raises(ValueError, match="a duration is a positive number of seconds"):
        format_duration(seconds)


@given(st.integers(min_value=1, max_value=10**10))
def test_a_whole_number_of_milliseconds_round_trips(millis: int) -> None:
    seconds = millis / 1000
    text = format_duration(seconds)

    assert parse_duration(text) == seconds
    assert format_duration(parse_duration(text)) == text


# generated code


def test_option_tags_leave_the_generated_package_unchanged() -> None:
    def package(load: list[str], train: str) -> dict[str, str]:
        built = pipeline([("a = 1", load), train, ("b", ["metrics"])])
        return {**render_pipeline(built), **render_tests(built)}

    plain = package(["step:load"], "#| nbops: step:train\nb = a + 1")
    timed = package(["step:load", "timeout=30m"], "#| nbops: step:train timeout=2s\nb = a + 1")

    assert timed == plain
