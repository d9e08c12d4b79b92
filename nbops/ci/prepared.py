"""The copy of a notebook that `nbops test` runs, and the metrics it reads back from it.

The copy leaves out `skip` cells, tags the parameters cell the way papermill looks for it, keeps
nbops' cell ids, and gains hidden cells: after each step, one that passes the step's outputs
through the store's serialisation (every other face reads them back from the store, so values
are the same to the last bit), and after the last metrics cell, one that prints the metrics.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nbops.errors import NotebookChanged
from nbops.model.notebook import Notebook
from nbops.model.pipeline import Pipeline
from nbops.model.tags import Role, read_cell_tags
from nbops.run import metric_values

PARAMETERS_TAG = "parameters"  # where papermill injects: after the first cell tagged so
INJECTED_TAG = "injected-parameters"
METRICS_TAG = "nbops-metrics"
METRICS_MARKER = "nbops-metrics:"
ROUND_TRIP_TAG = "nbops-round-trip"
# papermill injects new values right after the parameters cell, so code there that computes
# from parameters (`n = 2 * base`) saw the defaults; this hidden cell, which papermill's
# injected cell lands before, runs that code again on the values given, as nbops run does.
# nbclient's: a cell so tagged may raise, and the run goes on after it.
RAISES_TAG = "raises-exception"
PARAMETER_CODE_TAG = "nbops-parameter-code"

# Runs in the kernel after a step's last cell: its outputs become what the store gives back, as
# `nbops run` and the generated package read them. The store module is given as source (it
# depends on nothing else), so the kernel need not have nbops installed.
ROUND_TRIP = """\
# Added by `nbops test`: the step's outputs as the store gives them back; not part of the notebook.
def _nbops_round_trip(names, store_source):
    store = {"__name__": "nbops_store"}
    exec(store_source, store)
    for name in names:
        if name in globals():
            data, fmt = store["serialise"](globals()[name])
            globals()[name] = store["deserialise"](data, fmt)


_nbops_round_trip(__NAMES__, __STORE__)
del _nbops_round_trip
"""

# Runs in the kernel right after the last metrics cell, so a later failure cannot hide the
# metrics. Wrapped in a function and deleted, so it leaves no name behind for later cells. The
# rule is nbops' metric_values.py, whose source it is given: every face judges values alike,
# and the kernel need not have nbops installed.
READ_METRICS = """\
# Added by `nbops test` to read the metrics back; not part of the notebook.
def _nbops_read_metrics(names, rule):
    import json

    found = {}
    exec(rule, found)
    values, problems = found["split_metrics"](globals(), names)
    print("nbops-metrics:", json.dumps({"values": values, "problems": problems}))


_nbops_read_metrics(__NAMES__, __RULE__)
del _nbops_read_metrics
"""


def prepare_copy(
    node: Any, pipeline: Pipeline, *, overridden: bool = False, keep_going: bool = False
) -> Any:
    """The notebook papermill runs: skip cells left out, the parameters cell tagged the way
    papermill finds it, cell ids those of nbops' model, and the metrics read-back cell added.
    With `keep_going`, test cells are tagged `raises-exception`, so the run goes on after a
    failing one (a test cell only asserts: the cells after it read what they would have)."""
    import nbformat

    notebook = pipeline.notebook
    prepared = nbformat.v4.new_notebook(metadata=copy.deepcopy(node.metadata))  # type: ignore[no-untyped-call]
    prepared.metadata["nbops"] = {"notebook": notebook.path, "sha256": notebook.sha256}
    last_metrics = max((ref.index for ref in pipeline.metrics.cells), default=None)
    step_ends = {step.cells[-1].index: step for step in pipeline.steps if step.outputs}
    taken = {c.id for c in notebook.cells}
    tagged = False
    for cell, raw in zip(notebook.cells, node.cells, strict=True):
        tags = read_cell_tags(cell) if cell.is_code else None
        if tags is not None and tags.role is Role.SKIP:
            continue
        added = copy.deepcopy(raw)
        added["id"] = cell.id
        if keep_going and tags is not None and tags.role is Role.TEST:
            _add_tag(added, RAISES_TAG)
        is_parameters = tags is not None and tags.role is Role.PARAMETERS and not tags.injected
        if is_parameters and not tagged:
            _add_tag(added, PARAMETERS_TAG)  # `#| nbops: parameters`, Kale's pipeline-parameters
        prepared.cells.append(added)
        if is_parameters and not tagged and overridden and pipeline.parameter_code:
            prepared.cells.append(_parameter_code_cell(pipeline, taken))
        tagged |= is_parameters
        if cell.index in step_ends:
            step = step_ends[cell.index]
            prepared.cells.append(_round_trip_cell(step.name, step.outputs, taken))
        if cell.index == last_metrics and pipeline.metrics.names:
            prepared.cells.append(_metrics_cell(pipeline.metrics.names, notebook))
    return prepared


def _round_trip_cell(step: str, names: Sequence[str], taken: set[str]) -> Any:
    import nbformat

    from nbops.run import store

    source = ROUND_TRIP.replace("__NAMES__", json.dumps(list(names))).replace(
        "__STORE__", repr(Path(store.__file__).read_text(encoding="utf-8"))
    )
    cell = nbformat.v4.new_code_cell(source)  # type: ignore[no-untyped-call]
    cell.id = _free_id(f"{ROUND_TRIP_TAG}-{step}"[:64], taken)
    cell.metadata["tags"] = [ROUND_TRIP_TAG]
    cell.metadata["jupyter"] = {"source_hidden": True}
    return cell


def _parameter_code_cell(pipeline: Pipeline, taken: set[str]) -> Any:
    import nbformat

    source = "\n".join(part.source.strip("\n") for part in pipeline.parameter_code)
    cell = nbformat.v4.new_code_cell(source)  # type: ignore[no-untyped-call]
    cell.id = _free_id(PARAMETER_CODE_TAG, taken)
    cell.metadata["tags"] = [PARAMETER_CODE_TAG]
    cell.metadata["jupyter"] = {"source_hidden": True}
    return cell


def _free_id(wanted: str, taken: set[str]) -> str:
    """`wanted`, or `wanted-2`, `wanted-3`...: the first no cell has; then it is taken."""
    candidates = itertools.chain([wanted], (f"{wanted}-{n}" for n in itertools.count(2)))
    chosen = next(candidate for candidate in candidates if candidate not in taken)
    taken.add(chosen)
    return chosen


def _add_tag(cell: Any, tag: str) -> None:
    tags = cell.metadata.get("tags")
    tags = tags if isinstance(tags, list) else []
    if tag not in tags:  # the schema wants tags unique
        cell.metadata["tags"] = [*tags, tag]


def _metrics_cell(names: Sequence[str], notebook: Notebook) -> Any:
    import nbformat

    rule = Path(metric_values.__file__).read_text(encoding="utf-8")
    source = READ_METRICS.replace("__NAMES__", json.dumps(list(names))).replace(
        "__RULE__", repr(rule)
    )
    cell = nbformat.v4.new_code_cell(source)  # type: ignore[no-untyped-call]
    taken = {c.id for c in notebook.cells}
    candidates = itertools.chain([METRICS_TAG], (f"{METRICS_TAG}-{n}" for n in itertools.count(2)))
    cell.id = next(candidate for candidate in candidates if candidate not in taken)
    cell.metadata["tags"] = [METRICS_TAG]
    cell.metadata["jupyter"] = {"source_hidden": True}
    return cell


def read_node(notebook: Notebook) -> Any:
    """The notebook file as an nbformat v4 node, checked to be the bytes nbops analysed."""
    import nbformat

    raw = Path(notebook.path).read_bytes()
    if hashlib.sha256(raw).hexdigest() != notebook.sha256:
        raise NotebookChanged(
            "changed on disk while nbops test was reading it.",
            where=notebook.path,
            fix="Run nbops test again once it is saved.",
        )
    with warnings.catch_warnings():  # ids and format were checked when nbops loaded it
        warnings.simplefilter("ignore")
        return nbformat.reads(raw.decode("utf-8-sig"), as_version=4)  # type: ignore[no-untyped-call]


def read_metrics(executed: Any) -> tuple[dict[str, float], dict[str, str]]:
    """The values the read-back cell printed; empty when the run stopped before it."""
    for cell in executed.cells:
        if METRICS_TAG not in (cell.metadata.get("tags") or []):
            continue
        text = "".join(
            output.get("text", "")
            for output in cell.get("outputs", [])
            if output.get("output_type") == "stream" and output.get("name") == "stdout"
        )
        for line in text.splitlines():
            if line.startswith(METRICS_MARKER):
                data = json.loads(line[len(METRICS_MARKER) :])
                return dict(data["values"]), dict(data["problems"])
    return {}, {}
