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

import json
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

from nbops.errors import NbopsError
from nbops.model.notebook import Notebook
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


class ExportRefused(NbopsError):
    """What was asked cannot make a pipeline that runs: no build here, a stale build, a store
    the engine's tasks cannot share."""


class UnloadableExporter:
    """A registered exporter whose plugin fails to import: listed, never used, and never in
    the way of the others (a broken third-party plugin must not break `--to kfp`)."""

    extra = ""

    def __init__(self, name: str, target: str, error: str) -> None:
        self.name = name
        self.description = f"cannot be loaded ({target}: {error})"

    def available(self) -> bool:
        return False

    def export(self, request: ExportRequest) -> list[Path]:
        raise ExporterUnavailable(f"the {self.name} exporter {self.description}.")


def installed() -> dict[str, Exporter]:
    """Every registered exporter, by name (`nbops export --list`)."""
    found: dict[str, Exporter] = {}
    for entry in metadata.entry_points(group=GROUP):
        try:
            found[entry.name] = entry.load()()
        except ImportError as error:
            found[entry.name] = UnloadableExporter(entry.name, entry.value, str(error))
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
    if isinstance(chosen, UnloadableExporter):
        raise ExporterUnavailable(
            f"the {name} exporter {chosen.description}.",
            fix="Reinstall the package that provides it.",
        )
    if not chosen.available():
        raise ExporterUnavailable(
            f"the {name} exporter needs {chosen.description} installed.",
            fix=f"pip install 'nbops[{chosen.extra}]'",
        )
    return chosen


def read_build(folder: Path) -> dict[str, Any]:
    """A build folder's nbops.json, refused when the folder holds no build with a package."""
    manifest = folder / "nbops.json"
    if not manifest.is_file() or not (folder / "pipeline").is_dir():
        raise ExportRefused(
            f"{folder} is not an nbops build (it needs nbops.json and pipeline/).",
            fix="Run `nbops build NOTEBOOK` first, or export the notebook itself.",
        )
    data: dict[str, Any] = json.loads(manifest.read_text(encoding="utf-8"))
    return data


def built_notebook(folder: Path) -> Notebook:
    """The notebook a build folder was made from; refused when it is gone or has changed since,
    since the exported tasks would run code the notebook no longer holds."""
    from nbops.model.notebook import load_notebook

    manifest = read_build(folder)
    path = Path(manifest["notebook"]["path"])
    if not path.is_file():
        raise ExportRefused(
            f"{folder} was built from {path}, which is not there (from this folder).",
            fix="Export the notebook itself, or run nbops from where the build was made.",
        )
    notebook = load_notebook(str(path))
    if notebook.sha256 != manifest["notebook"]["sha256"]:
        raise ExportRefused(
            f"{path} changed since {folder} was built.",
            fix=f"Build it again (`nbops build {path} -o {folder}`) or export the notebook.",
        )
    return notebook


def placeholder_image(folder: Path) -> str:
    """The image name used when none is given: plainly not pullable, so a run that was not
    told where the image lives fails at once, and the build it must come from is named."""
    manifest = read_build(folder)
    return f"<registry>/{manifest['name']}:{manifest['build_id']}"
