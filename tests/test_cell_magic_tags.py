"""`#| nbops:` lines and cell magics: honoured together where Jupyter runs them, refused where
Jupyter would fail, so every face agrees."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from builders import messages, notebook_json, pipeline

from nbops.errors import StepFailed
from nbops.model.tags import option_line_tags
from nbops.run.home import Home
from nbops.run.runner import run_pipeline

NBOPS = str(Path(sys.executable).parent / "nbops")
MAGIC_FIRST = "%%time\n#| nbops: step:double\ndoubled = value * 2"
TAGS_FIRST = "#| nbops: step:double\n%%time\ndoubled = value * 2"


def cells(middle: str) -> list[tuple[str, list[str]] | str]:
    return [("value = 21", ["step:load"]), middle, ("doubled", ["metrics"])]


def test_a_tag_line_right_after_a_cell_magic_is_read() -> None:
    assert option_line_tags(MAGIC_FIRST) == (("step:double", 2),)
    p = pipeline(cells(MAGIC_FIRST))
    assert [s.name for s in p.steps] == ["load", "double"]
    assert messages(p) == []


def test_the_magic_first_cell_runs_with_its_own_line_numbers(tmp_path: Path) -> None:
    record = run_pipeline(pipeline(cells(MAGIC_FIRST)), home=Home(tmp_path / ".nbops"))
    assert record.metrics == {"doubled": 42.0}
    broken = MAGIC_FIRST.replace("value * 2", "value * 2\nraise ValueError('line 4')")
    with pytest.raises(StepFailed) as failure:
        run_pipeline(pipeline(cells(broken)), home=Home(tmp_path / ".nbops"))
    assert failure.value.where == "nb.ipynb cell 1 [step:double] line 4"


def test_a_cell_magic_below_a_tag_line_is_an_error_with_the_fix() -> None:
    assert messages(pipeline(cells(TAGS_FIRST))) == [
        "error cell 1 line 2: %%time comes after the '#| nbops:' line, but Jupyter runs a cell "
        "magic only on a cell's first line, so this cell fails in Jupyter and papermill. | "
        "Put %%time first and the '#| nbops:' line right below it; nbops reads it there too."
    ]


def test_run_and_check_refuse_it_the_same_way(tmp_path: Path) -> None:
    notebook = tmp_path / "nb.ipynb"
    notebook.write_text(json.dumps(notebook_json(cells(TAGS_FIRST))))
    env = {**os.environ, "NBOPS_HOME": str(tmp_path / ".nbops")}
    for command in ("check", "run"):
        done = subprocess.run(
            [NBOPS, command, str(notebook)], capture_output=True, text=True, env=env, check=False
        )
        assert done.returncode != 0
        assert "%%time comes after the '#| nbops:' line" in done.stdout + done.stderr
