"""The store checks every object against its sha256 before it deserialises it: a swapped pickle
is refused and recomputed, never run; a damaged object is rewritten."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from builders import notebook_json

from nbops.run.store import ArtifactStore, CorruptArtifact

NBOPS = str(Path(sys.executable).parent / "nbops")
CELLS = [
    ("numbers = {'a': [1, 2, 3]}", ["step:load"]),
    ("total = sum(numbers['a'])", ["step:add"]),
    ("total", ["metrics"]),
]


class Payload:
    """Unpickling this writes a file: what a crafted pickle in the store would do."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path(self.marker).write_text, ("the payload ran",))


def nbops(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NBOPS_HOME": str(home)}
    return subprocess.run([NBOPS, *args], capture_output=True, text=True, env=env, check=False)


def run_json(notebook: Path, home: Path, *extra: str) -> dict[str, Any]:
    done = nbops("run", str(notebook), "--format", "json", *extra, home=home)
    assert done.returncode == 0, done.stderr
    loaded: dict[str, Any] = json.loads(done.stdout)
    return loaded


@pytest.fixture
def notebook(tmp_path: Path) -> Path:
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps(notebook_json(CELLS)))
    return path


def stored_file(home: Path, record: dict[str, Any], step: str, name: str) -> Path:
    digest = next(s for s in record["steps"] if s["name"] == step)["outputs"][name]
    (path,) = (home / "artifacts" / digest[:2]).glob(f"{digest}.*")
    return path


def test_a_swapped_pickle_is_refused_and_recomputed_and_never_runs(
    tmp_path: Path, notebook: Path
) -> None:
    home = tmp_path / ".nbops"
    first = run_json(notebook, home)
    target = stored_file(home, first, "load", "numbers")
    marker = tmp_path / "pwned"
    target.write_bytes(pickle.dumps(Payload(str(marker))))
    again = run_json(notebook, home)
    assert not marker.exists()
    assert again["metrics"] == {"total": 6.0}
    load = next(s for s in again["steps"] if s["name"] == "load")
    assert load["status"] == "ran"
    assert load["note"] == "re-ran: the stored load.numbers was missing or did not match its sha256"
    assert hashlib.sha256(target.read_bytes()).hexdigest() == target.name.split(".")[0]


def test_a_damaged_object_is_rewritten_by_a_forced_run(tmp_path: Path, notebook: Path) -> None:
    home = tmp_path / ".nbops"
    first = run_json(notebook, home)
    target = stored_file(home, first, "add", "total")
    target.write_bytes(target.read_bytes()[:3])
    forced = run_json(notebook, home, "--force")
    assert forced["metrics"] == {"total": 6.0}
    assert hashlib.sha256(target.read_bytes()).hexdigest() == target.name.split(".")[0]


def test_get_refuses_bytes_that_do_not_match_and_put_repairs_them(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    digest, fmt = store.put([1, 2, 3])
    path = store.path(digest, fmt)
    marker = tmp_path / "pwned"
    path.write_bytes(pickle.dumps(Payload(str(marker))))
    assert not store.has(digest, fmt)
    with pytest.raises(CorruptArtifact, match="does not match its sha256"):
        store.get(digest, fmt)
    assert not marker.exists()
    assert store.put([1, 2, 3]) == (digest, fmt)
    assert store.get(digest, fmt) == [1, 2, 3]
