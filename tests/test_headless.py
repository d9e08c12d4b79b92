"""`nbops test`: the prepared copy, and real papermill runs of tiny notebooks (no mocks)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import pytest
from builders import notebook_json
from click.testing import CliRunner, Result

from nbops.ci.prepared import METRICS_TAG, prepare_copy
from nbops.cli import cli
from nbops.model.analysis import analyse
from nbops.model.notebook import notebook_from_dict

# Cell 4 would stop the run if it ran; cell 3 reads a file next to the notebook (the run's cwd).
CELLS: list[Any] = [
    "A tiny model",
    ("n = 1  # rows", ["parameters"]),
    ("from pathlib import Path", ["setup"]),
    ("rows = [n] * n\nsource = Path('data.txt').read_text().strip()", ["step:load"]),
    ("raise RuntimeError('exploration must not run')", ["skip"]),
    ("accuracy = 0.5\nsize = len(rows)", ["metrics"]),
    ("assert source == 'hello'\nassert n == 3, 'n should be 3'", ["test"]),
    ("assert len(rows) == n", ["test:load"]),
]
PAPERMILL_MARKER = "papermill-error-cell-tag"
MakeNotebook = Callable[..., Path]  # the make_notebook fixture of tests/conftest.py


@pytest.fixture
def tiny(make_notebook: MakeNotebook) -> Path:
    path = make_notebook(CELLS)
    (path.parent / "data.txt").write_text("hello\n")
    return path


def nbops_test(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, ["test", *map(str, args)])


def lines(result: Result) -> list[str]:
    """stdout without the timing of the summary line, which varies."""
    return [re.sub(r"\(\d+\.\d s on", "(… on", line) for line in result.stdout.splitlines()]


@pytest.mark.slow
def test_parameters_are_injected_and_skip_cells_left_out(tiny: Path) -> None:
    before = tiny.read_bytes()
    result = nbops_test(tiny, "-p", "n=3", "--require", "accuracy>=0.5", "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["status"], report["failed_cell"], report["parameters"]) == (
        "passed",
        None,
        {"n": 3},
    )
    assert [(t["index"], t["status"]) for t in report["tests"]] == [(6, "passed"), (7, "passed")]
    assert report["metrics"] == {"accuracy": 0.5, "size": 3.0}
    assert report["gates"] == [
        {"gate": "accuracy>=0.5", "value": 0.5, "passed": True, "reason": "accuracy = 0.5"}
    ]
    assert report["executed"] is None
    assert tiny.read_bytes() == before
    assert sorted(p.name for p in tiny.parent.iterdir()) == ["data.txt", "notebook.ipynb"]


@pytest.mark.slow
def test_a_failing_test_cell_is_named_in_output_junit_report_and_copy(tiny: Path) -> None:
    before = tiny.read_bytes()
    folder = tiny.parent
    result = nbops_test(
        tiny,
        *("--require", "accuracy>=0.5"),
        *("--junit", folder / "ci" / "junit.xml"),
        *("--report", folder / "report.html"),
        *("-o", folder / "executed.ipynb"),
    )
    assert result.exit_code == 1, result.output
    assert lines(result) == [
        "FAILED  cell 6 [test] (c6) line 2: AssertionError: n should be 3",
        "        assert n == 3, 'n should be 3'",
        "not run cell 7 [test:load] (c7)",
        "metrics accuracy = 0.5, size = 1",
        "passed  gate accuracy>=0.5: accuracy = 0.5",
        "notebook.ipynb FAILED: test cells 1 failed, 1 not run; gates 1 passed (… on kernel "
        "python3)",
        f"JUnit XML: {folder / 'ci' / 'junit.xml'}",
        f"report: {folder / 'report.html'}",
        f"executed copy: {folder / 'executed.ipynb'}",
    ]
    assert tiny.read_bytes() == before

    junit = (folder / "ci" / "junit.xml").read_text()
    assert '<testcase name="cell 6 [test] (c6)" classname="load"' in junit
    assert 'message="line 2: AssertionError: n should be 3" type="AssertionError"' in junit
    assert '<skipped message="not run: cell 6 [test] (c6) failed first" />' in junit

    executed = nbformat.read(folder / "executed.ipynb", as_version=4)
    markers = [c for c in executed.cells if PAPERMILL_MARKER in c.metadata.get("tags", [])]
    assert len(markers) == 2  # papermill's message on top and its anchor above the failed cell
    failed = next(c for c in executed.cells if c.get("id") == "c6")
    assert failed.outputs[-1].ename == "AssertionError"
    assert "exploration must not run" not in json.dumps(executed)

    html = (folder / "report.html").read_text()
    assert '<a href="#nbops-failed-cell">cell 6 [test] (c6) line 2</a>' in html
    assert '<a id="nbops-failed-cell"></a><div class="jp-Cell' in html
    assert html.index('id="nbops-failed-cell"') < html.index('id="cell-id=c6"')
    assert "<tr><td><code>n</code></td><td><code>1</code></td>" in html
    assert "<tr><td><code>accuracy</code></td>\n<td>0.5</td>" in html
    assert "_nbops_read_metrics" not in html  # the read-back cell is not part of the report


@pytest.mark.slow
def test_keep_going_reports_every_failing_test_cell(make_notebook: MakeNotebook) -> None:
    path = make_notebook(
        [
            ("x = 1", ["step:a"]),
            ("assert x == 2, 'first'", ["test"]),
            ("assert x == 1", ["test"]),
            ("assert x == 3, 'second'", ["test"]),
            ("y = x + 1", ["step:b"]),
            ("assert y == 5, 'third'", ["test"]),
            ("z = y / 0", ["step:c"]),
            ("assert z", ["test"]),
        ]
    )
    junit = path.parent / "junit.xml"

    result = nbops_test(path, "--keep-going", "--junit", junit)

    assert result.exit_code == 1, result.output
    assert lines(result)[:2] == [
        "FAILED  cell 6 [step:c] (c6) line 1: ZeroDivisionError: division by zero",
        "        z = y / 0",
    ]
    shown = "\n".join(lines(result))
    for cell, message in [(1, "first"), (3, "second"), (5, "third")]:
        assert f"FAILED  cell {cell} [test] (c{cell}) line 1: AssertionError: {message}" in shown
    assert "passed  cell 2 [test] (c2)" in shown
    assert "not run cell 7 [test] (c7)" in shown
    assert "cell 6 [step:c] (c6) raised; test cells 3 failed, 1 not run, 1 passed" in shown
    xml = junit.read_text()
    assert xml.count("<failure ") == 3 and xml.count("<error ") == 1
    assert '<skipped message="not run: cell 6 [step:c] (c6) failed first" />' in xml

    stopped = nbops_test(path, "--stop-at-first", "--format", "json")
    report = json.loads(stopped.stdout)
    assert [t["status"] for t in report["tests"]] == [
        "failed",
        "not run",
        "not run",
        "not run",
        "not run",
    ]
    assert len(report["failed_cells"]) == 1


def test_keep_going_is_the_default_where_ci_is_set(
    make_notebook: MakeNotebook, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = make_notebook(
        [("x = 1", ["step:a"]), ("assert x == 2", ["test"]), ("assert x == 1", ["test"])]
    )
    monkeypatch.setenv("CI", "true")
    kept_going = json.loads(nbops_test(path, "--format", "json").stdout)
    monkeypatch.setenv("CI", "false")
    stopped = json.loads(nbops_test(path, "--format", "json").stdout)

    assert [t["status"] for t in kept_going["tests"]] == ["failed", "passed"]
    assert [t["status"] for t in stopped["tests"]] == ["failed", "not run"]


@pytest.mark.slow
def test_a_failing_gate_fails_the_run_and_is_a_junit_failure(tiny: Path) -> None:
    junit = tiny.parent / "junit.xml"
    result = nbops_test(tiny, "-p", "n=3", "--require", "accuracy>=0.99", "--junit", junit)
    assert result.exit_code == 1, result.output
    assert "FAILED  gate accuracy>=0.99: accuracy = 0.5, needs >= 0.99" in lines(result)
    assert (
        '<testcase name="gate accuracy&gt;=0.99" classname="metrics" time="0">\n'
        '      <failure message="accuracy = 0.5, needs &gt;= 0.99" type="MetricGate">'
    ) in junit.read_text()


@pytest.mark.slow
def test_a_step_that_raises_fails_the_run_with_its_cell(make_notebook: MakeNotebook) -> None:
    path = make_notebook(
        [("x = 1", ["step:a"]), ("y = 2\nz = x / 0", ["step:b"]), ("assert z", ["test"])]
    )
    result = nbops_test(path, "--format", "json")
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["failed_cell"] == {
        "index": 1,
        "id": "c1",
        "tag": "step:b",
        "line": 2,
        "message": "ZeroDivisionError: division by zero",
    }
    assert report["tests"] == [
        {"index": 2, "id": "c2", "tag": "test", "step": "b", "status": "not run"}
    ]


@pytest.mark.slow
def test_a_cell_past_its_timeout_is_reported_as_the_failure(make_notebook: MakeNotebook) -> None:
    path = make_notebook([("import time\ntime.sleep(30)", ["step:slow"]), ("pass", ["test"])])
    result = nbops_test(path, "--timeout", "1", "--format", "json")
    assert result.exit_code == 1, result.output
    assert json.loads(result.stdout)["failed_cell"] == {
        "index": 0,
        "id": "c0",
        "tag": "step:slow",
        "line": 2,
        "message": "TimeoutError: the cell was still running after 1 s (--timeout)",
    }


@pytest.mark.slow
def test_the_churn_example_passes_its_gate(example_notebooks: dict[str, Path]) -> None:
    result = nbops_test(example_notebooks["churn"], "--require", "test_accuracy>=0.7")
    assert result.exit_code == 0, result.output
    assert lines(result)[-1] == (
        "churn.ipynb PASSED: test cells 3 passed; gates 1 passed (… on kernel python3)"
    )


# usage errors: exit 2 with one line, before any kernel starts


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (
            ["--require", "accuracy=0.9"],
            "error: --require 'accuracy=0.9': a gate is a metric name, an operator and a "
            "number. Did you mean 'accuracy==0.9' or 'accuracy>=0.9'?",
        ),
        (
            ["--require", "acuracy>=0.9"],
            "error: --require 'acuracy>=0.9': notebook.ipynb has no metric 'acuracy'. "
            "Did you mean 'accuracy'? Its metrics are: accuracy, size.",
        ),
        (
            ["-o", "{notebook}"],
            "error: {notebook}: is the notebook under test; nbops test never writes the "
            "notebook. Choose another file name for the output.",
        ),
        (
            ["--report", "{folder}"],
            "error: {folder}: is a folder. Give the path of a file in a folder you can write to.",
        ),
    ],
)
def test_usage_errors_exit_2_with_one_line(tiny: Path, args: list[str], error: str) -> None:
    paths = {"notebook": tiny, "folder": tiny.parent}
    result = nbops_test(tiny, *(a.format(**paths) for a in args))
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [error.format(**paths)]


def test_an_unknown_parameter_exits_2(tiny: Path) -> None:
    result = nbops_test(tiny, "-p", "nn=3")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ")
    assert "'n'" in result.stderr


def test_an_unknown_kernel_exits_2_naming_the_installed_ones(tiny: Path) -> None:
    result = nbops_test(tiny, "--kernel", "no-such-kernel")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1].startswith(
        "error: --kernel: no Jupyter kernel named 'no-such-kernel' is installed (installed: "
    )


# the prepared copy


def prepared(cells: list[Any]) -> Any:
    data = notebook_json(cells)
    return prepare_copy(nbformat.from_dict(data), analyse(notebook_from_dict(data, "nb.ipynb")))


@pytest.mark.parametrize(
    "parameters",
    [
        ("n = 1", ["parameters"]),
        ("#| nbops: parameters\nn = 1", []),
        ("n = 1", ["pipeline-parameters"]),
    ],
)
def test_the_parameters_cell_carries_papermills_tag(parameters: Any) -> None:
    copy = prepared([parameters, ("x = n", ["step:a"])])
    assert [c.metadata.get("tags", []).count("parameters") for c in copy.cells] == [1, 0]


def test_papermills_injected_cell_is_not_tagged_parameters() -> None:
    copy = prepared([("n = 1", ["parameters"]), ("n = 2", ["injected-parameters"])])
    assert [c.metadata["tags"] for c in copy.cells] == [["parameters"], ["injected-parameters"]]


def test_skip_cells_are_left_out_and_the_metrics_read_after_the_last_metrics_cell() -> None:
    copy = prepared(
        [
            ("x = 1", ["step:a"]),
            ("print(x)", ["skip"]),
            ("accuracy = 0.9", ["metrics"]),
            "loss = 0.1",  # untagged: continues the metrics section
            ("assert x", ["test"]),
        ]
    )
    # Step a's output x goes through the store's serialisation right after it, as other faces.
    assert [c.id for c in copy.cells] == ["c0", "nbops-round-trip-a", "c2", "c3", METRICS_TAG, "c4"]
    assert '_nbops_round_trip(["x"], ' in copy.cells[1].source
    assert '["accuracy", "loss"]' in copy.cells[4].source
    assert copy.metadata["nbops"] == {"notebook": "nb.ipynb", "sha256": copy.metadata.nbops.sha256}
    nbformat.validate(copy)


def test_no_metrics_cell_means_no_read_back_cell() -> None:
    copy = prepared([("x = 1", ["step:a"]), ("assert x", ["test"])])
    assert [c.id for c in copy.cells] == ["c0", "nbops-round-trip-a", "c1"]
