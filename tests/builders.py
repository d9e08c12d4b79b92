"""Tiny notebooks built in code, one per behaviour, so each test shows the cells it is about."""

from __future__ import annotations

from typing import Any

from nbops.model.analysis import analyse
from nbops.model.notebook import Notebook, notebook_from_dict
from nbops.model.pipeline import Pipeline

Cell = tuple[str, list[str]] | str


def notebook_json(cells: list[Cell], *, language: str = "python") -> dict[str, Any]:
    """A 4.5 notebook; each cell is `source` or `(source, tags)`; `# md ...` is markdown."""
    built = []
    for index, cell in enumerate(cells):
        source, tags = (cell, []) if isinstance(cell, str) else cell
        metadata: dict[str, Any] = {"tags": tags} if tags else {}
        if source.startswith("# md "):
            built.append(
                {"cell_type": "markdown", "id": f"c{index}", "metadata": metadata, "source": source}
            )
            continue
        built.append(
            {
                "cell_type": "code",
                "id": f"c{index}",
                "metadata": metadata,
                "source": source,
                "outputs": [],
                "execution_count": None,
            }
        )
    return {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": language}
        },
        "cells": built,
    }


def notebook(cells: list[Cell], path: str = "nb.ipynb") -> Notebook:
    return notebook_from_dict(notebook_json(cells), path)


def pipeline(cells: list[Cell]) -> Pipeline:
    return analyse(notebook(cells))


def messages(p: Pipeline) -> list[str]:
    """Each diagnostic as `cell N line L: message | fix`, the way assertions read best."""
    return [
        f"{d.severity.value} cell {d.cell_index} line {d.line}: {d.message} | {d.fix}"
        for d in p.diagnostics
    ]
