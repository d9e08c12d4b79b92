"""Values put into `!cmd {x}` lines: a parameter there is a warning, since `-p` and the REST
API come from others than the notebook's author."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from builders import messages, notebook_json, pipeline

from nbops.model.plain_python import plain_python

NBOPS = str(Path(sys.executable).parent / "nbops")

PARAMETERS = ('label = "run"  # names the output\nrows = 10  # how many', ["parameters"])
WARNING = (
    "warning cell 1 line {line}: parameter {name!r} goes into a shell command here; a value "
    "given with -p or through the REST API could run other commands. | nbops quotes it in its "
    "own runs and builds, but Jupyter and papermill do not: pass it in the environment or use "
    "subprocess.run([...])."
)


@pytest.mark.parametrize(
    ("source", "name", "line"),
    [
        ("!echo {label}", "label", 1),
        ("x = 1\n!touch out-{label.upper()}.txt", "label", 2),
        ("files = !ls $label", "label", 1),
        ("!head -n {rows * 2} data.csv", "rows", 1),
    ],
)
def test_a_parameter_in_a_shell_line_is_a_warning(source: str, name: str, line: int) -> None:
    found = messages(pipeline([PARAMETERS, (source, ["step:go"]), ("done = 1", ["step:end"])]))
    assert WARNING.format(line=line, name=name) in found


@pytest.mark.parametrize("source", ["!echo $HOME {{label}}", "!echo done", "print(label)"])
def test_no_warning_without_a_parameter_in_a_shell_field(source: str) -> None:
    found = messages(pipeline([PARAMETERS, (source, ["step:go"])]))
    assert not any("shell command" in message for message in found)


def test_a_value_put_into_a_shell_line_stays_one_word_in_a_run(tmp_path: Path) -> None:
    notebook = tmp_path / "nb.ipynb"
    cells = [PARAMETERS, ("!echo made-{label}", ["step:go"]), ("done = 1", ["metrics"])]
    notebook.write_text(json.dumps(notebook_json(cells)))
    env = {**os.environ, "NBOPS_HOME": str(tmp_path / ".nbops")}
    done = subprocess.run(
        [NBOPS, "run", str(notebook), "-p", "label=x; touch injected", "--format", "json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "injected").exists()
    run_id = json.loads(done.stdout)["run_id"]
    log = (tmp_path / ".nbops" / "runs" / run_id / "go.log").read_text()
    assert log == "made-x; touch injected\n"


@pytest.mark.parametrize(
    ("source", "command"),
    [
        ("!echo {label}", 'f"echo {shlex.quote(str(label))}"'),
        ("!echo {x!r} {y:>5}", "f\"echo {shlex.quote(repr(x))} {shlex.quote(format(y, '>5'))}\""),
        ("files = !ls $folder", 'f"ls {shlex.quote(str(folder))}"'),
        ("!echo {{braces}} $HOME", '"echo {braces} $HOME"'),  # nothing of Python's in it
    ],
)
def test_generated_shell_lines_quote_each_value(source: str, command: str) -> None:
    plain = plain_python(source)
    assert command in plain.code
    assert (("shlex", None) in plain.imports) is ("shlex.quote" in command)
