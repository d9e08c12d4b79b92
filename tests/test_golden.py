"""Golden files: the code generated for each example notebook, pinned file by file.

tests/golden/<example>/ holds exactly what `render_pipeline`, `render_tests` and `render_service`
return for example_notebooks/<example>.ipynb, laid out as in a build, except the verbatim copies
of nbops/run/store.py, capture.py and metric_values.py (in pipeline/) and nbops/build/profile.py
(in service/), checked on their own. After an intended
change to the templates or to codegen, rewrite the golden files with

    NBOPS_UPDATE_GOLDEN=1 pytest tests/test_golden.py

and review the diff by eye before committing: this is code people read and keep.
"""

from __future__ import annotations

import ast
import difflib
import os
import shutil
import sys
from pathlib import Path

import pytest

from nbops.build.codegen import render_pipeline, render_tests
from nbops.build.service import SERVICE_COPIES, render_service
from nbops.model.analysis import analyse
from nbops.model.notebook import load_notebook
from nbops.run import capture, metric_values, store

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden"
EXAMPLES = ("churn", "kale_dialect", "regression")
VERBATIM = {f"pipeline/{Path(str(m.__file__)).name}": m for m in (capture, metric_values, store)}
VERBATIM |= SERVICE_COPIES
UPDATE = os.environ.get("NBOPS_UPDATE_GOLDEN") == "1"


def rendered(example: str) -> dict[str, str]:
    pipeline = analyse(load_notebook(ROOT / "example_notebooks" / f"{example}.ipynb"))
    files = {**render_pipeline(pipeline), **render_tests(pipeline), **render_service(pipeline)}
    return {path: text for path, text in files.items() if path not in VERBATIM}


def golden_files(folder: Path) -> dict[str, str]:
    """The pinned files; caches that ruff or Python leave beside them are not."""
    return {
        path.relative_to(folder).as_posix(): path.read_text(encoding="utf-8")
        for path in sorted(folder.rglob("*"))
        if path.is_file()
        and not any(p.startswith(".") or p == "__pycache__" for p in path.relative_to(folder).parts)
    }


def rewrite(folder: Path, files: dict[str, str]) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    for relative, text in files.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


@pytest.mark.parametrize("example", EXAMPLES)
def test_generated_code_matches_the_golden_files(example: str) -> None:
    files = rendered(example)
    folder = GOLDEN / example
    if UPDATE:
        rewrite(folder, files)
    pinned = golden_files(folder)
    hint = "If the change is intended, run NBOPS_UPDATE_GOLDEN=1 pytest tests/test_golden.py."
    assert sorted(files) == sorted(pinned), f"the generated files differ. {hint}"
    for relative, text in files.items():
        if text != pinned[relative]:
            diff = "".join(
                difflib.unified_diff(
                    pinned[relative].splitlines(keepends=True),
                    text.splitlines(keepends=True),
                    f"golden/{example}/{relative}",
                    "generated",
                )
            )
            pytest.fail(f"{relative} differs from its golden file. {hint}\n{diff}")


@pytest.mark.parametrize("example", ("churn", "regression"))  # the examples that serve
@pytest.mark.parametrize("path", sorted(VERBATIM))
def test_the_shared_modules_are_copied_into_the_build_verbatim(example: str, path: str) -> None:
    pipeline = analyse(load_notebook(ROOT / "example_notebooks" / f"{example}.ipynb"))
    copied = {**render_pipeline(pipeline), **render_service(pipeline)}[path]
    assert copied == Path(str(VERBATIM[path].__file__)).read_text(encoding="utf-8")
    # The build runs without nbops installed, so the copy must not import it, nor anything but
    # the standard library before it is called.
    imported = [
        alias.name if isinstance(node, ast.Import) else node.module or ""
        for node in ast.walk(ast.parse(copied))
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
    ]
    assert not [name for name in imported if name.split(".")[0] == "nbops"]
    top = [
        alias.name if isinstance(node, ast.Import) else node.module or ""
        for node in ast.parse(copied).body
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
    ]
    assert {name.split(".")[0] for name in top} <= sys.stdlib_module_names | {"__future__"}


def test_every_example_has_golden_files() -> None:
    folders = sorted(path.name for path in GOLDEN.iterdir() if path.is_dir())
    assert folders == sorted(EXAMPLES)
