"""Example requests: the `example` tag, the one example the build's smoke tests, the manifest
and a deploy all use, and the build's errors about cells tagged `example`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from builders import notebook_json, pipeline
from click.testing import CliRunner, Result

from nbops.build.service import render_service
from nbops.cli import cli
from nbops.model.diagnostic import Diagnostic, Severity
from nbops.model.examples import example_diagnostics, smoke_example
from nbops.model.notebook import Cell
from nbops.model.pipeline import CellRef
from nbops.model.tags import CellTags, Role, did_you_mean, read_cell_tags

BASE: list[Any] = [
    ("factor = 3  # multiplier", ["parameters"]),
    ("values = [1.0, 2.0, 4.0]", ["step:load"]),
    ("scaled = [v * factor for v in values]", ["step:scale"]),
]
SERVE = (
    "def predict(measurements: dict) -> float:\n    return measurements['x'] * max(scaled)",
    ["serve"],
)


def read(tags: list[str], source: str = "predict({'x': 1.0})") -> CellTags:
    return read_cell_tags(Cell(index=5, id="c5", cell_type="code", source=source, tags=tuple(tags)))


# the tag


def test_example_marks_a_cell_without_giving_it_a_role() -> None:
    assert read(["example"]) == CellTags(example=True)
    assert read([], "#| nbops: example\npredict({'x': 1.0})") == CellTags(example=True)
    assert read(["serve", "example"]) == CellTags(role=Role.SERVE, tag="serve", example=True)
    assert read(["skip", "example"]) == CellTags(role=Role.SKIP, tag="skip", example=True)


@pytest.mark.parametrize("tag", ["exmaple", "Example", "examples", "example:predict"])
def test_a_mistyped_example_tag_gets_a_suggestion(tag: str) -> None:
    assert did_you_mean(tag) == "example"
    assert read([tag]) == CellTags(
        diagnostics=(
            Diagnostic(
                Severity.WARNING,
                f"tag {tag!r} is not an nbops tag, so the cell is treated as untagged.",
                "Did you mean 'example'?",
                cell_index=5,
                cell_id="c5",
                tag=tag,
            ),
        )
    )


# which call is the example


def test_a_call_in_a_cell_tagged_example_is_the_example_before_any_other() -> None:
    cells = [*BASE, SERVE, "predict({'x': 1.0})", ("predict({'x': 2.0})", ["example"])]
    [endpoint] = (p := pipeline(cells)).endpoints
    example = smoke_example(p, endpoint)
    assert example is not None
    assert (example.body, example.cell, example.line, example.tagged) == (
        {"measurements": {"x": 2.0}},
        CellRef(5, "c5"),
        1,
        True,
    )


def test_without_the_tag_the_first_call_json_keeps_unchanged_is_the_example() -> None:
    cells = [*BASE, SERVE, "predict(({'x': 1.0},)[0])\npredict({'x': (1, 2)})", "predict({'x': 3})"]
    [endpoint] = (p := pipeline(cells)).endpoints
    example = smoke_example(p, endpoint)
    assert example is not None
    assert (example.body, example.cell.index, example.tagged) == (
        {"measurements": {"x": 3}},
        5,
        False,
    )
    assert smoke_example(pipeline([*BASE, SERVE]), endpoint) is None


def test_the_smoke_tests_send_the_example_the_manifest_records(tmp_path: Path) -> None:
    cells = [*BASE, SERVE, "predict({'y': 1.0})", ("predict({'x': 2.0})", ["example"])]
    smoke = render_service(pipeline(cells))["tests/test_service_smoke.py"]
    assert 'EXAMPLES = {\n    "/predict": \'{"measurements": {"x": 2.0}}\',\n}' in smoke
    done = nbops(tmp_path, "build", str(write(tmp_path, cells)), "-o", "out", "--format", "json")
    assert done.exit_code == 0, done.output
    [endpoint] = json.loads(done.stdout)["endpoints"]
    assert endpoint["example"] == {"measurements": {"x": 2.0}}
    assert endpoint["example_cell"] == {"index": 5, "id": "c5"}


# what is wrong with a cell tagged example


def test_a_cell_tagged_example_must_call_a_serve_function_with_literals() -> None:
    cells = [
        *BASE,
        SERVE,
        ("sample = {'x': 2.0}\npredict(sample)", ["example"]),
        ("print('hello')", ["skip", "example"]),
    ]
    assert [d.render("nb.ipynb") for d in example_diagnostics(pipeline(cells))] == [
        "nb.ipynb cell 4 [example] line 2: the example call predict(sample) has arguments that "
        "are not JSON literals, so it cannot be sent as a request. Write the arguments as "
        "literals, as a request carries them: numbers, strings, True, False, None, and lists "
        "and dicts of them.",
        "nb.ipynb cell 5 [example] line 1: this cell is tagged 'example' but calls no serve "
        "function, so it is no route's example. Call predict(...) here with literal arguments, "
        "or remove the 'example' tag.",
    ]


def test_the_build_refuses_an_example_it_cannot_send(tmp_path: Path) -> None:
    cells = [*BASE, SERVE, ("sample = {'x': 2.0}\npredict(sample)", ["example"])]
    done = nbops(tmp_path, "build", str(write(tmp_path, cells)), "-o", "out")
    assert done.exit_code == 2
    assert done.stderr == (
        "error: small.ipynb cell 4 [example] line 2: the example call predict(sample) has "
        "arguments that are not JSON literals, so it cannot be sent as a request. Write the "
        "arguments as literals, as a request carries them: numbers, strings, True, False, None, "
        "and lists and dicts of them. (1 error in all; `nbops check` lists them.)\n"
    )
    checked = nbops(tmp_path, "check", str(tmp_path / "small.ipynb"))
    assert checked.exit_code == 1
    assert "cell 4 [example] line 2: the example call predict(sample) has arguments" in (
        checked.stdout
    )


def nbops(folder: Path, *args: str) -> Result:
    """`nbops ARGS...` run in folder with its own .nbops, output piped."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        patch.setenv("NBOPS_HOME", str(folder / ".nbops"))
        return CliRunner().invoke(cli, list(args))


def write(folder: Path, cells: list[Any]) -> Path:
    path = folder / "small.ipynb"
    path.write_text(json.dumps(notebook_json(cells)))
    return path
