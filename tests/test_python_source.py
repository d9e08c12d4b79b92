"""A cell's source as Python: IPython syntax, cell magics, syntax errors, line numbers."""

from __future__ import annotations

import pytest

from nbops.model import python_source
from nbops.model.dataflow import Names, scan
from nbops.model.python_source import CellPython, SyntaxProblem, cell_python


def names_of(source: str) -> Names:
    return scan(cell_python(source).tree)


# plain Python and empty cells


def test_plain_python_never_goes_through_the_ipython_transformer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(source: str) -> str:
        raise AssertionError("the transformer ran for plain Python")

    monkeypatch.setattr(python_source, "_ipython_to_python", refuse)
    python = cell_python("x = 1\ny = x")
    assert python.syntax_error is None
    assert python.cell_magic is None
    assert len(python.tree.body) == 2


@pytest.mark.parametrize(
    ("source", "plain"),
    [("x = 1", True), ("%time x = 1", False), ("!ls", False), ("%%time\nx = 1", False)],
)
def test_plain_says_whether_the_cell_is_python_as_written(source: str, plain: bool) -> None:
    assert cell_python(source).plain is plain


@pytest.mark.parametrize("source", ["", "\n\n", "# just a note\n# and another", "  # indented"])
def test_empty_and_comment_only_cells_are_empty_code(source: str) -> None:
    python = cell_python(source)
    assert python == CellPython(tree=python.tree, plain=True)
    assert python.tree.body == []
    assert scan(python.tree) == Names()


# IPython line syntax


def test_a_magic_inside_an_if_block_parses() -> None:
    python = cell_python("if missing:\n    %pip install xgboost\nz = 1")
    assert python.syntax_error is None
    names = scan(python.tree)
    assert names.reads == {"missing": 1}
    assert names.writes == {"z": 3}


def test_a_shell_escape_reads_braced_expressions_and_dollar_names() -> None:
    names = names_of("!ls {path} $other")
    assert names.reads == {"path": 1, "other": 1}
    assert names.writes == {}


def test_captured_shell_output_is_a_write() -> None:
    names = names_of("files = !ls {folder}")
    assert names.reads == {"folder": 1}
    assert names.writes == {"files": 1}


def test_a_help_request_parses_and_reads_nothing() -> None:
    python = cell_python("x?\ndf.describe??")
    assert python.syntax_error is None
    assert scan(python.tree) == Names()


def test_time_line_magic_is_analysed_as_python() -> None:
    names = names_of("%time y = f(x)")
    assert names.reads == {"f": 1, "x": 1}
    assert names.writes == {"y": 1}


def test_run_line_magic_makes_the_cell_opaque() -> None:
    assert names_of("%run helpers.py").opaque


def test_line_numbers_survive_ipython_syntax_and_leading_blank_lines() -> None:
    # IPython's transformer drops leading blank lines; they must not shift the lines.
    names = names_of("\n\n%matplotlib inline\n!ls\nx = f(y)")
    assert names.reads == {"f": 5, "y": 5}
    assert names.writes == {"x": 5}


def test_windows_line_endings_keep_line_numbers() -> None:
    names = names_of("x = 1\r\n!ls\r\ny = f(z)")
    assert names.reads == {"f": 3, "z": 3}
    assert names.writes == {"x": 1, "y": 3}


# cell magics


@pytest.mark.parametrize("magic", ["time", "timeit", "capture", "prun"])
def test_python_cell_magic_bodies_keep_the_cell_line_numbers(magic: str) -> None:
    # `%%timeit` runs its body in a throwaway function, so its assignments do not outlive the
    # cell; counting them as writes is harmless, since no working notebook can read them later.
    python = cell_python(f"%%{magic}\nx = load()\ny = f(x)")
    assert python.cell_magic == magic
    assert python.syntax_error is None
    names = scan(python.tree)
    assert names.reads == {"load": 2, "f": 3}
    assert names.writes == {"x": 2, "y": 3}


def test_a_python_cell_magic_body_may_hold_ipython_syntax() -> None:
    names = names_of("%%time\n!ls {path}\nx = f(y)")
    assert names.reads == {"path": 2, "f": 3, "y": 3}
    assert names.writes == {"x": 3}


def test_a_cell_magic_after_leading_blank_lines_is_still_a_cell_magic() -> None:
    # IPython skips leading blank lines before looking for `%%`.
    python = cell_python("\n  \n%%time\nx = f(y)")
    assert python.cell_magic == "time"
    names = scan(python.tree)
    assert names.reads == {"f": 4, "y": 4}
    assert names.writes == {"x": 4}


def test_a_cell_magic_line_with_trailing_space_and_crlf_is_recognised() -> None:
    python = cell_python("%%time  \r\nx = 1")
    assert python.cell_magic == "time"
    assert scan(python.tree).writes == {"x": 2}


@pytest.mark.parametrize(
    ("line", "target"),
    [("%%capture out", ("out",)), ("%%capture --no-stderr out", ("out",)), ("%%capture", ())],
)
def test_capture_records_the_name_it_binds(line: str, target: tuple[str, ...]) -> None:
    python = cell_python(f"{line}\nmodel.fit(X)")
    assert python.cell_magic == "capture"
    assert python.magic_writes == target
    assert scan(python.tree).mutations == {"model": 2}


@pytest.mark.parametrize(
    "source",
    ["%%bash\necho {x} $y\nls", "%%html\n<b>{x}</b>", "%%sh\nrm -rf $y", "%%javascript\nf(x)"],
)
def test_cell_magics_with_a_non_python_body_are_not_code(source: str) -> None:
    python = cell_python(source)
    assert python.tree.body == []
    assert python.files_written == ()
    assert python.syntax_error is None
    assert scan(python.tree) == Names()


@pytest.mark.parametrize(
    ("line", "path"),
    [
        ("%%writefile path.py", "path.py"),
        ("%%writefile -a path.py", "path.py"),
        ('%%writefile "my dir/app.py"', "my dir/app.py"),
        ("%%file src/model.py", "src/model.py"),
    ],
)
def test_writefile_records_the_path_and_its_body_is_not_code(line: str, path: str) -> None:
    python = cell_python(f"{line}\nimport os\nx = undefined_name")
    assert python.files_written == (path,)
    assert python.tree.body == []
    assert python.syntax_error is None


def test_writefile_without_a_path_writes_nothing() -> None:
    assert cell_python("%%writefile\nx = 1").files_written == ()


# syntax errors


def test_a_syntax_error_reports_its_line() -> None:
    python = cell_python("x = 1\ny = (\n")
    assert python.syntax_error == SyntaxProblem(2, "'(' was never closed")
    assert python.tree.body == []


def test_a_syntax_error_after_ipython_syntax_and_blank_lines_reports_its_cell_line() -> None:
    python = cell_python("\n%matplotlib inline\n!ls\nx = (")
    assert python.syntax_error == SyntaxProblem(4, "'(' was never closed")


def test_a_syntax_error_in_a_cell_magic_body_reports_its_cell_line() -> None:
    python = cell_python("%%time\nok = 1\nbad = (")
    assert python.cell_magic == "time"
    assert python.syntax_error == SyntaxProblem(3, "'(' was never closed")


def test_a_null_byte_is_a_syntax_problem_not_a_crash() -> None:
    python = cell_python("x = 1\x00")
    assert python.tree.body == []
    assert python.syntax_error is not None
    assert python.syntax_error.line == 1
    assert "null" in python.syntax_error.message  # the wording differs across Python versions


def test_a_null_byte_in_a_cell_with_ipython_syntax_is_not_a_crash() -> None:
    python = cell_python("!ls\nx = 1\x00")
    assert python.tree.body == []
    assert python.syntax_error is not None
