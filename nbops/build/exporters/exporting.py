"""What `nbops export` and the Jupyter server share: what an exporter can do here, the checks
made before anything is built, where an export goes by default, and the pipeline of a build."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nbops.build.exporters import Exporter, UnloadableExporter, built_notebook
from nbops.model.pipeline import Pipeline

# Where an export of NOTEBOOK goes when no -o is given, beside the notebook: kfp writes one
# YAML file; airflow writes a folder Airflow reads as its dags folder; others a folder.
DEFAULT_OUTPUTS = {"kfp": "{stem}.kfp.yaml", "airflow": "dags"}
OTHER_OUTPUT = "{stem}.{name}"


def unavailable_reason(exporter: Exporter) -> str | None:
    """Why the exporter cannot be used here (None when it can): a plugin that fails to
    import, or its engine's SDK missing, with the pip extra that brings it."""
    if isinstance(exporter, UnloadableExporter):
        return exporter.description
    if exporter.available():
        return None
    if exporter.extra:
        return f"needs {exporter.description}: pip install 'nbops[{exporter.extra}]'"
    return "unavailable"


def exporter_info(exporter: Exporter) -> dict[str, Any]:
    """One exporter as `nbops export --list` and GET /nbops/api/exporters describe it."""
    reason = unavailable_reason(exporter)
    return {
        "name": exporter.name,
        "description": exporter.description,
        "extra": exporter.extra or None,
        "available": reason is None,
        "reason": reason,
    }


def check_before_build(exporter: Exporter, *, store: str | None) -> None:
    """Refuse at once what the exporter would refuse after the build (which runs the notebook),
    so a caller hears it before waiting: Kubeflow's tasks share nothing but a bucket."""
    if exporter.name == "kfp":
        from nbops.build.exporters.kfp import require_store

        require_store(store)


def default_output(exporter: str, notebook: Path) -> Path:
    """Where an export of `notebook` goes when no output is named: next to the notebook."""
    stem = notebook.name.removesuffix(".ipynb")
    pattern = DEFAULT_OUTPUTS.get(exporter, OTHER_OUTPUT)
    return notebook.parent / pattern.format(stem=stem, name=exporter)


def pipeline_of_build(folder: Path) -> Pipeline:
    """The analysed pipeline of a build folder's notebook, refused with its first error."""
    from nbops.run.home import analyse_with_runs

    pipeline = analyse_with_runs(built_notebook(folder))
    pipeline.raise_for_errors()
    return pipeline
