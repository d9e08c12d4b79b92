"""A cell's IPython syntax as plain Python for generated code, one conversion per test."""

from __future__ import annotations

import ast

import pytest

from nbops.model import plain_python as module
from nbops.model.plain_python import PATH, SHLEX, SUBPROCESS, PlainPython, indent_code, plain_python
from nbops.model.python_source import cell_python

RUN = (
    "print(\n    subprocess.run(\n        {},\n        shell=True,\n        check=True,\n"
    "        stdout=subprocess.PIPE,\n        stderr=subprocess.STDOUT,\n        text=True,\n"
    '    ).stdout,\n    end="",\n)'
)
CAPTURE = (
    "subprocess.run({}, shell=True, capture_output=True, text=True, check=True).stdout.splitlines()"
)


def code(source: str) -> str:
    return plain_python(source).code


# plain Python stays as written


def test_plain_python_is_kept_verbatim_with_its_comments_without_the_transformer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(text: str) -> str:
        raise AssertionError("the IPython transformer ran for plain Python")

    monkeypatch.setattr(module, "_ipython_transform", refuse)
    source = "x = 1  # one\n\n# a note\ny = 'two'   # odd spacing stays\n"
    assert plain_python(source) == PlainPython(
        "x = 1  # one\n\n# a note\ny = 'two'   # odd spacing stays"
    )


def test_surrounding_blank_lines_are_dropped() -> None:
    assert code("\n  \n\nx = 1\n\n   \n") == "x = 1"


def test_nbops_option_lines_are_dropped_and_quarto_options_kept() -> None:
    source = "#| nbops: step:train after:load\n#| echo: false\n\nx = 1"
    assert code(source) == "#| echo: false\n\nx = 1"
    assert code("#| nbops: setup\nimport os") == "import os"


def test_empty_and_comment_only_cells() -> None:
    assert plain_python("") == PlainPython("")
    assert code("# only a note") == "# only a note"


# line magics that run a statement


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("%time model.fit(X, y)", "model.fit(X, y)"),
        ("%time y = f(x)", "y = f(x)"),
        ("%timeit -n 10 -r 3 f(x)", "f(x)"),
        ("%prun -s cumulative train()", "train()"),
        ("result = %time f(x)", "result = f(x)"),
    ],
)
def test_timing_magics_become_their_statement(source: str, expected: str) -> None:
    assert plain_python(source) == PlainPython(expected)


def test_a_magic_keeps_its_indentation_and_its_neighbours_their_comments() -> None:
    source = "for i in range(3):  # loop\n    %time step(i)\n    total = i  # kept\n"
    assert code(source) == "for i in range(3):  # loop\n    step(i)\n    total = i  # kept"


# shell commands


def test_a_shell_command_runs_with_subprocess_and_python_fields_become_an_fstring() -> None:
    result = plain_python('!echo "rows: {n_rows}"')
    assert result.code == RUN.format("f'echo \"rows: {shlex.quote(str(n_rows))}\"'")
    assert result.imports == (SUBPROCESS, SHLEX)


@pytest.mark.parametrize(
    ("source", "literal"),
    [
        ("!ls", '"ls"'),
        # Each value nbops puts into the command is shell-quoted (IPython does not quote).
        ("!ls {folder}", 'f"ls {shlex.quote(str(folder))}"'),
        ("!echo $name and $HOME", 'f"echo {shlex.quote(str(name))} and $HOME"'),
        ("!echo {{literal}} $$HOME {x}", 'f"echo {{literal}} $HOME {shlex.quote(str(x))}"'),
        ('!grep {d["key"]} file', "f\"grep {shlex.quote(str(d['key']))} file\""),
        ("!cp a.{txt,bak} b", '"cp a.{txt,bak} b"'),  # the shell's brace expansion, not Python
        ("!echo {x!r:>5}", "f\"echo {shlex.quote(format(repr(x), '>5'))}\""),
    ],
)
def test_shell_fields_expand_as_ipython_expands_them(source: str, literal: str) -> None:
    assert code(source) == RUN.format(literal)


def test_assigning_a_shell_command_captures_its_output_lines() -> None:
    result = plain_python("files = !ls -la {folder}")
    assert result.code == "files = " + CAPTURE.format('f"ls -la {shlex.quote(str(folder))}"')
    assert result.imports == (SUBPROCESS, SHLEX)


@pytest.mark.parametrize("source", ["!!ls", "%sx ls", "%system ls"])
def test_output_capturing_forms_capture_too(source: str) -> None:
    assert code(source) == CAPTURE.format('"ls"')


def test_a_continued_shell_command_becomes_one_call() -> None:
    assert code("!ls \\\n  -la\ny = 2") == RUN.format('"ls    -la"') + "\ny = 2"


@pytest.mark.parametrize("source", ["!pip install pandas", "!python -m pip install -U x"])
def test_installing_packages_is_left_out(source: str) -> None:
    result = plain_python(source)
    assert result == PlainPython(
        f"pass  # IPython magic left out: {source} (list packages in the build's requirements)"
    )


# other line magics are left out, saying what they were


@pytest.mark.parametrize(
    ("source", "shown"),
    [
        ("%pip install scikit-learn", "%pip install scikit-learn"),
        ("%matplotlib inline", "%matplotlib inline"),
        ("%load_ext autoreload", "%load_ext autoreload"),
        ("%autoreload 2", "%autoreload 2"),
        ("model?", "model?"),
        ("model??", "model??"),
        ("x = %pwd", "x = %pwd"),
    ],
)
def test_other_line_magics_are_left_out_with_a_comment(source: str, shown: str) -> None:
    assert plain_python(source) == PlainPython(f"pass  # IPython magic left out: {shown}")


def test_a_left_out_magic_keeps_its_block_valid() -> None:
    source = "if plotting:\n    %matplotlib inline\nx = 1"
    converted = code(source)
    assert (
        converted == "if plotting:\n    pass  # IPython magic left out: %matplotlib inline\nx = 1"
    )
    ast.parse(converted)


# cell magics


@pytest.mark.parametrize("magic", ["%%time", "%%timeit", "%%capture", "%%capture out", "%%prun"])
def test_cell_magics_that_run_their_body_become_the_body(magic: str) -> None:
    assert code(f"{magic}\nx = 1  # kept\ny = x") == "x = 1  # kept\ny = x"


def test_a_cell_magics_body_is_converted_too() -> None:
    result = plain_python("%%time\nx = 1\n!ls {x}")
    shown = RUN.format('f"ls {shlex.quote(str(x))}"')
    assert result == PlainPython("x = 1\n" + shown, (SUBPROCESS, SHLEX))


def test_leading_blank_lines_before_a_cell_magic_are_skipped_as_ipython_skips_them() -> None:
    assert code("\n\n%%time\nx = 1") == "x = 1"


def test_a_cell_magic_under_an_nbops_option_line_is_still_one() -> None:
    assert code("#| nbops: step:train\n%%time\nx = 1") == "x = 1"


def test_leading_blank_lines_before_line_magics_change_nothing() -> None:
    assert code("\n\n!ls\nx = 1") == RUN.format('"ls"') + "\nx = 1"


def test_writefile_writes_its_body_with_a_final_newline() -> None:
    result = plain_python("%%writefile config.yaml\na: 1\nb: two")
    assert result.code == (
        'Path("config.yaml").write_text(\n    """\\\na: 1\nb: two\n""",\n    encoding="utf-8",\n)'
    )
    assert result.imports == (PATH,)


@pytest.mark.parametrize(
    "body",
    [
        'text with """ triple quotes',
        'ends with a quote"',
        "both \"\"\" and ''' quotes",
        "back\\slashes \\n kept\tand a tab",
        "{braces} and $dollars are not expanded",
    ],
)
def test_writefile_bodies_survive_any_quotes_and_backslashes(body: str) -> None:
    tree = ast.parse(code(f"%%writefile out.txt\n{body}"))
    call = next(node for node in ast.walk(tree) if isinstance(node, ast.Call) and node.args)
    argument = call.args[0]
    assert isinstance(argument, ast.Constant)
    assert argument.value == body + "\n"


def test_writefile_expands_fields_in_the_path_and_appends_with_a() -> None:
    assert code("%%writefile {folder}/a.txt\nx").startswith('Path(f"{folder}/a.txt").write_text(')
    appended = code("%%writefile -a log.txt\nline")
    assert appended.startswith('with Path("log.txt").open("a", encoding="utf-8") as file:')
    ast.parse(appended)


@pytest.mark.parametrize(
    ("magic", "extra"), [("bash", '        executable="/bin/bash",\n'), ("sh", "")]
)
def test_shell_cell_magics_run_their_script(magic: str, extra: str) -> None:
    result = plain_python(f"%%{magic}\necho one\necho $HOME")
    assert result.code == (
        'print(\n    subprocess.run(\n        """\\\necho one\necho $HOME\n""",\n'
        "        shell=True,\n        check=True,\n        stdout=subprocess.PIPE,\n"
        f"        stderr=subprocess.STDOUT,\n        text=True,\n{extra}"
        '    ).stdout,\n    end="",\n)'
    )
    assert result.imports == (SUBPROCESS,)


@pytest.mark.parametrize("magic", ["html", "markdown", "javascript", "latex"])
def test_display_only_cell_magics_are_left_out(magic: str) -> None:
    assert plain_python(f"%%{magic}\n<b>shown</b>") == PlainPython(
        f"pass  # IPython magic left out: %%{magic} (display only)"
    )


def test_other_cell_magics_are_left_out_saying_they_need_ipython() -> None:
    assert code("%%sql sqlite://\nselect 1") == (
        "pass  # IPython magic left out: %%sql sqlite:// (it runs only in IPython)"
    )


# what stays alone


def test_magic_looking_lines_inside_strings_stay_text() -> None:
    source = "doc = '''\n!not a command\n%not_a_magic\n'''\n%time y = 1"
    assert code(source) == "doc = '''\n!not a command\n%not_a_magic\n'''\ny = 1"


@pytest.mark.parametrize(
    "source",
    [
        "x = 1\n!echo {x}\nfiles = !ls\n%time y = f(x)\nx?\n%pip install a\n",
        "for i in range(3):\n    %time h(i)\n    !echo $i\n",
        "%%writefile a.py\nprint('''x''')\n",
        '%%bash\nfor f in *; do echo "$f"; done\n',
        "    x = 1\n    !ls\n",
    ],
)
def test_converted_cells_are_python(source: str) -> None:
    ast.parse(code(source))


# indenting code into a function body


def test_indent_moves_code_but_not_the_inside_of_multiline_strings() -> None:
    source = 'text = """\nline one\n    two\n"""\nvalue = f"""\n{text}\n"""\nx = 1'
    indented = indent_code(source)
    assert indented == (
        '    text = """\nline one\n    two\n"""\n    value = f"""\n{text}\n"""\n    x = 1'
    )
    namespace: dict[str, object] = {}
    exec(f"def f():\n{indented}\n    return text, value", namespace)
    assert namespace["f"]() == ("\nline one\n    two\n", "\n\nline one\n    two\n\n")  # type: ignore[operator]


def test_indent_moves_docstrings_with_their_code() -> None:
    source = 'def f():\n    """Doc.\n\n    More.\n    """\n    return 1'
    assert indent_code(source) == (
        '    def f():\n        """Doc.\n\n        More.\n        """\n        return 1'
    )


def test_indent_leaves_blank_lines_empty() -> None:
    assert indent_code("x = 1\n\ny = 2", 8) == "        x = 1\n\n        y = 2"


def test_a_converted_shell_line_keeps_the_cells_line_numbers_for_what_follows() -> None:
    result = plain_python("x = 1\nfor i in range(2):\n    !echo {i}\ny = 2")
    assert result.code.count("\n") == 13  # the command is spread over 11 lines
    tree = result.in_cell_lines(ast.parse(result.code), 4)
    assert [statement.lineno for statement in tree.body] == [5, 6, 8]
    loop = tree.body[1]
    assert isinstance(loop, ast.For)
    assert (loop.body[0].lineno, loop.body[0].end_lineno) == (7, 7)


def test_a_cell_with_broken_indentation_is_kept_as_written_for_its_syntax_error() -> None:
    # Found by tests/test_properties.py: IPython's tokenizer raised IndentationError here.
    source = "def predict(x: float) -> float:\n    return x * b\n  indented = 1"

    assert plain_python(source, cell_python(source)).code == source
