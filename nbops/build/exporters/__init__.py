"""Exporters turn a pipeline into another engine's pipeline (Kubeflow Pipelines, Airflow, ...).

They are plugins: each is registered under the `nbops.exporters` entry-point group, kfp and
airflow the same way a third party would register `argo` or `prefect`:

    [project.entry-points."nbops.exporters"]
    argo = "nbops_argo:ArgoExporter"

Every task of an exported pipeline runs one command, the generated package's step entry point
(`python -m pipeline step NAME --run-id ID --store URL [-p NAME=VALUE ...] [--result FILE]`),
so nothing about a step is re-implemented per engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Protocol

from nbops.errors import NbopsError
from nbops.model.pipeline import Pipeline

GROUP = "nbops.exporters"


@dataclass(frozen=True)
class ExportRequest:
    """What to export and how: the analysed pipeline, its build folder (the generated package,
    Dockerfile and nbops.json), where to write, and the engine-neutral options."""

    pipeline: Pipeline
    build: Path
    out: Path
    image: str | None = None  # where the build's image is pushed (kfp, airflow --kubernetes)
    store: str | None = None  # the artifact store every task reads and writes (a URL)
    options: dict[str, str] = field(default_factory=dict)  # engine-specific (--kubernetes)


class Exporter(Protocol):
    """One engine. `extra` names the pip extra that brings its SDK (`nbops[kfp]`)."""

    name: str
    description: str
    extra: str

    def available(self) -> bool:
        """Whether what the exporter needs is installed."""

    def export(self, request: ExportRequest) -> list[Path]:
        """Write the engine's files; the paths written."""


class UnknownExporter(NbopsError):
    """--to names no installed exporter."""


class ExporterUnavailable(NbopsError):
    """The exporter is registered but its engine's SDK is not installed."""


def installed() -> dict[str, Exporter]:
    """Every registered exporter, by name (`nbops export --list`)."""
    found: dict[str, Exporter] = {}
    for entry in metadata.entry_points(group=GROUP):
        exporter = entry.load()()
        found[entry.name] = exporter
    return dict(sorted(found.items()))


def exporter(name: str) -> Exporter:
    """The exporter called `name`, ready to use; a clear error otherwise."""
    exporters = installed()
    if name not in exporters:
        raise UnknownExporter(
            f"--to {name!r} names no installed exporter.",
            fix=f"Installed: {', '.join(exporters) or 'none'} (`nbops export --list`).",
        )
    chosen = exporters[name]
    if not chosen.available():
        raise ExporterUnavailable(
            f"the {name} exporter needs {chosen.description} installed.",
            fix=f"pip install 'nbops[{chosen.extra}]'",
        )
    return chosen
