"""What `load_notebook` refuses before reading a byte: pipes, folders, overlong names, and files
larger than the limit; and a full disk or file-size limit during a run is one clear error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from builders import notebook_json

from nbops.errors import NotebookNotFound, NotebookTooLarge
from nbops.model.notebook import load_notebook

NBOPS = str(Path(sys.executable).parent / "nbops")


def test_a_pipe_is_not_called_a_folder(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.ipynb"
    os.mkfifo(fifo)
    with pytest.raises(NotebookNotFound) as error:
        load_notebook(fifo)  # must not block reading the pipe
    assert error.value.render() == (
        f"{fifo}: is not a regular file (a pipe, a device or a socket), not a notebook. "
        "Check the path; nbops takes the path of an .ipynb file."
    )


def test_a_folder_and_an_overlong_name_are_clear(tmp_path: Path) -> None:
    with pytest.raises(NotebookNotFound, match="is a folder, not a notebook"):
        load_notebook(tmp_path)
    with pytest.raises(NotebookNotFound, match="cannot be read: File name too long"):
        load_notebook(tmp_path / ("n" * 300 + ".ipynb"))


def test_a_notebook_over_the_limit_is_refused_without_reading_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    huge = tmp_path / "huge.ipynb"
    with open(huge, "wb") as handle:
        handle.truncate(300_000_000)  # sparse: 300 MB that cost nothing to make
    with pytest.raises(NotebookTooLarge) as error:
        load_notebook(huge)
    assert error.value.render() == (
        f"{huge}: is 300 MB; nbops reads notebooks up to 100 MB. Outputs make notebooks large: "
        "clear them (jupyter nbconvert --clear-output --inplace NOTEBOOK), or raise the limit "
        "with NBOPS_MAX_NOTEBOOK_MB."
    )
    monkeypatch.setenv("NBOPS_MAX_NOTEBOOK_MB", "0.0001")
    small = tmp_path / "small.ipynb"
    small.write_text(json.dumps(notebook_json([("x = 1", ["step:a"])])))
    with pytest.raises(NotebookTooLarge):
        load_notebook(small)


def test_a_file_size_limit_during_a_run_is_one_error_with_the_fix(tmp_path: Path) -> None:
    notebook = tmp_path / "big.ipynb"
    cells = [
        ("import numpy as np", ["setup"]),
        ("values = np.arange(2_000_000, dtype='float64')", ["step:make"]),
        ("total = float(values.sum())", ["metrics"]),
    ]
    notebook.write_text(json.dumps(notebook_json(cells)))
    home = tmp_path / ".nbops"
    env = {**os.environ, "NBOPS_HOME": str(home)}
    command = f"ulimit -f 2048; exec {NBOPS} run {notebook}"  # 2 MB; the array is 16 MB
    done = subprocess.run(
        ["bash", "-c", command], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "step 'make' output 'values' could not be written to the store: File too large." in (
        done.stderr
    )
    assert "raise the file-size limit (ulimit -f)" in done.stderr
    assert not list((home / "artifacts").rglob("*.tmp"))  # nothing half-written left
