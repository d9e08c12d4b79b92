"""The Kubeflow Pipelines exporter: a v2 pipeline YAML compiled by the kfp SDK's own compiler.

One container component per step, each running the build's step entry point in the build's
image; the task dependencies are the lineage edges; notebook parameters are typed pipeline
parameters; the metrics task reports through KFP's Metrics output.
"""

from __future__ import annotations

import importlib.util
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbops.build.exporters import ExportRefused, ExportRequest, placeholder_image
from nbops.model.pipeline import CellRef, Parameter, Pipeline

# The notebook's parameter types KFP has pipeline parameters for.
KFP_TYPES: dict[str, type] = {
    "int": int,
    "float": float,
    "str": str,
    "bool": bool,
    "list": list,
    "dict": dict,
}
METRICS_TASK = "metrics"
METRICS_OUTPUT = "metrics"
RUN_ID_INPUT = "run_id"


@dataclass(frozen=True)
class Task:
    """One task of the exported pipeline: the entry point's step, what it reads, what it names."""

    step: str
    cells: str
    parameters: tuple[str, ...]
    after: tuple[str, ...]


class KfpExporter:
    name = "kfp"
    description = "the Kubeflow Pipelines SDK (kfp 2.x)"
    extra = "kfp"

    def available(self) -> bool:
        return importlib.util.find_spec("kfp") is not None

    def export(self, request: ExportRequest) -> list[Path]:
        """Compile the pipeline into request.out (a .yaml file)."""
        store = require_store(request.store)
        image = request.image or placeholder_image(request.build)
        pipeline = request.pipeline
        parameters = pipeline_parameters(pipeline)
        graph = pipeline_function(pipeline, tasks(pipeline), parameters, image, store)
        from kfp import compiler

        request.out.parent.mkdir(parents=True, exist_ok=True)
        compiler.Compiler().compile(graph, str(request.out), pipeline_name=kfp_name(pipeline))
        return [request.out]


def require_store(store: str | None) -> str:
    """Every task runs in a pod of its own: the store is the only place they share."""
    if not store:
        raise ExportRefused(
            "a Kubeflow pipeline needs --store: each task runs in a pod of its own, so the "
            "artifacts must live where every pod can read and write them.",
            fix="Pass a bucket, e.g. --store s3://bucket/prefix.",
        )
    if "://" not in store:
        raise ExportRefused(
            f"--store {store} is a local folder, which the pods of a Kubeflow pipeline "
            "do not share.",
            fix="Pass a bucket, e.g. --store s3://bucket/prefix.",
        )
    return store


def kfp_name(pipeline: Pipeline) -> str:
    """KFP names pipelines like Kubernetes objects: lowercase letters, digits and dashes."""
    return "".join(c if c.isalnum() else "-" for c in pipeline.notebook.name.lower()).strip("-")


def pipeline_parameters(pipeline: Pipeline) -> tuple[Parameter, ...]:
    """The notebook's parameters, each with a KFP type; refused when one has none."""
    for parameter in pipeline.parameters:
        if parameter.type not in KFP_TYPES:
            raise ExportRefused(
                f"parameter {parameter.name!r} (default {parameter.default!r}) has no Kubeflow "
                f"Pipelines type: pipeline parameters are {', '.join(KFP_TYPES)}.",
                fix=f"Give {parameter.name} a default of one of those types in the parameters "
                "cell.",
                where=f"{pipeline.notebook.display_name} cell {parameter.cell.index} [parameters]",
            )
    return pipeline.parameters


def tasks(pipeline: Pipeline) -> list[Task]:
    """The steps in order, then the metrics (when the notebook has metrics cells)."""
    found = [
        Task(
            step=step.name,
            cells=cell_label(pipeline, step.cells, f"step:{step.display_name}"),
            parameters=parameters_read(pipeline, step.reads),
            after=tuple(dict.fromkeys(e.source for e in pipeline.edges if e.target == step.name)),
        )
        for step in pipeline.steps
    ]
    metrics = pipeline.metrics
    if metrics.cells:
        found.append(
            Task(
                step=METRICS_TASK,
                cells=cell_label(pipeline, metrics.cells, "metrics"),
                parameters=parameters_read(pipeline, metrics.reads),
                after=tuple(dict.fromkeys(step for _, step in metrics.inputs)),
            )
        )
    return found


def parameters_read(pipeline: Pipeline, reads: Sequence[str]) -> tuple[str, ...]:
    """The parameters code reading `reads` depends on: those it reads, those the setup cells
    read (setup runs before every step), and those behind values the parameters cell computes
    from parameters (`n = n_rows // 2`) that it reads."""
    wanted = set(reads)
    for ref in pipeline.setup:
        names = pipeline.code(ref).names
        wanted.update(names.reads, names.deferred_reads)
    for part in pipeline.parameter_code:
        if wanted & set(part.writes):
            wanted.update(part.reads)
    return tuple(p.name for p in pipeline.parameters if p.name in wanted)


def cell_label(pipeline: Pipeline, cells: Sequence[CellRef], tag: str) -> str:
    """`churn.ipynb cells 8-9 [step:features]`: what a task's display name shows."""
    runs: list[list[int]] = []
    for index in sorted(ref.index for ref in cells):
        if runs and index == runs[-1][-1] + 1:
            runs[-1].append(index)
        else:
            runs.append([index])
    shown = ", ".join(str(r[0]) if len(r) == 1 else f"{r[0]}-{r[-1]}" for r in runs)
    word = "cell" if len(cells) == 1 else "cells"
    return f"{pipeline.notebook.display_name} {word} {shown} [{tag}]"


def pipeline_function(
    pipeline: Pipeline,
    planned: list[Task],
    parameters: tuple[Parameter, ...],
    image: str,
    store: str,
) -> Any:
    """The `@dsl.pipeline` the compiler takes, built from the model rather than written out:
    its signature is the notebook's parameters with their types and defaults."""
    from kfp import dsl

    components = {task.step: container_component(pipeline, task, image, store) for task in planned}

    def body(*values: Any) -> None:
        given = dict(zip([p.name for p in parameters], values, strict=True))
        made: dict[str, Any] = {}
        for task in planned:
            arguments = {name: given[name] for name in task.parameters}
            made[task.step] = components[task.step](
                **arguments, **{RUN_ID_INPUT: dsl.PIPELINE_JOB_ID_PLACEHOLDER}
            )
            made[task.step].set_display_name(task.cells)
            # What is reused is the store's business: a KFP cache hit would skip a step whose
            # outputs the later steps of this run read from the store.
            made[task.step].set_caching_options(False)
            if task.after:
                made[task.step].after(*(made[name] for name in task.after))

    signature = [
        inspect.Parameter(
            p.name,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            default=p.default,
            annotation=KFP_TYPES[p.type],
        )
        for p in parameters
    ]
    described = _as_function(body, kfp_name(pipeline), signature, _pipeline_doc(pipeline))
    return dsl.pipeline(name=kfp_name(pipeline), description=described.__doc__)(described)


def container_component(pipeline: Pipeline, task: Task, image: str, store: str) -> Any:
    """One step as a container component: `python -m pipeline step NAME` in the build's image,
    with the run id, the store and the parameters it reads; the metrics also report to KFP."""
    from kfp import dsl

    types = {p.name: KFP_TYPES[p.type] for p in pipeline.parameters}
    inputs = [*task.parameters, RUN_ID_INPUT]
    metrics = task.step == METRICS_TASK

    def body(*values: Any) -> Any:
        placeholder = dict(zip(inputs, values, strict=False))
        command = ["python", "-m", "pipeline", "step", task.step]
        args: list[Any] = ["--run-id", placeholder[RUN_ID_INPUT], "--store", store]
        for name in task.parameters:
            # KFP puts the value in place inside the string (`n_rows=5000`, `flag=true`).
            args += ["-p", f"{name}={placeholder[name]}"]
        if not metrics:
            return dsl.ContainerSpec(image=image, command=command, args=args)
        script = metrics_script(pipeline)
        wrapper = ["python", "-c", script, dsl.PIPELINE_TASK_EXECUTOR_INPUT_PLACEHOLDER]
        return dsl.ContainerSpec(image=image, command=wrapper, args=[*command, *args])

    signature = [
        inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=types[name])
        for name in task.parameters
    ]
    signature.append(
        inspect.Parameter(RUN_ID_INPUT, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=str)
    )
    if metrics:
        signature.append(
            inspect.Parameter(
                METRICS_OUTPUT,
                inspect.Parameter.POSITIONAL_OR_KEYWORD,
                annotation=dsl.Output[dsl.Metrics],
            )
        )
    doc = f"{task.cells}: runs `python -m pipeline step {task.step}` of the nbops build."
    return dsl.container_component(_as_function(body, task.step, signature, doc))


def metrics_script(pipeline: Pipeline) -> str:
    """The metrics task's `python -c` program: run the metrics, write KFP's executor output."""
    from nbops.templating import new_environment

    template = new_environment().get_template("kfp/report_metrics.py.j2")
    return template.render(notebook=pipeline.notebook.display_name, output=METRICS_OUTPUT)


def _as_function(
    body: Callable[..., Any], name: str, signature: list[inspect.Parameter], doc: str
) -> Callable[..., Any]:
    """`body` under the name, signature and docstring the kfp decorators read."""
    body.__name__ = body.__qualname__ = name
    body.__doc__ = doc
    body.__signature__ = inspect.Signature(signature)  # type: ignore[attr-defined]
    body.__annotations__ = {p.name: p.annotation for p in signature}
    return body


def _pipeline_doc(pipeline: Pipeline) -> str:
    steps = ", ".join(s.name for s in pipeline.steps)
    return f"{pipeline.notebook.display_name}, exported by nbops: steps {steps}."
