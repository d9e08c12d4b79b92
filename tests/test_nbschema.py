"""Schema checks without importing nbformat: right answers, a compiled cache, no slow import."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from builders import notebook_json

from nbops.model import nbschema

CHURN = Path(__file__).parent.parent / "example_notebooks" / "churn.ipynb"


@pytest.fixture
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    nbschema._validator.cache_clear()
    yield tmp_path
    nbschema._validator.cache_clear()


def test_a_valid_notebook_passes_and_a_broken_one_does_not(cache_home: Path) -> None:
    data = notebook_json([("a = 1", ["step:s"])])
    assert nbschema.is_valid_v4(data, 5) is True
    del data["cells"][0]["outputs"]
    assert nbschema.is_valid_v4(data, 5) is False
    assert nbschema.is_valid_v4(data, 99) is None  # no such schema: nbformat decides


def test_the_compiled_schema_is_cached(cache_home: Path) -> None:
    nbschema.is_valid_v4(notebook_json(["a = 1"]), 5)
    (cached,) = (cache_home / "nbops").glob("nbformat-v4.5-*.marshal")
    nbschema._validator.cache_clear()
    before = cached.stat().st_mtime_ns
    assert nbschema.is_valid_v4(notebook_json(["a = 1"]), 5) is True
    assert cached.stat().st_mtime_ns == before


def test_reading_a_valid_notebook_does_not_import_nbformat() -> None:
    """Next to jupyter_server, `import nbformat` costs over a second on every command."""
    code = (
        "import sys; from nbops.model.notebook import load_notebook; "
        f"load_notebook({str(CHURN)!r}); print('nbformat' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ
    )
    assert json.loads(done.stdout.strip().lower()) is False
