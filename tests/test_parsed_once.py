"""Each cell is parsed once, by analysis; the runner, codegen, service, packaging and the example
finder reuse that parse through `Pipeline.code`."""

from __future__ import annotations

import ast
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nbops.build.codegen import render_pipeline, render_tests
from nbops.build.packaging import current_environment, render_packaging
from nbops.build.service import render_service
from nbops.model.analysis import analyse
from nbops.model.examples import example_request
from nbops.model.notebook import load_notebook
from nbops.model.pipeline import Pipeline
from nbops.model.plain_python import plain_python

EXAMPLES = Path(__file__).resolve().parent.parent / "example_notebooks"
NOTEBOOKS = ["churn.ipynb", "regression.ipynb", "kale_dialect.ipynb"]


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[str]]:
    """Every text `ast.parse` is given from now on, counted."""
    seen: Counter[str] = Counter()
    real = ast.parse

    def counting(source: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(source, str):
            seen[source] += 1
        return real(source, *args, **kwargs)

    monkeypatch.setattr(ast, "parse", counting)
    yield seen


def generate_everything(pipeline: Pipeline) -> None:
    """What `nbops build` generates from the model, without writing or running anything."""
    render_pipeline(pipeline)
    render_tests(pipeline)
    render_service(pipeline)
    render_packaging(pipeline, current_environment())
    for endpoint in pipeline.endpoints:
        example_request(pipeline, endpoint)
    for code in pipeline.code_cells:
        code.plain  # what the runner compiles


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_generating_a_build_parses_no_cell_that_analysis_parsed(
    name: str, parses: Counter[str]
) -> None:
    pipeline = analyse(load_notebook(EXAMPLES / name))
    analysed = Counter(parses)
    generate_everything(pipeline)
    after = parses - analysed
    plain = [code for code in pipeline.code_cells if code.python.plain]
    assert len(plain) > 5
    for code in plain:
        assert after[code.cell.source] == 0, f"cell {code.cell.index} parsed again"
        assert after[code.plain.code] == 0, f"cell {code.cell.index}'s code parsed again"
    # Only cells with IPython syntax are converted, and each conversion is parsed at most once.
    converted = Counter(code.plain.code for code in pipeline.code_cells if not code.python.plain)
    assert all(after[text] <= cells for text, cells in converted.items())


def test_the_parsed_cell_is_kept_on_the_model() -> None:
    pipeline = analyse(load_notebook(EXAMPLES / "churn.ipynb"))
    ref = pipeline.steps[0].cells[0]
    code = pipeline.code(ref)
    assert code is pipeline.code(ref)
    assert code.cell.id == ref.id
    assert code.plain is code.plain
    assert code.plain.tree is code.python.tree
    assert code.plain == plain_python(code.cell.source)  # the shortcut changes nothing


def test_a_magic_cell_is_converted_and_its_plain_form_parsed_when_needed() -> None:
    pipeline = analyse(load_notebook(EXAMPLES / "regression.ipynb"))
    converted = [code for code in pipeline.code_cells if not code.python.plain]
    assert converted, "the regression example has %%time, %time and !echo cells"
    for code in converted:
        assert code.plain == plain_python(code.cell.source)
        assert code.plain.syntax is not None and code.plain.syntax[1] == 0


def test_a_pipeline_built_by_hand_parses_its_cells_on_first_use() -> None:
    analysed = analyse(load_notebook(EXAMPLES / "churn.ipynb"))
    by_hand = Pipeline(notebook=analysed.notebook, steps=analysed.steps)
    ref = analysed.steps[0].cells[0]
    assert by_hand.code(ref).plain == analysed.code(ref).plain
    assert by_hand.code(ref) is by_hand.code(ref)
