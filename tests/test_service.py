"""The generated service: what its modules say, how type hints become request fields, and that
it lints, imports without nbops and refuses to serve from a broken build."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from builders import notebook_json, pipeline

from nbops.build.builder import build, check_build
from nbops.build.codegen import write_pipeline
from nbops.build.hints import NotebookTypes, field_type, notebook_types
from nbops.build.service import (
    BATCHING,
    SERVICE_COPIES,
    SERVICE_FILES,
    render_service,
    write_service,
)
from nbops.errors import PipelineError
from nbops.model.analysis import analyse
from nbops.model.notebook import load_notebook
from nbops.model.python_source import cell_python
from nbops.run.home import Home

ROOT = Path(__file__).resolve().parent.parent
Cells = list[tuple[str, list[str]] | str]

SMALL: Cells = [
    ("factor = 3  # multiplier", ["parameters"]),
    ("import statistics\nOFFSET = 1", ["setup"]),
    ("values = [1.0, 2.0, 4.0]", ["step:load"]),
    ("scaled = [v * factor for v in values]", ["step:scale"]),
    ("def predict(x: float) -> float:\n    return x * max(scaled) + OFFSET", ["serve"]),
]


def schemas(cells: Cells) -> str:
    return render_service(pipeline(cells))["service/schemas.py"]


def python(root: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, **env}
    return subprocess.run(
        [sys.executable, *args], cwd=root, capture_output=True, text=True, env=environment
    )


# what the files are


def test_a_notebook_without_serve_cells_has_no_service() -> None:
    assert render_service(pipeline(SMALL[:4])) == {}


def test_the_service_is_a_package_of_modules_and_its_smoke_tests() -> None:
    files = render_service(pipeline(SMALL))
    # service/batching.py only when a serve function is tagged `batch` (tests/test_batching.py)
    assert sorted(files) == sorted({*SERVICE_FILES, *SERVICE_COPIES} - {BATCHING})
    assert files == render_service(pipeline(SMALL))  # pure: the same model, the same text


def test_the_serve_cells_read_setup_parameters_and_artifacts_from_where_they_live() -> None:
    endpoints = render_service(pipeline(SMALL))["service/endpoints.py"]
    assert "from pipeline.parameters import factor" not in endpoints  # read by the step only
    assert "from pipeline.shared import OFFSET\n" in endpoints
    assert '\nscaled = loaded("scale.scaled")\n' in endpoints
    assert "\n# cell 4 (id c4)\ndef predict(x: float) -> float:\n" in endpoints
    reading = [*SMALL[:4], ("def predict(x: int) -> float:\n    return x * factor", ["serve"])]
    assert (
        "from pipeline.parameters import factor\n"
        in render_service(pipeline(reading))["service/endpoints.py"]
    )


def test_example_calls_under_a_serve_cell_are_left_out_of_the_service() -> None:
    cells: Cells = [
        *SMALL,
        ("print('example')\npredict(2.0)\npredict(\n    3.0,\n)\nlast = predict(4.0)", []),
    ]
    endpoints = render_service(pipeline(cells))["service/endpoints.py"]
    assert endpoints.endswith(
        "# cell 5 (id c5)\n"
        "# Left out: the example calls of predict, made by the service per request.\n"
        "print('example')\n"
        "last = predict(4.0)\n"
    )


def test_each_function_gets_a_route_a_batch_route_and_its_docstring() -> None:
    cells: Cells = [
        *SMALL[:4],
        ('def predict(x: float) -> float:\n    """Scale x."""\n    return x', ["serve:v1/scale"]),
    ]
    routes = render_service(pipeline(cells))["service/routes.py"]
    assert '@router.post(\n    "/v1/scale",\n    response_model=PredictOutput,' in routes
    assert '    "/v1/scale/batch",\n    response_model=PredictBatchOutput,' in routes
    assert '    summary="predict(x: float) -> float",' in routes
    assert (
        '    """Scale x."""\n    try:\n'
        '        return {"result": await result_of(endpoints.predict, body)}\n'
        "    except Exception as error:\n"
        '        raise FunctionFailed("v1/scale") from error\n'
    ) in routes
    assert 'return await each(request, response, endpoints.predict, "v1/scale", body)' in routes


# type hints as request fields


TYPES = notebook_types(
    [
        cell_python(source).tree
        for source in (
            "from dataclasses import dataclass\nfrom datetime import date\n"
            "from typing import TypedDict\nfrom pydantic import BaseModel\nimport pandas as pd",
            "class Customer(BaseModel):\n    age: int\n\nclass Premium(Customer):\n    tier: int",
            "class Point(TypedDict):\n    x: int",
            "@dataclass(frozen=True)\nclass Box:\n    w: int",
            "class Helper:\n    pass",
        )
    ]
)


@pytest.mark.parametrize(
    ("hint", "text"),
    [
        ("dict", "dict"),
        ("dict[str, float]", "dict[str, float]"),
        ("list[int] | None", "list[int] | None"),
        ("Optional[tuple[int, ...]]", "Optional[tuple[int, ...]]"),
        ("Literal['a', -1]", 'Literal["a", -1]'),
        ("Customer", "shared.Customer"),
        ("list[Premium]", "list[shared.Premium]"),
        ("Point | None", "typed_dict(shared.Point) | None"),
        ("dict[str, Box]", "dict[str, shared.Box]"),
        ("date", "shared.date"),
    ],
)
def test_hints_json_can_carry_are_kept_with_the_notebooks_types_from_shared(
    hint: str, text: str
) -> None:
    assert field_type(hint, TYPES).text == text
    assert field_type(hint, TYPES).note == ""


@pytest.mark.parametrize(
    ("hint", "note"),
    [
        (None, "no type hint, so any JSON value"),
        (
            "pd.DataFrame",
            "`pd.DataFrame` has no JSON schema "
            "(pd.DataFrame is not a type of data the notebook defines)",
        ),
        (
            "list[Helper]",
            "`list[Helper]` has no JSON schema "
            "(Helper is not a type of data the notebook's setup defines)",
        ),
        (
            "Callable[[int], int]",
            "`Callable[[int], int]` has no JSON schema (Callable is not a "
            "type of data the notebook's setup defines)",
        ),
        ("'Customer'", "`'Customer'` has no JSON schema ('Customer' is not a type)"),
        ("Literal[x]", "`Literal[x]` has no JSON schema (Literal takes constants only)"),
    ],
)
def test_other_hints_take_any_json_value_and_say_why(hint: str | None, note: str) -> None:
    assert field_type(hint, TYPES) == field_type(hint, TYPES).__class__(
        "Any", frozenset({"Any"}), note
    )


def test_setup_types_are_the_data_classes_and_data_imports_only() -> None:
    names = frozenset({"Customer", "Premium", "Point", "Box", "date"})
    assert notebook_types([]) == NotebookTypes()
    assert NotebookTypes(names, frozenset({"Point"})) == TYPES


def test_arguments_become_fields_with_their_defaults_and_kinds() -> None:
    cells: Cells = [
        *SMALL[:4],
        (
            "LIMIT = 10",
            ["setup"],
        ),
        (
            "def predict(x: float, /, *rest: int, json: str = 'a', limit: int = LIMIT,"
            " **extra: bool) -> float:\n    return x",
            ["serve"],
        ),
    ]
    text = schemas(cells)
    assert (
        "    x: float\n"
        "    rest: list[int] = []\n"
        '    arg_json: str = Field("a", alias="json")\n'
        "    # Optional: left out, it is LIMIT, as the notebook's default says.\n"
        "    limit: int = None\n"
        "    extra: dict[str, bool] = {}\n"
    ) in text
    assert (
        "        return function(self.x, *self.rest, json=self.arg_json, "
        '**self.given("limit"), **self.extra)\n'
    ) in text


def test_a_positional_only_argument_with_a_computed_default_cannot_be_served() -> None:
    cells: Cells = [*SMALL[:4], ("def predict(x=max, /) -> float:\n    return 1.0", ["serve"])]
    with pytest.raises(PipelineError) as error:
        render_service(pipeline(cells))
    assert str(error.value) == (
        "cell 4 [serve]: serve function 'predict' cannot be served: its positional-only "
        "argument 'x' has a default that is not a literal (max), so a request cannot leave it "
        "out. Make the argument a normal one, or give it a literal default."
    )


def test_two_serve_functions_of_one_name_cannot_share_the_service() -> None:
    cells: Cells = [
        *SMALL[:4],
        ("def predict(x: float) -> float:\n    return x", ["serve:v1"]),
        ("def predict(x: float) -> float:\n    return 2 * x", ["serve:v2"]),
    ]
    # `nbops check` names the clash (test_batching); the build refuses the notebook.
    with pytest.raises(PipelineError, match="the notebook has 1 error"):
        render_service(pipeline(cells))


# the examples, written for real


@pytest.fixture(scope="module")
def examples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    roots: dict[str, Path] = {}
    for example in ("churn", "regression"):
        built = analyse(load_notebook(ROOT / "example_notebooks" / f"{example}.ipynb"))
        root = tmp_path_factory.mktemp(example)
        write_pipeline(built, root)
        write_service(built, root)
        for relative, text in render_service(built).items():
            assert (root / relative).read_text() == text, f"ruff format changed {relative}"
        roots[example] = root
    return roots


@pytest.mark.slow
@pytest.mark.parametrize("example", ["churn", "regression"])
def test_the_example_services_pass_ruff_and_import_without_nbops(
    examples: dict[str, Path], example: str, tmp_path: Path
) -> None:
    root = examples[example]
    config = ["--config", str(root / "ruff.toml"), "--no-cache", "service", "tests"]
    assert python(root, "-m", "ruff", "check", *config).returncode == 0
    assert python(root, "-m", "ruff", "format", "--check", *config).returncode == 0
    blocker = tmp_path / "blocker" / "nbops"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text('raise ImportError("a build must not import nbops")\n')
    imported = python(
        root, "-W", "error", "-c", "import service.main", PYTHONPATH=str(blocker.parent)
    )
    assert imported.returncode == 0, imported.stderr


# a build that cannot serve


START = """\
import json, sys
from pathlib import Path
from service.artifacts import start
ready = start(Path(sys.argv[1]), Path(sys.argv[2]))
print(json.dumps({"ready": ready.endpoints is not None, "reason": ready.reason}))
"""


@pytest.fixture(scope="module")
def small_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("small")
    notebook = root / "small.ipynb"
    notebook.write_text(json.dumps(notebook_json(SMALL)))
    out = root / "build" / "small"
    build(analyse(load_notebook(notebook)), out=out, home=Home(root / ".nbops"))
    return out


def started(root: Path, manifest: Path | None = None) -> dict[str, object]:
    done = python(root, "-c", START, str(manifest or root / "nbops.json"), str(root / "artifacts"))
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


@pytest.mark.slow
def test_a_build_with_its_artifacts_is_ready(small_build: Path) -> None:
    assert started(small_build) == {"ready": True, "reason": ""}


@pytest.mark.slow
def test_a_missing_artifact_or_manifest_is_the_reason_it_is_not_ready(
    small_build: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "small"
    shutil.copytree(small_build, copy)
    entry = json.loads((copy / "nbops.json").read_text())["artifacts"]["scale.scaled"]
    (copy / entry["file"]).unlink()
    assert started(copy) == {
        "ready": False,
        "reason": f"artifact scale.scaled is missing: {copy / entry['file']} "
        "(No such file or directory)",
    }
    manifest = json.loads((copy / "nbops.json").read_text())
    del manifest["artifacts"]["scale.scaled"]
    (tmp_path / "old.json").write_text(json.dumps(manifest))
    assert started(copy, tmp_path / "old.json") == {
        "ready": False,
        "reason": "artifact scale.scaled is not listed in nbops.json; build again with nbops build",
    }
    assert started(copy, tmp_path / "none.json") == {
        "ready": False,
        "reason": f"the build's manifest {tmp_path / 'none.json'} cannot be read "
        "(No such file or directory)",
    }


@pytest.mark.slow
def test_serve_code_that_raises_on_import_is_the_reason_it_is_not_ready(tmp_path: Path) -> None:
    cells: Cells = [
        SMALL[2],
        ("def predict(x: float) -> float:\n    return x", ["serve"]),
        ("ratio = 1 / 0", []),  # continues the serve cell: runs when the service imports it
    ]
    built = pipeline(cells)
    write_pipeline(built, tmp_path)
    write_service(built, tmp_path)
    (tmp_path / "nbops.json").write_text(json.dumps({"artifacts": {}}))
    assert started(tmp_path) == {
        "ready": False,
        "reason": "the serve cells raised ZeroDivisionError when imported: division by zero",
    }


@pytest.mark.slow
def test_build_check_covers_the_service(small_build: Path, tmp_path: Path) -> None:
    copy = tmp_path / "small"
    shutil.copytree(small_build, copy)
    routes = copy / "service" / "routes.py"
    routes.write_text(routes.read_text() + "\n# edited by hand\n")
    stale = check_build(analyse(load_notebook(small_build.parent.parent / "small.ipynb")), copy)
    assert stale == [str(routes)]
