"""Fixtures for the tests generated from the test cells of regression.ipynb.

`artifacts` maps "<step>.<name>" to the value that step made, loaded on first use from the
artifact stores that tests/artifacts.json indexes: the build's artifacts/ folder (what the
service reads) and tests/artifacts/ (what only the tests read), or $NBOPS_STORE.
`parameters` holds the parameter values of the run that made them: tests/parameters.json when
the build wrote one, else the defaults in pipeline/parameters.py.

Generated from regression.ipynb by nbops 0.1.0; edit the notebook, not this file.
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

    def __init__(self, index: Mapping[str, Mapping[str, str]], roots: list[Path]) -> None:
        from pipeline.store import ArtifactStore

        self._index = index
        self._stores = [ArtifactStore(root) for root in roots]
        self._loaded: dict[str, Any] = {}

    def __getitem__(self, key: str) -> Any:
        if key not in self._loaded:
            if key not in self._index:
                raise KeyError(f"{key!r} is not in {INDEX}; rebuild so the run records it")
            sha256, fmt = self._index[key]["sha256"], self._index[key]["format"]
            store = next((s for s in self._stores if s.has(sha256, fmt)), self._stores[0])
            self._loaded[key] = store.get(sha256, fmt)
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
    if "NBOPS_STORE" in os.environ:
        return Artifacts(artifact_index, [Path(os.environ["NBOPS_STORE"])])
    return Artifacts(artifact_index, [ROOT / "artifacts", ROOT / "tests" / "artifacts"])


@pytest.fixture(scope="session")
def parameters() -> dict[str, Any]:
    """The parameters the artifacts were made with: test cells compare values against them."""
    from pipeline.parameters import PARAMETERS

    if not RUN_PARAMETERS.is_file():
        return dict(PARAMETERS)
    return {**PARAMETERS, **json.loads(RUN_PARAMETERS.read_text(encoding="utf-8"))}
