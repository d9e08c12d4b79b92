"""The Airflow exporter: a DAG file (Airflow 2.9+ and 3.x) with one task per step.

Each task runs the build's step entry point, on the worker in the build folder (BashOperator)
or, with the option `kubernetes`, in a pod of the build's image (KubernetesPodOperator). Writing
the file needs no Airflow: it is rendered from templates/airflow/dag.py.j2 and formatted.
"""

from __future__ import annotations

import keyword
import re
import textwrap
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from nbops import __version__
from nbops.build.codegen import LINE_LENGTH, format_files, render
from nbops.build.exporters import ExportRefused, ExportRequest, placeholder_image
from nbops.model.pipeline import CellRef, Pipeline, Step

TEMPLATE = "airflow/dag.py.j2"
METRICS = "metrics"  # the step entry point's pseudo-step that computes the metrics
DEFAULT_PYTHON = "python3"
DOC_WIDTH = 80  # a task's doc_md, line by line in the file: 12 spaces, quotes and "\\n" fit 100
OPTIONS = {
    "python": "the Python that runs each step, with the notebook's libraries (default python3)",
    "kubernetes": "true for KubernetesPodOperator tasks running --image (--kubernetes)",
    "secret": "with kubernetes, a Kubernetes secret given to each pod as environment variables",
}
TRUE = frozenset({"1", "true", "yes", "on"})
# JSON Schema types of the params Airflow validates; other defaults are left untyped.
SCHEMA_TYPES = {
    "int": "integer",
    "float": "number",
    "str": "string",
    "bool": "boolean",
    "list": "array",
    "dict": "object",
}
# Names the DAG file binds at module level: a task variable never takes one of them.
TEMPLATE_NAMES = frozenset(
    {"DAG", "Param", "BashOperator", "KubernetesPodOperator", "Secret", "pendulum", "shlex"}
    | {"BUILD", "PYTHON", "STORE", "IMAGE", "SECRETS", "RUN_ARGUMENTS"}
    | {"shell_quote", "step_command", "step_arguments", "annotations"}
)


class AirflowExporter:
    name = "airflow"
    description = "an Airflow DAG file (Airflow 2.9+ or 3.x), one task per step"
    extra = "airflow"

    def available(self) -> bool:
        """Always: writing a DAG file needs no Airflow; running it does."""
        return True

    def export(self, request: ExportRequest) -> list[Path]:
        """`<out>/<dag id>_dag.py`, formatted; the out folder is made when missing."""
        context = dag_context(request)
        path = Path(request.out) / f"{context['dag_id']}_dag.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(TEMPLATE, context), encoding="utf-8")
        format_files(Path(request.build) / "ruff.toml", [path])
        return [path]


def dag_context(request: ExportRequest) -> dict[str, Any]:
    """What the template shows, as plain data: the DAG, its params, tasks and edges."""
    pipeline = request.pipeline
    pipeline.raise_for_errors()
    options = checked_options(request)
    kubernetes = options["kubernetes"] == "1"
    build = Path(request.build).resolve()
    tasks = task_context(pipeline)
    variables = {task["name"]: task["variable"] for task in tasks}
    return {
        "name": pipeline.notebook.name,
        "dag_id": dag_id(pipeline.notebook.name),
        "notebook": pipeline.notebook.display_name,
        "version": __version__,
        "line_length": LINE_LENGTH,
        "build": str(build),
        "python": options.get("python") or DEFAULT_PYTHON,
        "store": request.store or str(build / "store"),
        "kubernetes": kubernetes,
        "image": (request.image or placeholder_image(build)) if kubernetes else None,
        "secret": options.get("secret", ""),
        "parameter_cells": _cells(p.cell for p in pipeline.parameters),
        "parameters": [
            {**p.as_dict(), "schema_type": SCHEMA_TYPES.get(p.type)} for p in pipeline.parameters
        ],
        "tasks": tasks,
        "edges": [(variables[s], variables[t]) for s, t in task_edges(pipeline)],
    }


def checked_options(request: ExportRequest) -> dict[str, str]:
    """The options, `kubernetes` as "1" or "0"; an unknown one, or pods without a store they
    all reach, is refused."""
    unknown = sorted(set(request.options) - set(OPTIONS))
    if unknown:
        known = "; ".join(f"{name}: {what}" for name, what in OPTIONS.items())
        raise ExportRefused(f"the airflow exporter has no option {unknown[0]!r}.", fix=f"({known})")
    kubernetes = request.options.get("kubernetes", "").strip().lower() in TRUE
    if kubernetes and not request.store:
        raise ExportRefused(
            "--kubernetes needs --store: each task runs in a pod of its own, so the artifacts "
            "must live where every pod can read and write them.",
            fix="Pass a bucket, e.g. --store s3://bucket/prefix.",
        )
    if kubernetes and "://" not in str(request.store):
        raise ExportRefused(
            f"--store {request.store} is a local folder, which the pods of --kubernetes tasks "
            "do not share.",
            fix="Pass a bucket, e.g. --store s3://bucket/prefix.",
        )
    if request.options.get("secret") and not kubernetes:
        raise ExportRefused(
            "the secret option gives a Kubernetes secret to pods, and the tasks are not pods.",
            fix="Add --kubernetes, or drop the secret.",
        )
    return {**request.options, "kubernetes": "1" if kubernetes else "0"}


def dag_id(name: str) -> str:
    """The notebook's name as an Airflow DAG id: letters, digits, '_', '-' and '.'."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "pipeline"


def task_context(pipeline: Pipeline) -> list[dict[str, Any]]:
    """One task per step, in run order, then the metrics' when the notebook records any."""
    taken = set(TEMPLATE_NAMES)
    tasks = []
    for step in pipeline.steps:
        tasks.append(_task(step.name, _step_comment(step), _step_doc(pipeline, step)))
    if pipeline.metrics.names:
        if any(step.name == METRICS for step in pipeline.steps):
            raise ExportRefused(
                f"a step is called {METRICS!r}, the name of the task computing the metrics.",
                where=pipeline.notebook.display_name,
                fix="Rename the step (its step: tag).",
            )
        metrics = pipeline.metrics
        comment = f"The metrics: {_cells_phrase(metrics.cells)}."
        tasks.append(_task(METRICS, comment, _metrics_doc(pipeline)))
    for task in tasks:
        task["variable"] = _variable(task["name"], taken)
        taken.add(task["variable"])
        task["pod"] = pod_name(f"{pipeline.notebook.name}-{task['name']}")
    return tasks


def task_edges(pipeline: Pipeline) -> list[tuple[str, str]]:
    """(upstream, downstream) task ids: the lineage edges, then the metrics' inputs."""
    edges = [(edge.source, edge.target) for edge in pipeline.edges]
    edges += [(producer, METRICS) for _, producer in pipeline.metrics.inputs]
    return list(dict.fromkeys(edges))


def _task(name: str, comment: str, doc: list[str]) -> dict[str, Any]:
    return {"name": name, "comment": comment, "doc": _wrapped(doc)}


def _wrapped(paragraphs: list[str]) -> list[str]:
    """Markdown paragraphs as lines that fit the file's line length (a blank line between)."""
    lines: list[str] = []
    for paragraph in paragraphs:
        if lines:
            lines.append("")
        lines += textwrap.wrap(paragraph, DOC_WIDTH, break_long_words=False)
    return lines


def _variable(name: str, taken: set[str]) -> str:
    """The step's name as the task's variable, unless the file binds that name already."""
    variable = name
    while variable in taken or keyword.iskeyword(variable):
        variable = f"{variable}_task"
    return variable


def pod_name(name: str) -> str:
    """A pod name Kubernetes accepts (DNS-1123): lower case, digits and '-'."""
    return re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-") or "step"


def _step_comment(step: Step) -> str:
    title = f" ({step.title})" if step.title and step.title != step.name else ""
    return f"Step {step.name}{title}: notebook {_cells_phrase(step.cells)}."


def _step_doc(pipeline: Pipeline, step: Step) -> list[str]:
    """The task's doc_md: the step's cells, what it reads from which step, what it writes."""
    notebook = pipeline.notebook.display_name
    doc = [f"**Step `{step.display_name}`** of {notebook}: {_cells_phrase(step.cells, ids=True)}."]
    if step.inputs:
        reads = (f"`{name}` from `{pipeline.producer(name, step.name)}`" for name in step.inputs)
        doc += [f"Reads {', '.join(reads)}."]
    if step.outputs:
        doc += [f"Writes {', '.join(f'`{name}`' for name in step.outputs)}."]
    if step.parameters:
        doc += [f"Parameters: {', '.join(f'`{name}`' for name in step.parameters)}."]
    return doc


def _metrics_doc(pipeline: Pipeline) -> list[str]:
    metrics = pipeline.metrics
    notebook = pipeline.notebook.display_name
    doc = [f"**The metrics** of {notebook}: {_cells_phrase(metrics.cells, ids=True)}."]
    if metrics.inputs:
        reads = (f"`{name}` from `{producer}`" for name, producer in metrics.inputs)
        doc += [f"Reads {', '.join(reads)}."]
    doc += [f"Records {', '.join(f'`{name}`' for name in metrics.names)}."]
    return doc


def _cells(refs: Iterable[CellRef]) -> list[dict[str, Any]]:
    return [ref.as_dict() for ref in dict.fromkeys(refs)]


def _cells_phrase(refs: tuple[CellRef, ...], *, ids: bool = False) -> str:
    """Cells as prose: "cell 6", "cells 8 and 9"; with `ids`, "cell 6 (`a1b2`)"."""
    named = [f"{ref.index} (`{ref.id}`)" if ids else str(ref.index) for ref in refs]
    listed = named[0] if len(named) == 1 else ", ".join(named[:-1]) + " and " + named[-1]
    return f"cell{'s' if len(named) > 1 else ''} {listed}"
