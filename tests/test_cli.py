"""The command line's edges, through the real CLI (click's runner: output piped, not a terminal)."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from builders import notebook_json
from click.testing import CliRunner, Result

from nbops.cli import cli
from nbops.cli.terminal import lineage_tree, show
from nbops.errors import ParameterError
from nbops.model.analysis import analyse
from nbops.model.notebook import load_notebook
from nbops.model.parameters import parse_overrides

LONG = "a_very_long_artifact_name_that_goes_on_and_on"
LONG_STEP = "load_the_customers_from_the_warehouse_and_clean_them"
SPINNER = re.compile("[\u2800-\u28ff]")  # the braille frames of Rich's spinners
ANSI = "\x1b["

SMALL = [
    ("max_depth = 3  # depth of the trees", ["parameters"]),
    (f"{LONG}_1 = [1, 2]\n{LONG}_2 = [3]", [f"step:{LONG_STEP}"]),
    (f"total = sum({LONG}_1 + {LONG}_2) * (max_depth or 1)", ["step:fit"]),
    ("assert total > 0, 'a total, at least'", ["test"]),
    ("total_value = float(total)", ["metrics"]),
]
FAILING = [
    *SMALL[:2],
    ("raise ValueError('no total today')", ["step:fit"]),
    ("x = 1", ["step:last"]),
]


@pytest.fixture
def nbops(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """`nbops ARGS...` in tmp_path with its own .nbops, as the CLI runs it, output piped."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NBOPS_HOME", str(tmp_path / ".nbops"))
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLUMNS"):
        monkeypatch.delenv(name, raising=False)

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(cli, list(args))

    return invoke


def write(folder: Path, cells: list[Any], name: str = "small.ipynb") -> Path:
    path = folder / name
    path.write_text(json.dumps(notebook_json(cells)))
    return path


# nbops runs show


def test_runs_show_shows_the_run_it_names(nbops: Any, tmp_path: Path) -> None:
    done = nbops("run", str(write(tmp_path, SMALL)), "--format", "json")
    run_id = json.loads(done.stdout)["run_id"]
    shown = nbops("runs", "show", run_id, "--format", "json")
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["run_id"] == run_id
    text = nbops("runs", "show", run_id)
    assert text.exit_code == 0, text.output
    lines = text.stdout.splitlines()
    assert lines[0].startswith(f"run {run_id} succeeded: 2 ran, 0 cached, ")
    assert lines[-1] == "parameters: max_depth=3"
    listed = nbops("runs", "small.ipynb", "--format", "json")
    assert [r["run_id"] for r in json.loads(listed.stdout)] == [run_id]
    assert [r["run_id"] for r in json.loads(nbops("runs", "--format", "json").stdout)] == [run_id]


def test_runs_show_of_an_unknown_run_is_one_error_line(nbops: Any) -> None:
    done = nbops("runs", "show", "20260101-000000-abcdef")
    assert done.exit_code == 2
    assert done.stderr == (
        "error: no run '20260101-000000-abcdef' is recorded. `nbops runs` lists them.\n"
    )


# piped output: no spinners, no colours, nothing cut


def test_piped_run_output_has_no_spinner_frames_or_colours(nbops: Any, tmp_path: Path) -> None:
    done = nbops("run", str(write(tmp_path, FAILING)))
    assert done.exit_code == 1
    assert not SPINNER.search(done.output), done.output
    assert ANSI not in done.output
    # The two steps are independent: they run side by side, and end in either order.
    ended = {line.split()[0]: line.split()[1:] for line in done.stdout.splitlines()}
    assert ended[LONG_STEP] == ["ran", "in", ended[LONG_STEP][-1]]
    assert ended["fit"] == ["failed"]
    assert done.stderr.startswith(
        "error: small.ipynb cell 2 [step:fit] line 1: ValueError: no total today\n"
    )


def test_a_piped_runs_table_keeps_whole_ids_and_values(nbops: Any, tmp_path: Path) -> None:
    notebook = write(tmp_path, SMALL, name="a_notebook_with_a_rather_long_name_for_its_table.ipynb")
    ids = [json.loads(nbops("run", str(notebook), "--format", "json").stdout)["run_id"]]
    ids.append(json.loads(nbops("run", str(notebook), "--format", "json").stdout)["run_id"])
    done = nbops("runs")
    assert done.exit_code == 0
    header, *rows = done.stdout.splitlines()
    assert header.split()[-1] == "total_value"  # a column per metric
    assert [row.split()[0] for row in rows] == ids[::-1]
    for row in rows:
        assert row.split()[1:3] == [notebook.name, "succeeded"]
        assert row.split()[-1] == "18"
    assert "…" not in done.stdout and ANSI not in done.stdout


def test_a_piped_history_table_keeps_whole_reasons(
    nbops: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nbops.cli.terminal import history_table

    reason = "smoke request POST /predict {} answered 500: " + "a long reason " * 12
    row = {
        "version": 3,
        "current": False,
        "status": "failed",
        "build_id": "0123456789abcdef",
        "created_at": 1_800_000_000.0,
        "started_by": "someone@somewhere via cli",
        "reason": reason.strip(),
    }
    text = printed(history_table("model", [row]), monkeypatch)
    assert reason.strip() in text
    assert "0123456789abcdef" in text and "…" not in text


def printed(renderable: Any, monkeypatch: pytest.MonkeyPatch, terminal_width: int = 0) -> str:
    """What `show` writes for the renderable: piped, or to a terminal of the given width."""
    from nbops.cli.terminal import console

    if terminal_width:
        monkeypatch.setenv("TTY_COMPATIBLE", "1")  # Rich's switch: treat the file as a terminal
        monkeypatch.setenv("COLUMNS", str(terminal_width))
    stream = io.StringIO()
    show(console(file=stream), renderable)
    return stream.getvalue()


# the lineage tree


def test_a_piped_lineage_tree_shows_whole_names(nbops: Any, tmp_path: Path) -> None:
    done = nbops("lineage", str(write(tmp_path, SMALL)))
    assert done.exit_code == 0
    assert done.stdout.splitlines()[3:9] == [
        "├── steps",
        f"│   ├── {LONG_STEP} cell 1",
        f"│   │   └── → {LONG}_1, {LONG}_2",
        "│   └── fit cell 2",
        f"│       ├── ← {LONG}_1, {LONG}_2 from {LONG_STEP}",
        "│       ├── parameters: max_depth",
    ]


def test_on_a_narrow_terminal_the_lineage_tree_wraps_names_instead_of_cutting_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = analyse(load_notebook(write(tmp_path, SMALL)))
    text = printed(lineage_tree(pipeline), monkeypatch, terminal_width=40)
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in text.splitlines()]
    assert all(len(line) <= 40 for line in lines)
    joined = "".join(line.strip(" │├└─←→") for line in lines)
    assert f"{LONG}_1,{LONG}_2from{LONG_STEP}" in joined.replace(" ", "")


# -p NAME=None


def test_none_is_accepted_for_a_parameter_with_a_literal_default(
    nbops: Any, tmp_path: Path
) -> None:
    done = nbops("run", str(write(tmp_path, SMALL)), "-p", "max_depth=None", "--format", "json")
    assert done.exit_code == 0, done.output
    record = json.loads(done.stdout)
    assert record["parameters"] == {"max_depth": None}
    assert record["metrics"] == {"total_value": 6.0}


def test_a_value_of_another_type_is_still_refused(tmp_path: Path) -> None:
    pipeline = analyse(load_notebook(write(tmp_path, SMALL)))
    assert parse_overrides(("max_depth=None",), pipeline.parameters) == {"max_depth": None}
    with pytest.raises(ParameterError) as refused:
        parse_overrides(("max_depth=deep",), pipeline.parameters)
    assert str(refused.value) == (
        "parameter 'max_depth' is int (default 3), and 'deep' is not. "
        "Pass an int (or None), e.g. -p max_depth=3."
    )
