"""Reading notebooks: formats 3 and 4, stable cell ids, kernels, and one clear error per mistake."""

from __future__ import annotations

import copy
import hashlib
import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from nbops.cli import cli
from nbops.errors import NotebookInvalid, NotebookNotFound, UnsupportedKernel
from nbops.model.analysis import analyse
from nbops.model.diagnostic import Diagnostic, Severity
from nbops.model.lineage import lineage_dict
from nbops.model.notebook import Cell, load_notebook, notebook_from_dict, parse_notebook

RESAVE = "Restore it from version control, or open and re-save it in Jupyter."
NOT_A_NOTEBOOK = (
    "is JSON but not a Jupyter notebook: it has no 'nbformat' field. "
    "Pass an .ipynb file saved by Jupyter."
)
NO_CODE = (
    "has no code cells, so there is nothing to analyse. "
    "Add code cells and tag them (step:<name>, setup, parameters, ...)."
)
TOO_DEEP = f"is nested too deeply to be a notebook. {RESAVE}"
R_KERNEL = {"name": "ir", "display_name": "R", "language": "R"}
MARKDOWN = {"cell_type": "markdown", "id": "m", "metadata": {}, "source": "hi"}
MakeNotebook = Callable[..., Path]
NotebookJson = Callable[..., dict[str, Any]]
WrittenFile = Callable[[str, bytes], Path]


def dumps(data: Any) -> bytes:
    return json.dumps(data, indent=1).encode()


def v3_notebook() -> dict[str, Any]:
    """A notebook as IPython 2 saved it: worksheets, `input`, per-cell `language`."""
    return {
        "nbformat": 3,
        "nbformat_minor": 0,
        "metadata": {"name": "old"},
        "worksheets": [
            {
                "metadata": {},
                "cells": [
                    {"cell_type": "heading", "level": 1, "metadata": {}, "source": "Churn"},
                    {
                        "cell_type": "code",
                        "collapsed": False,
                        "input": ["import math\n", "rows = 3\n"],
                        "language": "python",
                        "metadata": {"tags": ["setup"]},
                        "outputs": [],
                        "prompt_number": 1,
                    },
                    {"cell_type": "markdown", "metadata": {}, "source": "Now *load*."},
                    {
                        "cell_type": "code",
                        "collapsed": False,
                        "input": "data = list(range(rows))",
                        "language": "python",
                        "metadata": {"tags": ["step:load"]},
                        "outputs": [
                            {"output_type": "stream", "stream": "stdout", "text": ["ok\n"]}
                        ],
                        "prompt_number": 2,
                    },
                    {
                        "cell_type": "code",
                        "collapsed": False,
                        "input": "total = sum(data)",
                        "language": "python",
                        "metadata": {"tags": ["step:report"]},
                        "outputs": [],
                        "prompt_number": 3,
                    },
                ],
            }
        ],
    }


# loading well-formed notebooks


def test_v45_notebook_keeps_its_cell_ids(make_notebook: MakeNotebook) -> None:
    path = make_notebook(
        ["# Title", ("import os", ["setup"]), ("x = 1\ny = x", ["step:load"])],
        name="kept.ipynb",
    )

    nb = load_notebook(path)

    assert nb.cells == (
        Cell(0, "c0", "markdown", "# Title"),
        Cell(1, "c1", "code", "import os", ("setup",)),
        Cell(2, "c2", "code", "x = 1\ny = x", ("step:load",)),
    )
    assert nb.path == str(path)
    assert nb.name == "kept"
    assert nb.display_name == "kept.ipynb"
    assert nb.language == "python"
    assert nb.notes == ()


def test_v45_cells_without_an_id_get_one_without_warnings(notebook_json: NotebookJson) -> None:
    data = notebook_json([("a = 1", ["step:a"]), ("b = a", ["step:b"])])
    del data["cells"][1]["id"]
    before = copy.deepcopy(data)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nb = notebook_from_dict(data, "partial.ipynb")

    assert nb.cells[0].id == "c0"
    assert nb.cells[1].id.startswith("nbops-")
    assert nb.cells[1].id == notebook_from_dict(before, "partial.ipynb").cells[1].id
    assert nb.notes == ()
    assert data == before, "the caller's data is not changed"


def test_v44_notebook_gets_stable_ids_and_the_file_is_untouched(
    make_notebook: MakeNotebook,
) -> None:
    # Two cells with the same source must still get different ids.
    path = make_notebook(
        [("x = 1", ["step:a"]), ("x = 1", ["step:b"]), "text", ("print(x)", [])], minor=4
    )
    raw = path.read_bytes()
    mtime = path.stat().st_mtime_ns

    first, second = load_notebook(path), load_notebook(path)

    ids = [cell.id for cell in first.cells]
    assert ids == [cell.id for cell in second.cells]
    assert len(set(ids)) == len(ids) == 4
    assert all(cell_id.startswith("nbops-") for cell_id in ids)
    assert ids == [cell.id for cell in parse_notebook(raw, "elsewhere.ipynb").cells]
    assert [cell.source for cell in first.cells] == ["x = 1", "x = 1", "text", "print(x)"]
    assert first.notes == ()
    assert path.read_bytes() == raw
    assert path.stat().st_mtime_ns == mtime


def test_v3_notebook_is_upgraded_and_its_cells_read(write_file: WrittenFile) -> None:
    path = write_file("old.ipynb", dumps(v3_notebook()))

    nb = load_notebook(path)

    assert [(c.index, c.cell_type, c.source, c.tags) for c in nb.cells] == [
        (0, "markdown", "# Churn", ()),
        (1, "code", "import math\nrows = 3\n", ("setup",)),
        (2, "markdown", "Now *load*.", ()),
        (3, "code", "data = list(range(rows))", ("step:load",)),
        (4, "code", "total = sum(data)", ("step:report",)),
    ]
    assert nb.language == "python"
    ids = [cell.id for cell in nb.cells]
    assert len(set(ids)) == 5
    assert ids == [cell.id for cell in load_notebook(path).cells]
    pipeline = analyse(nb)
    assert [step.name for step in pipeline.steps] == ["load", "report"]
    assert [(e.source, e.target, e.artifacts) for e in pipeline.edges] == [
        ("load", "report", ("data",))
    ]


def test_v3_notebook_missing_a_cell_language_is_invalid() -> None:
    data = v3_notebook()
    del data["worksheets"][0]["cells"][1]["language"]

    with pytest.raises(NotebookInvalid) as caught:
        parse_notebook(dumps(data), "old.ipynb")

    assert caught.value.render() == (
        "old.ipynb: does not follow the notebook format at cell 1 of worksheet 0: "
        f"'language' is a required property. {RESAVE}"
    )


def test_v3_tags_that_are_not_a_list_are_ignored() -> None:
    data = v3_notebook()
    data["worksheets"][0]["cells"][1]["metadata"]["tags"] = "setup"

    nb = parse_notebook(dumps(data), "old.ipynb")

    assert nb.cells[1].tags == ()


def test_duplicate_cell_ids_are_repaired_with_a_note(notebook_json: NotebookJson) -> None:
    data = notebook_json([("a = 1", ["step:a"]), ("b = a", ["step:b"]), ("c = b", ["step:c"])])
    for cell in data["cells"]:
        cell["id"] = "same"
    raw = dumps(data)

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nbformat's own DuplicateCellId warning must not leak
        nb = parse_notebook(raw, "dup.ipynb")

    assert [cell.id for cell in nb.cells] == ["same", "same-1", "same-2"]
    assert nb.notes == tuple(
        Diagnostic(
            Severity.WARNING,
            f"cell id 'same' is used by an earlier cell too; nbops calls this one {new!r}.",
            "Re-save the notebook in JupyterLab, which gives every cell its own id.",
            cell_index=index,
            cell_id=new,
        )
        for index, new in [(1, "same-1"), (2, "same-2")]
    )
    assert [c.id for c in parse_notebook(raw, "dup.ipynb").cells] == ["same", "same-1", "same-2"]
    assert set(nb.notes) <= set(analyse(nb).diagnostics)


def test_a_repaired_id_never_takes_another_cells_id(notebook_json: NotebookJson) -> None:
    data = notebook_json([("a = 1", []), ("b = 2", []), ("c = 3", [])])
    for cell, cell_id in zip(data["cells"], ["x", "x", "x-1"], strict=True):
        cell["id"] = cell_id

    nb = notebook_from_dict(data, "dup.ipynb")

    assert [cell.id for cell in nb.cells] == ["x", "x-1-1", "x-1"]
    assert [note.cell_id for note in nb.notes] == ["x-1-1"]


def test_missing_kernelspec_assumes_python(notebook_json: NotebookJson) -> None:
    data = notebook_json([("a = 1", ["step:a"])], kernelspec=None)
    assert "kernelspec" not in data["metadata"]

    assert notebook_from_dict(data, "bare.ipynb").language == "python"


def test_python_named_in_language_info_only(notebook_json: NotebookJson) -> None:
    data = notebook_json([("a = 1", ["step:a"])], kernelspec=None)
    data["metadata"]["language_info"] = {"name": "python", "version": "3.12.1"}

    assert notebook_from_dict(data, "info.ipynb").language == "python"


@pytest.mark.parametrize(
    ("metadata", "language"),
    [
        ({"kernelspec": R_KERNEL}, "R"),
        ({"language_info": {"name": "julia"}}, "julia"),
    ],
)
def test_a_kernel_other_than_python_is_unsupported(
    notebook_json: NotebookJson, metadata: dict[str, Any], language: str
) -> None:
    data = notebook_json([("x <- 1", ["step:a"])], kernelspec=None)
    data["metadata"].update(metadata)

    with pytest.raises(UnsupportedKernel) as caught:
        notebook_from_dict(data, "other.ipynb")

    assert str(caught.value) == (
        f"other.ipynb: its kernel runs {language!r}; nbops analyses Python notebooks only. "
        "Use a Python kernel (set metadata.kernelspec to a Python kernel)."
    )


def test_outputs_and_execution_counts_do_not_matter(notebook_json: NotebookJson) -> None:
    cells = [("rows = 3", ["parameters"]), ("data = list(range(rows))", ["step:load"])]
    cells += [("total = sum(data)\nprint(total)", ["step:report"])]
    plain = notebook_json(cells, minor=4)
    run = copy.deepcopy(plain)
    for cell, count in zip(run["cells"], [7, None, 2], strict=True):
        cell["execution_count"] = count
    run["cells"][2]["outputs"] = [
        {"output_type": "stream", "name": "stdout", "text": ["3\n"]},
        {
            "output_type": "execute_result",
            "execution_count": 2,
            "data": {"text/plain": ["3"]},
            "metadata": {},
        },
    ]

    a, b = notebook_from_dict(plain, "n.ipynb"), notebook_from_dict(run, "n.ipynb")

    assert a.sha256 != b.sha256
    assert a.cells == b.cells
    lineage_a, lineage_b = lineage_dict(analyse(a)), lineage_dict(analyse(b))
    del lineage_a["notebook"]["sha256"], lineage_b["notebook"]["sha256"]
    assert lineage_a == lineage_b


@pytest.mark.parametrize("minor", [4, 5])
def test_source_as_a_list_of_lines_is_joined(notebook_json: NotebookJson, minor: int) -> None:
    text = notebook_json([("a = 1\nb = a + 1\n", ["step:one"])], minor=minor)
    lines = copy.deepcopy(text)
    lines["cells"][0]["source"] = ["a = 1\n", "b = a + 1\n"]
    if minor >= 5:  # without an id, the id is derived from the (joined) source
        del text["cells"][0]["id"], lines["cells"][0]["id"]

    joined = notebook_from_dict(lines, "lines.ipynb").cells[0]

    assert joined.source == "a = 1\nb = a + 1\n"
    assert joined == notebook_from_dict(text, "lines.ipynb").cells[0]


def test_sha256_hashes_the_bytes_as_given(notebook_json: NotebookJson) -> None:
    raw = dumps(notebook_json([("a = 1", ["step:a"])]))

    assert parse_notebook(raw, "h.ipynb").sha256 == hashlib.sha256(raw).hexdigest()
    assert parse_notebook(raw.decode(), "h.ipynb").sha256 == hashlib.sha256(raw).hexdigest()


def test_a_utf8_byte_order_mark_is_accepted(notebook_json: NotebookJson) -> None:
    raw = b"\xef\xbb\xbf" + dumps(notebook_json([("a = 1", ["step:a"])]))

    assert parse_notebook(raw, "bom.ipynb").cells[0].source == "a = 1"


def test_example_notebooks_load_with_their_ids(example_notebooks: dict[str, Path]) -> None:
    assert set(example_notebooks) >= {"churn", "kale_dialect", "regression"}
    for name, path in example_notebooks.items():
        raw = path.read_bytes()
        nb = load_notebook(path)
        ids = [cell["id"] for cell in json.loads(raw)["cells"]]
        assert [cell.id for cell in nb.cells] == ids, name
        assert nb.notes == (), name
        assert path.read_bytes() == raw, name


# malformed input: one NbopsError with one clear message each


def valid(**changes: Any) -> bytes:
    data: dict[str, Any] = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {},
        "cells": [
            {
                "cell_type": "code",
                "id": "c0",
                "metadata": {},
                "source": "a = 1",
                "outputs": [],
                "execution_count": None,
            }
        ],
    }
    data.update(changes)
    return dumps(data)


def code_cell(**fields: Any) -> dict[str, Any]:
    cell = {"cell_type": "code", "id": "c0", "metadata": {}, "source": "a = 1"}
    return {**cell, "outputs": [], "execution_count": None, **fields}


def schema(place: str, message: str) -> str:
    at = f" at {place}" if place else ""
    return f"does not follow the notebook format{at}: {message}. {RESAVE}"


MALFORMED: list[tuple[str, bytes, str]] = [
    (
        "invalid-json",
        b'{"nbformat": 4,',
        "is not valid JSON (line 1, column 16: Expecting property name enclosed in double "
        f"quotes). {RESAVE}",
    ),
    ("json-list", b"[1, 2]", NOT_A_NOTEBOOK),
    ("json-string", b'"notebook"', NOT_A_NOTEBOOK),
    ("json-without-nbformat", b'{"cells": [], "metadata": {}}', NOT_A_NOTEBOOK),
    (
        "nbformat-5",
        valid(nbformat=5, nbformat_minor=0),
        "uses notebook format 5.0; nbops reads formats 3 and 4. "
        "Open and re-save it with a current Jupyter.",
    ),
    (
        "nbformat-2",
        valid(nbformat=2, nbformat_minor=0),
        "uses notebook format 2.0; nbops reads formats 3 and 4. "
        "Open and re-save it with a current Jupyter.",
    ),
    (
        "nbformat-text",
        valid(nbformat="4"),
        f"its format version (nbformat '4', nbformat_minor 5) is not two whole numbers. {RESAVE}",
    ),
    (
        "nbformat-float",
        valid(nbformat=4.0),
        f"its format version (nbformat 4.0, nbformat_minor 5) is not two whole numbers. {RESAVE}",
    ),
    ("empty-file", b"", f"is empty. {RESAVE}"),
    ("blank-file", b" \n\t\n", f"is empty. {RESAVE}"),
    ("zero-cells", valid(cells=[]), NO_CODE),
    ("markdown-only", valid(cells=[MARKDOWN]), NO_CODE),
    (
        "code-cell-without-outputs",
        valid(cells=[{k: v for k, v in code_cell().items() if k != "outputs"}]),
        schema("cell 0", "'outputs' is a required property"),
    ),
    (
        "unknown-cell-type",
        valid(cells=[code_cell(), code_cell(id="c1", cell_type="sql", source="x" * 500)]),
        schema(
            "cell 1",
            "it is not a valid code, markdown or raw cell (check its cell_type and fields)",
        ),
    ),
    (
        "broken-output",
        valid(cells=[code_cell(outputs=[{"output_type": "stream", "name": "stdout"}])]),
        schema("cell 0 (outputs/0)", "'text' is a required property"),
    ),
    ("cells-not-a-list", valid(cells="a = 1"), schema("cells", "'a = 1' is not of type 'array'")),
    ("cell-not-an-object", valid(cells=[3]), schema("cell 0", "3 is not of type 'object'")),
    ("metadata-a-list", valid(metadata=[]), schema("metadata", "[] is not of type 'object'")),
    (
        "bad-cell-id",
        valid(cells=[code_cell(id="has space")]),
        schema("cell 0 (id)", "'has space' does not match '^[a-zA-Z0-9-_]+$'"),
    ),
    (
        "non-utf8",
        b'{"nbformat": 4, "x": "\xff"}',
        f"is not UTF-8 text (byte 22). {RESAVE}",
    ),
    ("utf16", valid().decode().encode("utf-16"), f"is not UTF-8 text (byte 0). {RESAVE}"),
    ("nested-too-deep", b"[" * 100_000 + b"]" * 100_000, TOO_DEEP),
]


@pytest.mark.parametrize(
    ("content", "message"),
    [case[1:] for case in MALFORMED],
    ids=[case[0] for case in MALFORMED],
)
def test_malformed_file_raises_one_clear_error(
    write_file: WrittenFile, content: bytes, message: str
) -> None:
    path = write_file("bad.ipynb", content)

    with pytest.raises(NotebookInvalid) as caught:
        load_notebook(path)

    assert str(caught.value) == f"{path}: {message}"
    assert "\n" not in str(caught.value)


def test_a_folder_is_not_a_notebook(tmp_path: Path) -> None:
    folder = tmp_path / "folder.ipynb"
    folder.mkdir()

    with pytest.raises(NotebookNotFound) as caught:
        load_notebook(folder)

    assert str(caught.value) == (
        f"{folder}: is a folder, not a notebook. "
        "Check the path; nbops takes the path of an .ipynb file."
    )


def test_a_missing_path_is_not_found(tmp_path: Path) -> None:
    missing = tmp_path / "missing.ipynb"

    with pytest.raises(NotebookNotFound) as caught:
        load_notebook(missing)

    assert str(caught.value) == (
        f"{missing}: no such notebook file. Check the path; nbops takes the path of an .ipynb file."
    )


def test_notebook_from_dict_reports_data_nested_too_deeply() -> None:
    data: dict[str, Any] = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": []}
    deep: list[Any] = data["cells"]
    for _ in range(5000):
        deep.append([])
        deep = deep[0]

    with pytest.raises(NotebookInvalid, match=r"^web\.ipynb: is nested too deeply"):
        notebook_from_dict(data, "web.ipynb")


# the same mistakes through the command line: exit code 2, one line, no traceback

CLI_CASES = [(name, content) for name, content, _ in MALFORMED] + [
    ("r-kernel", valid(metadata={"kernelspec": R_KERNEL})),
]


def assert_one_error_line(output: str, path: Path) -> None:
    assert "Traceback" not in output
    lines = output.strip().splitlines()
    assert len(lines) == 1, output
    assert lines[0].startswith(f"error: {path}: "), output


@pytest.mark.parametrize("command", ["check", "lineage"])
@pytest.mark.parametrize(
    "content", [case[1] for case in CLI_CASES], ids=[case[0] for case in CLI_CASES]
)
def test_cli_reports_a_bad_notebook_in_one_line(
    write_file: WrittenFile, command: str, content: bytes
) -> None:
    path = write_file("bad.ipynb", content)

    result = CliRunner().invoke(cli, [command, str(path)])

    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    assert_one_error_line(result.output, path)


def test_cli_reports_a_missing_notebook_in_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "missing.ipynb"

    result = CliRunner().invoke(cli, ["check", str(missing)])

    assert result.exit_code == 2
    assert_one_error_line(result.output, missing)
    assert result.output.strip().endswith(
        "no such notebook file. Check the path; nbops takes the path of an .ipynb file."
    )


def test_cli_reports_a_folder_in_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "folder.ipynb"
    folder.mkdir()

    result = CliRunner().invoke(cli, ["check", str(folder)])

    assert result.exit_code == 2
    assert_one_error_line(result.output, folder)
    assert "is a folder, not a notebook." in result.output


def test_a_v44_notebook_that_carries_ids_keeps_them(write_file) -> None:
    """Files that say 4.4 but hold ids exist in the wild; Jupyter opens them, so nbops does."""
    data = json.loads(valid(nbformat_minor=4))
    path = write_file("old.ipynb", json.dumps(data).encode())
    notebook = load_notebook(path)
    assert [c.id for c in notebook.cells] == [c["id"] for c in data["cells"]]


def test_deeply_nested_metadata_is_read_and_left_alone(write_file) -> None:
    """nbops never walks notebook metadata, so its depth is no reason to refuse the file."""
    raw = valid(metadata={"x": json.loads("[" * 900 + "]" * 900)})
    notebook = load_notebook(write_file("deep.ipynb", raw))
    assert [c.source for c in notebook.cells] == ["a = 1"]
