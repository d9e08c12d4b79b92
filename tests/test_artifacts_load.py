"""`from nbops import artifacts; artifacts.load("model")`: stored values back in a script or a
notebook, from the latest successful run or a named one, checked as the runner reads them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from builders import notebook_json

from nbops.errors import AmbiguousRun
from nbops.run.artifacts import ArtifactNotFound

NBOPS = str(Path(sys.executable).parent / "nbops")


def _notebook(path: Path, factor: int) -> None:
    cells = [
        (f"factor = {factor}", ["parameters"]),
        ("import pandas as pd", ["setup"]),
        ("frame = pd.DataFrame({'x': [1, 2, 3]}) * factor", ["step:load"]),
        ("scale = int(frame['x'].sum())", ["step:fit"]),
        ("total = float(scale)", ["metrics"]),  # a value is stored when something reads it
    ]
    path.write_text(json.dumps(notebook_json(cells)))


def _run(root: Path, notebook: str, *args: str) -> str:
    done = subprocess.run(
        [NBOPS, "run", notebook, "--executor", "inline", "--format", "json", *args],
        cwd=root,
        env={**os.environ, "NBOPS_HOME": str(root / ".nbops")},
        capture_output=True,
        text=True,
        check=True,
    )
    run_id: str = json.loads(done.stdout)["run_id"]
    return run_id


def _load(root: Path, code: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`code` in a fresh Python process in `root`, as a user's script would run it."""
    script = "from nbops import artifacts\n" + code
    environment = {k: v for k, v in os.environ.items() if k not in ("NBOPS_HOME", "NBOPS_STORE")}
    environment.pop("JPY_SESSION_NAME", None)
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=root,
        env={**environment, **env},
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    _notebook(tmp_path / "model.ipynb", 2)
    return tmp_path


def test_the_latest_successful_run_of_the_only_notebook_is_loaded(project: Path) -> None:
    _run(project, "model.ipynb")
    _run(project, "model.ipynb", "-p", "factor=5")

    done = _load(
        project, "print(artifacts.load('scale'), artifacts.load('load.frame')['x'].tolist())"
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[0] == "30 [5, 10, 15]"


def test_a_named_run_and_a_dataframe_in_process(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _run(project, "model.ipynb")
    _run(project, "model.ipynb", "-p", "factor=5")
    monkeypatch.chdir(project)
    monkeypatch.delenv("NBOPS_HOME", raising=False)
    monkeypatch.delenv("NBOPS_STORE", raising=False)
    from nbops import artifacts

    assert artifacts.load("scale", run=first) == 12
    frame = artifacts.load("frame", run=first[:-1])  # a prefix (run ids end in random hex)
    assert isinstance(frame, pd.DataFrame) and frame["x"].tolist() == [2, 4, 6]
    # Both runs' ids begin with the date: a prefix of both names neither.
    with pytest.raises(AmbiguousRun, match=r"^'2' begins the ids of 2 runs \(\d{8}-"):
        artifacts.load("frame", run="2")


def test_the_kernels_notebook_is_the_one_jupyter_names(project: Path) -> None:
    _notebook(project / "other.ipynb", 7)
    _run(project, "model.ipynb")
    _run(project, "other.ipynb")

    ambiguous = _load(project, "artifacts.load('scale')")
    named = _load(project, "print(artifacts.load('scale'))", JPY_SESSION_NAME="work/other.ipynb")
    given = _load(project, "print(artifacts.load('scale', notebook='model.ipynb'))")

    assert ambiguous.returncode == 1
    assert (
        "which notebook's run?" in ambiguous.stderr
        and "model.ipynb, other.ipynb" in ambiguous.stderr
    )
    assert named.stdout.strip() == "42"
    assert given.stdout.strip() == "12"


def test_an_unknown_name_says_what_the_run_stored(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = _run(project, "model.ipynb")
    monkeypatch.chdir(project)
    monkeypatch.delenv("NBOPS_HOME", raising=False)
    from nbops import artifacts

    with pytest.raises(ArtifactNotFound) as caught:
        artifacts.load("scal")
    assert caught.value.fix.startswith("Did you mean 'scale'? It stored: fit.scale, load.frame ")
    assert f"run {run_id} of model.ipynb stored no 'scal'" in str(caught.value)
    with pytest.raises(ArtifactNotFound, match="no run 'nope'"):
        artifacts.load("scale", run="nope")
