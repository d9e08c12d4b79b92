"""The tag grammar: every tag and alias, `#| nbops:` lines, and the diagnostics for mistakes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nbops.model.analysis import analyse
from nbops.model.diagnostic import Diagnostic, Severity
from nbops.model.notebook import Cell, notebook_from_dict
from nbops.model.tags import (
    CellTags,
    Role,
    did_you_mean,
    is_step_name,
    option_line_tags,
    read_cell_tags,
    suggest_identifier,
)

NotebookJson = Callable[..., dict[str, Any]]


def read(tags: Sequence[str] = (), source: str = "x = 1") -> CellTags:
    return read_cell_tags(
        Cell(index=4, id="cell-4", cell_type="code", source=source, tags=tuple(tags))
    )


def diagnostic(
    severity: Severity, message: str, fix: str, tag: str, line: int | None = None
) -> Diagnostic:
    return Diagnostic(severity, message, fix, cell_index=4, cell_id="cell-4", line=line, tag=tag)


# every tag and alias


@pytest.mark.parametrize(
    ("tag", "role", "injected"),
    [
        ("parameters", Role.PARAMETERS, False),
        ("setup", Role.SETUP, False),
        ("test", Role.TEST, False),
        ("metrics", Role.METRICS, False),
        ("serve", Role.SERVE, False),
        ("pipeline-parameters", Role.PARAMETERS, False),  # Kale
        ("pipeline-metrics", Role.METRICS, False),  # Kale
        ("imports", Role.SETUP, False),  # Kale
        ("functions", Role.SETUP, False),  # Kale
        ("injected-parameters", Role.PARAMETERS, True),  # papermill
    ],
)
def test_a_tag_without_a_name_gives_its_role(tag: str, role: Role, injected: bool) -> None:
    assert read([tag]) == CellTags(role=role, name=None, tag=tag, injected=injected)


@pytest.mark.parametrize("tag", ["skip", "skip-execution"])  # nbmake's skip-execution
def test_skip_and_its_alias_leave_the_cell_out(tag: str) -> None:
    assert read([tag]) == CellTags(role=Role.SKIP, tag="skip")


@pytest.mark.parametrize(
    ("tag", "role", "name"),
    [
        ("step:train", Role.STEP, "train"),
        ("block:train", Role.STEP, "train"),  # Kale 1.x
        ("test:train", Role.TEST, "train"),
        ("serve:predict", Role.SERVE, "predict"),
        ("serve:v1/predict-proba", Role.SERVE, "v1/predict-proba"),
    ],
)
def test_a_tag_with_a_name_gives_role_and_name(tag: str, role: Role, name: str) -> None:
    assert read([tag]) == CellTags(role=role, name=name, tag=tag)


@pytest.mark.parametrize("prefix", ["after", "prev"])  # prev: is Kale's
def test_after_and_prev_add_ordering_without_a_role(prefix: str) -> None:
    assert read([f"{prefix}:load", f"{prefix}:clean"]) == CellTags(after=("load", "clean"))


def test_a_step_can_wait_for_other_steps() -> None:
    assert read(["after:load", "step:train", "prev:clean"]) == CellTags(
        role=Role.STEP, name="train", tag="step:train", after=("load", "clean")
    )


def test_an_untagged_cell_has_no_role() -> None:
    assert read([]) == CellTags()


def test_whitespace_around_a_tag_is_ignored() -> None:
    assert read([" setup "]) == CellTags(role=Role.SETUP, tag="setup")
    assert read(["step: train"]).name == "train"


def test_a_bare_test_and_a_named_one_make_one_named_test() -> None:
    assert read(["test", "test:train"]) == CellTags(role=Role.TEST, name="train", tag="test:train")
    assert read(["serve", "serve:score"]) == CellTags(
        role=Role.SERVE, name="score", tag="serve:score"
    )


def test_the_same_tag_twice_is_not_a_conflict() -> None:
    assert read(["step:train", "step:train"]) == CellTags(
        role=Role.STEP, name="train", tag="step:train"
    )


# the `#| nbops:` first-line style


@pytest.mark.parametrize(
    "source",
    [
        "#| nbops: step:train after:load\nmodel = fit(data)",
        "#| nbops: step:train, after:load\nmodel = fit(data)",
        "#|nbops:step:train,after:load\nmodel = fit(data)",
        "#| nbops: step:train\n#| nbops: after:load\nmodel = fit(data)",
        "#| echo: false\n#| nbops:  step:train ,  after:load\nmodel = fit(data)",
        "#| label: fit\r\n#| nbops: step:train after:load\r\nmodel = fit(data)",
    ],
)
def test_option_lines_equal_metadata_tags(source: str) -> None:
    expected = CellTags(role=Role.STEP, name="train", tag="step:train", after=("load",))

    assert read([], source) == expected
    assert read(["step:train", "after:load"], "model = fit(data)") == expected


def test_option_lines_report_their_line_numbers() -> None:
    source = "#| echo: false\n#| nbops: step:train, after:load\n#| nbops: metrics\nx = 1"

    assert option_line_tags(source) == (("step:train", 2), ("after:load", 2), ("metrics", 3))


@pytest.mark.parametrize(
    "source",
    [
        "#| echo: false\n#| output: asis\nx = 1",  # Quarto's own options
        "x = 1\n#| nbops: step:train",  # only leading lines count
        "\n#| nbops: step:train",
        "  #| nbops: step:train",
        "# | nbops: step:train",
        "#| NBOPS: step:train",
        "# nbops: step:train",
        "#| nbops:",
    ],
)
def test_lines_that_are_not_leading_nbops_options_are_ignored(source: str) -> None:
    assert option_line_tags(source) == ()
    assert read([], source) == CellTags()


def test_a_mistake_on_an_option_line_names_the_line() -> None:
    result = read([], "#| echo: false\n#| nbops: stp:train\nx = 1")

    assert result.diagnostics == (
        diagnostic(
            Severity.WARNING,
            "tag 'stp:train' is not an nbops tag, so the cell is treated as untagged.",
            "Did you mean 'step:train'?",
            "stp:train",
            line=2,
        ),
    )


# did you mean ...?


@pytest.mark.parametrize(
    ("tag", "suggestion"),
    [
        ("stp:train", "step:train"),
        ("Step:train", "step:train"),
        ("STEP:train", "step:train"),
        ("steps:train", "step:train"),
        ("tset:train", "test:train"),
        ("srve:predict", "serve:predict"),
        ("aftr:load", "after:load"),
        ("paramters", "parameters"),
        ("parameter", "parameters"),
        ("Parameters", "parameters"),
        ("metric", "metrics"),
        ("metircs", "metrics"),
        ("setpu", "setup"),
        ("tests", "test"),
        ("Skip", "skip"),
        ("skip_execution", "skip-execution"),
        ("pipeline-paramters", "pipeline-parameters"),
        ("import", "imports"),
        ("function", "functions"),
        # a tag that takes no name, given one
        ("skip:exploration", "skip"),
        ("setup:imports", "setup"),
        ("parameters:defaults", "parameters"),
        # a tag that needs a name, given none
        ("step", "step:<name>"),
        ("Step", "step:<name>"),
        ("block", "block:<name>"),
        ("after", "after:<name>"),
    ],
)
def test_a_mistyped_tag_gets_a_suggestion(tag: str, suggestion: str) -> None:
    assert did_you_mean(tag) == suggestion
    assert read([tag]) == CellTags(
        diagnostics=(
            diagnostic(
                Severity.WARNING,
                f"tag {tag!r} is not an nbops tag, so the cell is treated as untagged.",
                f"Did you mean {suggestion!r}?",
                tag,
            ),
        )
    )


@pytest.mark.parametrize(
    "tag",
    [
        "hide-input",
        "hide-output",
        "hide-cell",
        "remove-cell",
        "remove-input",
        "remove-output",
        "thebe-init",
        "raises-exception",
        "nbval-ignore-output",
        "nbval-skip",
        "skip-test",
        "full-width",
        "margin",
        "export",
        "hide",
        "latest",
        "black",
        "features:x",
        "nbsphinx-thumbnail",
        "tag with spaces",
    ],
)
def test_someone_elses_tag_gets_no_diagnostic(tag: str) -> None:
    assert did_you_mean(tag) is None
    assert read([tag]) == CellTags()


# Kale and Kubeflow step names: kept for display, a Python identifier for code


@pytest.mark.parametrize(
    ("tag", "role", "name", "title"),
    [
        ("step:data-loading", Role.STEP, "data_loading", "data-loading"),
        ("step:1train", Role.STEP, "_1train", "1train"),
        ("step:class", Role.STEP, "_class", "class"),
        ("step:None", Role.STEP, "_None", "None"),
        ("step:a.b", Role.STEP, "a_b", "a.b"),
        ("block:2-clean", Role.STEP, "_2_clean", "2-clean"),
        ("test:my-step", Role.TEST, "my_step", "my-step"),
    ],
)
def test_a_kale_step_name_is_kept_as_title_and_becomes_an_identifier(
    tag: str, role: Role, name: str, title: str
) -> None:
    assert read([tag]) == CellTags(role=role, name=name, tag=tag, title=title)
    assert is_step_name(name)


@pytest.mark.parametrize(
    ("tags", "after"),
    [
        (["prev:load-data"], ("load_data",)),
        (["prev:for"], ("_for",)),
        (["prev:load:clean"], ("load", "clean")),  # Kale: several parents in one tag
        (["prev:load", "prev:clean"], ("load", "clean")),
        (["after:a:b-c", "prev:d"], ("a", "b_c", "d")),
    ],
)
def test_prev_names_several_parents_as_identifiers(tags: list[str], after: tuple[str, ...]) -> None:
    assert read(tags) == CellTags(after=after)


def test_an_empty_block_tag_is_read_as_untagged_so_it_continues_the_step_above() -> None:
    assert read(["block:"]) == CellTags()
    assert read(["block:", "prev:load"]) == CellTags(after=("load",))


@pytest.mark.parametrize(
    ("tag", "name", "fix"),
    [
        ("step:", "", "step:step"),
        ("step:train:v2", "train:v2", "step:train_v2"),
        ("step:a/b", "a/b", "step:a_b"),
        ("step:-x", "-x", "step:x"),
        ("test:a b", "a b", "test:a_b"),
        ("after:load/data", "load/data", "after:load_data"),
        ("prev:a::b", "a::b", "prev:a_b"),
    ],
)
def test_an_invalid_step_name_is_an_error_with_an_identifier_to_use(
    tag: str, name: str, fix: str
) -> None:
    result = read([tag])

    assert result == CellTags(
        diagnostics=(
            diagnostic(
                Severity.ERROR,
                f"{tag!r}: step names are letters, digits, '_', '-' and '.', "
                f"and {name!r} is not one.",
                f"Rename it, e.g. {fix!r}.",
                tag,
            ),
        )
    )
    assert is_step_name(fix.partition(":")[2])


@pytest.mark.parametrize("tag", ["serve:/predict", "serve:", "serve:a b", "serve:predict/"])
def test_a_serve_tag_must_name_a_route(tag: str) -> None:
    assert read([tag]) == CellTags(
        diagnostics=(
            diagnostic(
                Severity.ERROR,
                f"{tag!r} does not name a route.",
                "Write it like 'serve:predict'.",
                tag,
            ),
        )
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [("1train", "_1train"), ("my step!", "my_step"), ("²", "step"), ("a²b", "a_b"), ("__", "step")],
)
def test_suggest_identifier(name: str, expected: str) -> None:
    assert suggest_identifier(name) == expected


@given(st.text(max_size=20))
def test_a_suggested_identifier_is_always_a_valid_step_name(name: str) -> None:
    assert is_step_name(suggest_identifier(name))


# one role per cell; skip wins


def test_two_roles_on_one_cell_is_an_error_and_the_first_wins() -> None:
    assert read(["step:train", "setup"]) == CellTags(
        role=Role.STEP,
        name="train",
        tag="step:train",
        diagnostics=(
            diagnostic(
                Severity.ERROR,
                "the cell has more than one role ('step:train', 'setup'); nbops uses the first.",
                "Split the cell, or keep one of these tags.",
                "setup",
            ),
        ),
    )


def test_a_second_role_on_an_option_line_names_that_line() -> None:
    result = read(["parameters"], "#| nbops: metrics\nx = 1")

    assert result.role is Role.PARAMETERS
    assert result.diagnostics == (
        diagnostic(
            Severity.ERROR,
            "the cell has more than one role ('parameters', 'metrics'); nbops uses the first.",
            "Split the cell, or keep one of these tags.",
            "metrics",
            line=1,
        ),
    )


def test_two_step_names_on_one_cell_is_an_error() -> None:
    assert read(["step:train", "block:fit"]) == CellTags(
        role=Role.STEP,
        name="train",
        tag="step:train",
        diagnostics=(
            diagnostic(
                Severity.ERROR,
                "the cell has more than one name ('step:train', 'block:fit'); nbops uses 'train'.",
                "Keep one of these tags, or split the cell.",
                "block:fit",
            ),
        ),
    )


@pytest.mark.parametrize(
    "tags",
    [
        ["skip", "step:train", "setup"],
        ["step:train", "skip"],
        ["parameters", "skip-execution"],
        ["serve:predict", "test", "skip"],
    ],
)
def test_skip_wins_over_every_other_tag(tags: list[str]) -> None:
    assert read(tags) == CellTags(role=Role.SKIP, tag="skip")


def test_skip_on_an_option_line_wins_too() -> None:
    assert read(["step:train"], "#| nbops: skip\nplot(x)") == CellTags(role=Role.SKIP, tag="skip")


# the aliases mean the same pipeline as the canonical tags


def test_kale_tags_give_the_same_pipeline_as_ours(notebook_json: NotebookJson) -> None:
    sources = [
        "import math",
        "def double(v):\n    return 2 * v",
        "rows = 3",
        "data = [double(i) for i in range(rows)]",
        "total = math.fsum(data)",
        "print(total)",
        "accuracy = total / rows",
    ]
    kale = [
        ["imports"],
        ["functions"],
        ["pipeline-parameters"],
        ["block:load"],
        ["block:total", "prev:load"],
        ["block:report", "prev:load"],
        ["pipeline-metrics"],
    ]
    ours = [
        ["setup"],
        ["setup"],
        ["parameters"],
        ["step:load"],
        ["step:total", "after:load"],
        ["#| nbops: step:report, after:load"],
        ["metrics"],
    ]

    def lineage(tagging: list[list[str]]) -> Any:
        cells = []
        for source, tags in zip(sources, tagging, strict=True):
            if tags[0].startswith("#|"):
                cells.append((f"{tags[0]}\n{source}", []))
            else:
                cells.append((source, tags))
        p = analyse(notebook_from_dict(notebook_json(cells), "k.ipynb"))
        return (
            [(s.name, s.inputs, s.after) for s in p.steps],
            [(e.source, e.target, e.artifacts, e.kind) for e in p.edges],
            [(x.name, x.default) for x in p.parameters],
            p.metrics.names,
            [d.message for d in p.diagnostics],
        )

    assert lineage(kale) == lineage(ours)
    steps, edges, parameters, metrics, messages = lineage(kale)
    assert steps == [
        ("load", (), ()),
        ("total", ("data",), ("load",)),
        ("report", ("total",), ("load",)),
    ]
    assert ("load", "total", ("data",), "data") in edges
    assert ("load", "report", (), "after") in edges
    assert parameters == [("rows", 3)]
    assert metrics == ("accuracy",)
    assert messages == []


def test_injected_parameters_are_marked_injected(notebook_json: NotebookJson) -> None:
    cells = [("alpha = 0.1  # learning rate", ["parameters"])]
    cells += [("alpha = 0.5", ["injected-parameters"]), ("fit = alpha * 2", ["step:fit"])]
    nb = notebook_from_dict(notebook_json(cells), "pm.ipynb")

    assert [read_cell_tags(cell).injected for cell in nb.cells] == [False, True, False]
    [alpha] = analyse(nb).parameters
    assert (alpha.name, alpha.default, alpha.help) == ("alpha", 0.5, "learning rate")
