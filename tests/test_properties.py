"""Properties of the analysis over random tagged notebooks: it never crashes, its graph is sound."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nbops.errors import NotebookInvalid
from nbops.model.analysis import analyse
from nbops.model.lineage import lineage_dict, to_dot, to_mermaid
from nbops.model.notebook import Notebook, parse_notebook
from nbops.model.pipeline import Pipeline
from nbops.model.tags import is_step_name

NAMES = ["load", "train", "a", "b", "eval"]

NAMED_TAGS = st.builds(
    "{}:{}".format,
    st.sampled_from(["step", "step", "block", "after", "prev", "test", "serve"]),
    st.sampled_from(NAMES),
)
# The whole grammar: our tags, the aliases, and mistakes of every kind; named tags are
# drawn more often, so that steps, edges and cycles are common.
TAGS = st.one_of(
    NAMED_TAGS,
    NAMED_TAGS,
    st.sampled_from(
        [
            "parameters",
            "setup",
            "test",
            "metrics",
            "serve",
            "skip",
            "pipeline-parameters",
            "pipeline-metrics",
            "imports",
            "functions",
            "injected-parameters",
            "skip-execution",
            # invalid or mistyped
            "step:1train",
            "step:my-step",
            "step:class",
            "step:",
            "serve:/x",
            "stp:train",
            "Step:train",
            "paramters",
            "skip:x",
            "step",
            "hide-input",
            "remove-cell",
        ]
    ),
)

PREDICT = "def predict(x: float) -> float:\n    return x * b"
# The first few read and write the same handful of names, so they are drawn most.
DATAFLOW = ["a = 1", "b = a + 1", "a += b", "c = b * 2", "print(c)", "lst.append(b)", PREDICT]
SNIPPETS = [
    *DATAFLOW,
    "del a",
    "def f(): return b",
    'df["x"] = a',
    "x = (",
    "%time a = b",
    "!echo {a}",
    "%%bash\necho",
    "",
    "c = f()",
    "import os",
    "from math import *",
    "for i in range(3):\n    b += i",
    "class K:\n    z = a",
    "assert a > 0",
    "score = 0.5",
    "with open('out.txt', 'w') as fh:\n    fh.write(str(a))",
    "lam = lambda: d",
    "result = [y * a for y in range(b)]",
    "(w := a + 1)",
    "a: int = 2",
    "exec('a = 3')",
    "global a",
    "return a",
    "yield b",
    "nonlocal a",
    "  indented = 1",
    '"""never closed',
    "async def h():\n    return await b",
    "match a:\n    case 1:\n        b = 2",
    "def serve_me(x: int) -> int:\n    return x + a",
    "get_ipython().run_line_magic('time', 'a')",
    "%store a",
    "%run other.py",
    "lst = []",
    "df = {}",
    "d = a if b else c",
    "a.b.c = 1",
    "x, *rest = lst",
    "try:\n    a = 1\nexcept Exception as err:\n    print(err)",
]


@st.composite
def code_cell(draw: st.DrawFn) -> dict[str, Any]:
    tags = draw(st.lists(TAGS, max_size=3))
    # Tags go to metadata or to a leading `#| nbops:` line (Quarto style), at random.
    in_source = bool(tags) and draw(st.booleans())
    snippet = st.one_of(st.sampled_from(DATAFLOW), st.sampled_from(SNIPPETS))
    lines = draw(st.lists(snippet, max_size=3))
    source = "\n".join(lines)
    if in_source:
        source = f"#| nbops: {', '.join(tags)}\n{source}"
    if draw(st.booleans()):
        source = source.splitlines(keepends=True)  # type: ignore[assignment]
    return {
        "cell_type": "code",
        "metadata": {"tags": list(dict.fromkeys(tags))} if tags and not in_source else {},
        "source": source,
        "outputs": [],
        "execution_count": None,
    }


MARKDOWN = st.builds(
    lambda text: {"cell_type": "markdown", "metadata": {}, "source": text},
    st.sampled_from(["# Title", "Some *notes*.", "", "#| nbops: step:train"]),
)


@st.composite
def notebooks(draw: st.DrawFn) -> bytes:
    size = draw(st.integers(0, 30))  # uniform, so long notebooks are as common as short ones
    codes = draw(st.lists(code_cell(), min_size=size, max_size=size))
    cells = list(codes)
    for _ in range(draw(st.integers(0, 4))):
        cells.insert(draw(st.integers(0, len(cells))), draw(MARKDOWN))
    with_ids = draw(st.booleans())
    if with_ids:
        for index, cell in enumerate(cells):
            cell["id"] = draw(st.sampled_from([f"c{index}", f"c{index}", "dup"]))
    data = {
        "nbformat": 4,
        "nbformat_minor": 5 if with_ids else 4,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "P", "language": "python"}},
        "cells": cells,
    }
    return json.dumps(data).encode()


def first_cells(pipeline: Pipeline) -> dict[str, int]:
    return {step.name: step.cells[0].index for step in pipeline.steps}


def check_graph(notebook: Notebook, pipeline: Pipeline) -> None:
    first = first_cells(pipeline)
    names = [step.name for step in pipeline.steps]
    assert len(set(names)) == len(names), names
    assert all(is_step_name(name) for name in names), names
    for edge in pipeline.edges:
        assert edge.source != edge.target, edge
        assert edge.source in first and edge.target in first, edge
        assert first[edge.source] < first[edge.target], edge
    for step in pipeline.steps:
        for ref in step.cells:
            assert notebook.cells[ref.index].id == ref.id


def check_diagnostics(notebook: Notebook, pipeline: Pipeline) -> None:
    for d in pipeline.diagnostics:
        if d.cell_index is not None:
            assert 0 <= d.cell_index < len(notebook.cells), d
            assert d.cell_id == notebook.cells[d.cell_index].id, d
        assert d.message and d.fix, d


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(notebooks())
def test_analysis_of_any_tagged_notebook_is_sound(raw: bytes) -> None:
    cells = json.loads(raw)["cells"]
    if not any(cell["cell_type"] == "code" for cell in cells):
        with pytest.raises(NotebookInvalid, match="has no code cells"):
            parse_notebook(raw, "gen.ipynb")
        return

    notebook = parse_notebook(raw, "gen.ipynb")
    pipeline = analyse(notebook)

    ids = [cell.id for cell in notebook.cells]
    assert len(set(ids)) == len(ids)
    assert ids == [cell.id for cell in parse_notebook(raw, "gen.ipynb").cells]
    check_graph(notebook, pipeline)
    check_diagnostics(notebook, pipeline)
    lineage = lineage_dict(pipeline)
    assert json.loads(json.dumps(lineage)) == lineage
    assert lineage_dict(analyse(parse_notebook(raw, "gen.ipynb"))) == lineage
    to_mermaid(pipeline)
    to_dot(pipeline)
