"""Fixtures for the tests generated from the test cells of churn.ipynb.

`artifacts` maps "<step>.<name>" to the value that step made, loaded on first use from the
artifact store that tests/artifacts.json indexes: the build's artifacts/ folder, or $NBOPS_STORE.
`parameters` holds the parameter values of the run that made them: tests/parameters.json when
the build wrote one, else the defaults in pipeline/parameters.py.

Generated from churn.ipynb by nbops 0.1.0; edit the notebook, not this file.
"""

import json
import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
INDEX = Path(__file__).resolve().parent / "artifacts.json"
RUN_PARAMETERS = Path(__file__).resolve().parent / "parameters.json"

# The tests import the generated package as `pipeline`, which sits in the build's root folder.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


class Artifacts(Mapping[str, Any]):
    """Artifacts by "<step>.<name>", each loaded from the store when a test first reads it."""

    def __init__(self, index: Mapping[str, Mapping[str, str]], root: Path) -> None:
        from pipeline.store import ArtifactStore

        self._index = index
        self._store = ArtifactStore(root)
        self._loaded: dict[str, Any] = {}

    def __getitem__(self, key: str) -> Any:
        if key not in self._loaded:
            if key not in self._index:
                raise KeyError(f"{key!r} is not in {INDEX}; rebuild so the run records it")
            entry = self._index[key]
            self._loaded[key] = self._store.get(entry["sha256"], entry["format"])
        return self._loaded[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)


@pytest.fixture(scope="session")
def artifact_index() -> dict[str, dict[str, str]]:
    if not INDEX.is_file():
        pytest.fail(f"{INDEX} is missing; `nbops build` writes it when it runs the pipeline.")
    index: dict[str, dict[str, str]] = json.loads(INDEX.read_text(encoding="utf-8"))
    return index


@pytest.fixture
def artifacts(artifact_index: dict[str, dict[str, str]]) -> Artifacts:
    """A fresh view for each test, so a test that changes a value leaves the next one alone."""
    root = Path(os.environ.get("NBOPS_STORE", ROOT / "artifacts"))
    return Artifacts(artifact_index, root)


@pytest.fixture(scope="session")
def parameters() -> dict[str, Any]:
    """The parameters the artifacts were made with: test cells compare values against them."""
    from pipeline.parameters import PARAMETERS

    if not RUN_PARAMETERS.is_file():
        return dict(PARAMETERS)
    return {**PARAMETERS, **json.loads(RUN_PARAMETERS.read_text(encoding="utf-8"))}
