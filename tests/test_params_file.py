"""`--params-file params.yaml` next to `-p` for every command that makes one run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from builders import notebook_json

NBOPS = str(Path(sys.executable).parent / "nbops")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    cells = [
        ("factor = 2\nlabel = 'a'", ["parameters"]),
        ("scale = factor * 3", ["step:fit"]),
        ("score = float(scale)", ["metrics"]),
    ]
    (tmp_path / "model.ipynb").write_text(json.dumps(notebook_json(cells)))
    (tmp_path / "params.yaml").write_text("factor: 5\nlabel: from the file\n")
    return tmp_path


def _nbops(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [NBOPS, *args],
        cwd=root,
        env={**os.environ, "NBOPS_HOME": str(root / ".nbops")},
        capture_output=True,
        text=True,
        check=False,
    )


def test_build_takes_the_file_and_a_p_wins_over_it(project: Path) -> None:
    built = _nbops(project, "build", "model.ipynb", "--params-file", "params.yaml", "-o", "b")
    overridden = _nbops(
        project, "build", "model.ipynb", "--params-file", "params.yaml", "-p", "factor=7", "-o", "c"
    )

    assert built.returncode == 0, built.stderr
    assert json.loads((project / "b" / "nbops.json").read_text())["parameters"] == {
        "factor": 5,
        "label": "from the file",
    }
    assert overridden.returncode == 0, overridden.stderr
    assert json.loads((project / "c" / "nbops.json").read_text())["metrics"] == {"score": 21.0}


def test_test_takes_the_file(project: Path) -> None:
    done = _nbops(
        project, "test", "model.ipynb", "--params-file", "params.yaml", "--require", "score>=15"
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_file_naming_no_parameter_is_a_clear_error(project: Path) -> None:
    (project / "bad.yaml").write_text("factr: 5\n")
    done = _nbops(project, "build", "model.ipynb", "--params-file", "bad.yaml")

    assert done.returncode == 2
    assert "no parameter 'factr'" in done.stderr and "Did you mean 'factor'?" in done.stderr
    assert "Traceback" not in done.stderr
