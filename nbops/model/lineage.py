"""The lineage of a Pipeline as JSON (the contract scripts and the sidebar read), Mermaid, DOT."""

from __future__ import annotations

import json
import re
from typing import Any

from nbops import __version__
from nbops.model.durations import format_duration
from nbops.model.pipeline import CellRef, Endpoint, Pipeline, Step

SCHEMA_VERSION = 1


def lineage_dict(pipeline: Pipeline) -> dict[str, Any]:
    """The lineage JSON. Its shape is a contract: fields are added, never renamed or removed."""
    errors = sum(1 for d in pipeline.diagnostics if d.is_error)
    return {
        "schema_version": SCHEMA_VERSION,
        "nbops_version": __version__,
        "notebook": {
            "path": pipeline.notebook.path,
            "name": pipeline.notebook.name,
            "sha256": pipeline.notebook.sha256,
        },
        "parameters": [_jsonable(p.as_dict()) for p in pipeline.parameters],
        "setup": {"cells": _cells(pipeline.setup)},
        "steps": [_step(step) for step in pipeline.steps],
        "edges": [edge.as_dict() for edge in pipeline.edges],
        "artifacts": _artifacts(pipeline),
        "endpoints": [_endpoint(pipeline, e) for e in pipeline.endpoints],
        "tests": [{"step": t.step, "cells": _cells(t.cells)} for t in pipeline.tests],
        "metrics": {"names": list(pipeline.metrics.names), "cells": _cells(pipeline.metrics.cells)},
        "diagnostics": [d.as_dict() for d in pipeline.diagnostics],
        "summary": {
            "steps": len(pipeline.steps),
            "errors": errors,
            "warnings": sum(1 for d in pipeline.diagnostics if d.severity.value == "warning"),
        },
    }


def to_json(pipeline: Pipeline) -> str:
    return json.dumps(lineage_dict(pipeline), indent=2)


def _cells(refs: tuple[CellRef, ...]) -> list[dict[str, Any]]:
    return [ref.as_dict() for ref in refs]


def _step(step: Step) -> dict[str, Any]:
    return {
        "name": step.name,
        "title": step.display_name,
        "cells": _cells(step.cells),
        "reads": list(step.reads),
        "writes": list(step.writes),
        "inputs": list(step.inputs),
        "outputs": list(step.outputs),
        "parameters": list(step.parameters),
        "after": list(step.after),
        "files_written": list(step.files_written),
        "timeout_s": step.timeout_s,
        "files": [found.as_dict() for found in step.files_read],
    }


def _endpoint(pipeline: Pipeline, endpoint: Endpoint) -> dict[str, Any]:
    return {
        "name": endpoint.name,
        "route": endpoint.route,
        "cells": _cells(endpoint.cells),
        "artifacts": list(endpoint.artifacts),
        "producers": {a: endpoint_producer(pipeline, endpoint, a) for a in endpoint.artifacts},
        "signature": endpoint.signature(),
        "arguments": [
            {"name": a.name, "annotation": a.annotation, "default": a.default, "kind": a.kind}
            for a in endpoint.arguments
        ],
        "returns": endpoint.returns,
        "docstring": endpoint.docstring,
        "batch": endpoint.batch,
    }


def endpoint_producer(pipeline: Pipeline, endpoint: Endpoint, artifact: str) -> str | None:
    """The step whose value of `artifact` the endpoint serves with."""
    return dict(endpoint.inputs).get(artifact)


def _artifacts(pipeline: Pipeline) -> list[dict[str, Any]]:
    """Every value that flows: who makes it and who reads it."""
    flows: dict[tuple[str, str], list[str]] = {}
    for edge in pipeline.edges:
        for name in edge.artifacts:
            flows.setdefault((name, edge.source), []).append(edge.target)
    for endpoint in pipeline.endpoints:
        for name in endpoint.artifacts:
            producer = endpoint_producer(pipeline, endpoint, name)
            if producer is not None:
                flows.setdefault((name, producer), []).append(f"endpoint:{endpoint.name}")
    return [
        {"name": name, "producer": producer, "consumers": consumers}
        for (name, producer), consumers in flows.items()
    ]


def data_files(pipeline: Pipeline) -> dict[str, list[str]]:
    """Each data file (or `reads=` glob) the steps read, with the steps that read it."""
    found: dict[str, list[str]] = {}
    for step in pipeline.steps:
        for data in step.files_read:
            found.setdefault(data.path, []).append(step.name)
    return found


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return repr(value)


def _node_id(kind: str, name: str) -> str:
    return f"{kind}_{re.sub(r'[^A-Za-z0-9_]', '_', name)}"


def _cell_list(refs: tuple[CellRef, ...]) -> str:
    indexes = ", ".join(str(r.index) for r in refs)
    return f"cell {indexes}" if len(refs) == 1 else f"cells {indexes}"


def _step_label(step: Step) -> list[str]:
    """A step box's lines: its name, its cells, and its timeout when it has one."""
    lines = [step.display_name, _cell_list(step.cells)]
    if step.timeout_s is not None:
        lines.append(f"timeout {format_duration(step.timeout_s)}")
    return lines


def to_mermaid(pipeline: Pipeline) -> str:
    """A Mermaid flowchart: steps as boxes, artifacts on edges, data files into the steps that
    read them, endpoints, tests and metrics."""
    lines = ["flowchart TD"]
    if pipeline.parameters:
        names = ", ".join(p.name for p in pipeline.parameters)
        lines.append(f'  parameters[/"parameters: {names}"/]')
    for step in pipeline.steps:
        label = "<br/>".join(_step_label(step))
        lines.append(f'  {_node_id("step", step.name)}["{label}"]')
    for number, (path, readers) in enumerate(data_files(pipeline).items()):
        node = f"file_{number}"
        lines.append(f'  {node}[("{path}")]')
        lines.extend(f"  {node} --> {_node_id('step', reader)}" for reader in readers)
    for edge in pipeline.edges:
        source, target = _node_id("step", edge.source), _node_id("step", edge.target)
        if edge.artifacts:
            lines.append(f'  {source} -->|"{", ".join(edge.artifacts)}"| {target}')
        else:
            lines.append(f'  {source} -.->|"after"| {target}')
    for endpoint in pipeline.endpoints:
        node = _node_id("endpoint", endpoint.route)
        lines.append(f'  {node}(["POST /{endpoint.route}"])')
        for artifact in endpoint.artifacts:
            producer = endpoint_producer(pipeline, endpoint, artifact)
            if producer:
                lines.append(f'  {_node_id("step", producer)} -->|"{artifact}"| {node}')
    for number, test in enumerate(pipeline.tests):
        node = f"test_{number}"
        lines.append(f'  {node}{{{{"test {_cell_list(test.cells)}"}}}}')
        if test.step:
            lines.append(f"  {_node_id('step', test.step)} -.- {node}")
    if pipeline.metrics.names:
        lines.append(f'  metrics[("metrics: {", ".join(pipeline.metrics.names)}")]')
    return "\n".join(lines) + "\n"


def to_dot(pipeline: Pipeline) -> str:
    """A Graphviz digraph of the same graph as the Mermaid view."""
    lines = [
        f"digraph {json.dumps(pipeline.notebook.name)} {{",
        "  rankdir=TB;",
        '  node [fontname="Helvetica", shape=box, style=rounded];',
    ]
    for step in pipeline.steps:
        label = json.dumps("\n".join(_step_label(step)))
        lines.append(f"  {_node_id('step', step.name)} [label={label}];")
    for number, (path, readers) in enumerate(data_files(pipeline).items()):
        node = f"file_{number}"
        lines.append(f"  {node} [label={json.dumps(path)}, shape=note];")
        lines.extend(f"  {node} -> {_node_id('step', reader)};" for reader in readers)
    for edge in pipeline.edges:
        source, target = _node_id("step", edge.source), _node_id("step", edge.target)
        if edge.artifacts:
            lines.append(f"  {source} -> {target} [label={json.dumps(', '.join(edge.artifacts))}];")
        else:
            lines.append(f'  {source} -> {target} [style=dashed, label="after"];')
    for endpoint in pipeline.endpoints:
        node = _node_id("endpoint", endpoint.route)
        label = json.dumps(f"POST /{endpoint.route}")
        lines.append(f"  {node} [label={label}, shape=ellipse];")
        for artifact in endpoint.artifacts:
            producer = endpoint_producer(pipeline, endpoint, artifact)
            if producer:
                step_node = _node_id("step", producer)
                lines.append(f"  {step_node} -> {node} [label={json.dumps(artifact)}];")
    for number, test in enumerate(pipeline.tests):
        label = json.dumps(f"test {_cell_list(test.cells)}")
        lines.append(f"  test_{number} [label={label}, shape=hexagon];")
        if test.step:
            lines.append(f"  {_node_id('step', test.step)} -> test_{number} [style=dotted];")
    if pipeline.metrics.names:
        label = json.dumps("metrics: " + ", ".join(pipeline.metrics.names))
        lines.append(f"  metrics [label={label}, shape=cylinder];")
    lines.append("}")
    return "\n".join(lines) + "\n"
