"""Exports from the REST API: `nbops export NOTEBOOK --to NAME` as a job, written next to the
notebook.

What refuses an export (an unknown or unavailable exporter, analysis errors, kfp without a
store) is checked before the job exists, so the caller gets the error in its answer. The job
builds the notebook into `<root>/build/<name>` as a deploy does (running it, cached), then asks
the exporter to write.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbops.lab.server.jobs import JobRegistry
from nbops.lab.server.operations import notebook_key, runnable, step_executor
from nbops.lab.server.progress import Job, Outcome, Progress
from nbops.lab.server.reconcile import Footprint
from nbops.run.home import Home


@dataclass(frozen=True)
class ExportSpec:
    """An export job's request, plain data: its child process analyses the notebook again."""

    notebook: Path
    label: str
    home: Home
    root: Path
    to: str
    store: str | None
    image: str | None
    build: Path
    out: Path


def exporters() -> list[dict[str, Any]]:
    """Every installed exporter, with whether it can be used here and why not."""
    from nbops.build.exporters import installed
    from nbops.build.exporters.exporting import exporter_info

    return [exporter_info(found) for found in installed().values()]


def start_export(
    registry: JobRegistry,
    notebook: Path,
    label: str,
    *,
    home: Home,
    root: Path,
    to: str,
    store: str | None = None,
    image: str | None = None,
) -> Job:
    """`nbops export NOTEBOOK --to NAME -o <next to it>` as a job; its result names the files."""
    from nbops.build.exporters import exporter
    from nbops.build.exporters.exporting import check_before_build, default_output

    check_before_build(exporter(to), store=store)
    pipeline = runnable(notebook, label, home)
    build = home.root.parent / "build" / pipeline.notebook.name  # where a deploy builds it
    out = default_output(to, notebook)
    spec = ExportSpec(notebook, label, home, root, to, store, image, build, out)
    return registry.submit(
        "export",
        label,
        functools.partial(export_work, spec),
        steps=[s.name for s in pipeline.steps],
        keys=(notebook_key(pipeline),),
        footprint=Footprint(str(home.root), pipeline.notebook.path),
    )


def export_work(spec: ExportSpec, job: Progress) -> Outcome:
    """An export job's work, in its child process: build (run cached), then export."""
    from nbops.build import builder
    from nbops.build.exporters import ExportRequest, exporter, placeholder_image

    chosen = exporter(spec.to)
    pipeline = runnable(spec.notebook, spec.label, spec.home)
    job.on_stage("building", f"running and building {spec.label}")
    with step_executor() as executor:
        builder.build(
            pipeline, out=spec.build, home=spec.home, listener=job.on_step, executor=executor
        )
    job.on_stage("exporting", f"writing the {chosen.name} export next to {spec.label}")
    request = ExportRequest(pipeline, spec.build, spec.out, image=spec.image, store=spec.store)
    written = chosen.export(request)
    paths = [api_path(path, spec.root) for path in written]
    job.add_log("\n".join(f"wrote {path}" for path in paths))
    image = spec.image or placeholder_image(spec.build)
    result = {"exporter": chosen.name, "paths": paths, "build": api_path(spec.build, spec.root)}
    return Outcome(True, {**result, "image": image, "image_placeholder": spec.image is None})


def api_path(path: Path, root: Path) -> str:
    """A path the server wrote, as the API names files: relative to its root, with `/`."""
    return path.resolve().relative_to(root.resolve()).as_posix()
