"""The lineage exports: the JSON contract, Mermaid and DOT, and the CLI commands that print them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from builders import notebook_json, pipeline
from click.testing import CliRunner

from nbops.cli import cli
from nbops.model.lineage import lineage_dict, to_dot, to_mermaid

CHURN = Path(__file__).parent.parent / "example_notebooks" / "churn.ipynb"

SMALL = [
    ("n = 2  # rows", ["parameters"]),
    ("a = n", ["step:load"]),
    ("b = a * 2", ["step:train"]),
    ("assert b", ["test"]),
    ("score = float(b)", ["metrics"]),
    ("def predict(x: int) -> int:\n    return b * x", ["serve"]),
]


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_lineage_json_has_the_documented_shape() -> None:
    data = lineage_dict(pipeline(SMALL))
    assert data["schema_version"] == 1
    assert data["notebook"]["name"] == "nb"
    assert data["parameters"] == [{"name": "n", "default": 2, "type": "int", "help": "rows"}]
    assert data["steps"][1] == {
        "name": "train",
        "title": "train",
        "cells": [{"index": 2, "id": "c2"}],
        "reads": ["a"],
        "writes": ["b"],
        "inputs": ["a"],
        "outputs": ["b"],
        "parameters": [],
        "after": [],
        "files_written": [],
        "timeout_s": None,
        "files": [],
    }
    assert data["edges"] == [
        {"source": "load", "target": "train", "artifacts": ["a"], "kind": "data"}
    ]
    (endpoint,) = data["endpoints"]
    assert endpoint["name"] == "predict"
    assert endpoint["route"] == "predict"
    assert endpoint["cells"] == [{"index": 5, "id": "c5"}]
    assert endpoint["artifacts"] == ["b"]
    assert endpoint["producers"] == {"b": "train"}
    assert endpoint["batch"] is False
    assert data["tests"] == [{"step": "train", "cells": [{"index": 3, "id": "c3"}]}]
    assert data["metrics"] == {"names": ["score"], "cells": [{"index": 4, "id": "c4"}]}
    assert data["diagnostics"] == []
    assert {"name": "b", "producer": "train", "consumers": ["endpoint:predict"]} in data[
        "artifacts"
    ]


def test_diagnostics_in_json_name_cell_line_and_fix() -> None:
    data = lineage_dict(pipeline([("y = missing", ["step:s"])]))
    error = next(d for d in data["diagnostics"] if d["severity"] == "error")
    assert error == {
        "severity": "error",
        "cell_index": 0,
        "cell_id": "c0",
        "line": 1,
        "message": "'missing' is read but no earlier step, setup or parameters cell writes it.",
        "fix": "Define it in the setup cell or an earlier step, or check the spelling.",
    }


def test_mermaid_draws_steps_edges_with_artifacts_and_the_endpoint() -> None:
    text = to_mermaid(pipeline(SMALL))
    assert text.startswith("flowchart TD\n")
    assert 'step_load -->|"a"| step_train' in text
    assert 'endpoint_predict(["POST /predict"])' in text
    assert 'step_train -->|"b"| endpoint_predict' in text
    assert "step_train -.- test_0" in text


def test_dot_is_a_digraph_with_the_same_edges() -> None:
    text = to_dot(pipeline(SMALL))
    assert text.startswith('digraph "nb" {')
    assert 'step_load -> step_train [label="a"];' in text
    assert 'step_train -> endpoint_predict [label="b"];' in text
    assert text.rstrip().endswith("}")


@pytest.mark.parametrize("fmt", ["json", "mermaid", "dot", "tree"])
def test_lineage_command_prints_each_format(fmt: str) -> None:
    code, out = run("lineage", str(CHURN), "--format", fmt)
    assert code == 0
    assert "train" in out and "evaluate" in out
    if fmt == "json":
        assert json.loads(out)["steps"][0]["name"] == "load"


def test_lineage_json_from_the_cli_equals_the_model_export() -> None:
    from nbops.model.analysis import analyse
    from nbops.model.notebook import load_notebook

    _, out = run("lineage", str(CHURN), "--format", "json")
    assert json.loads(out) == lineage_dict(analyse(load_notebook(str(CHURN))))


def test_check_exits_1_on_errors_and_prints_cell_line_and_fix(tmp_path: Path) -> None:
    path = tmp_path / "broken.ipynb"
    path.write_text(json.dumps(notebook_json([("y = missing", ["step:s"])])))
    code, out = run("check", str(path))
    assert code == 1
    assert "error broken.ipynb cell 0 [step:s] line 1: 'missing' is read but no earlier" in out
    assert "fix: Define it in the setup cell or an earlier step" in out
    assert "broken.ipynb: 1 step, 0 endpoints, 1 error, 1 warning" in out


def test_check_json_lists_diagnostics_and_exits_0_without_errors() -> None:
    code, out = run("check", str(CHURN), "--format", "json")
    assert code == 0
    assert all(d["severity"] != "error" for d in json.loads(out))


@pytest.mark.parametrize("command", [[], ["check"], ["lineage"]])
def test_every_command_has_help(command: list[str]) -> None:
    code, out = run(*command, "--help")
    assert code == 0
    assert "Usage: " in out


def test_version() -> None:
    from nbops import __version__

    code, out = run("--version")
    assert code == 0
    assert out.strip() == f"nbops, version {__version__}"
