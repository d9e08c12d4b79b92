"""Values put into `!cmd {x}` lines: a parameter there is a warning, since `-p` and the REST
API come from others than the notebook's author."""

from __future__ import annotations

import pytest
from builders import messages, pipeline

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
