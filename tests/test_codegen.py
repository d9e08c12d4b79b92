"""Generated pipeline packages: what the modules say, and that they lint, import and run.

The tiny notebooks here show one behaviour each; the examples are built for real at the end
(marked slow): ruff-clean, importable, runnable without nbops, deterministic.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from builders import pipeline

from nbops.build.codegen import python_literal, render_pipeline, render_tests, write_pipeline
from nbops.errors import PipelineError
from nbops.model.analysis import analyse
from nbops.model.notebook import load_notebook

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ("churn", "kale_dialect", "regression")
Cells = list[tuple[str, list[str]] | str]

PARAMETERS = (
    "n = 3  # how many\nrate = 0.5  # how fast\nnames: list[str] = ['a']  # who\nlabel = 'x'",
    ["parameters"],
)
SETUP = ("import math\nOFFSET = 10\n\ndef double(x):\n    return 2 * x", ["setup"])


def render(cells: Cells) -> dict[str, str]:
    built = pipeline(cells)
    return {**render_pipeline(built), **render_tests(built)}


def function_of(text: str, name: str) -> ast.FunctionDef:
    return next(
        node
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.FunctionDef) and node.name == name
    )


def signature(text: str, name: str) -> str:
    function = function_of(text, name)
    return ast.unparse(function.args) + " -> " + ast.unparse(function.returns or ast.Constant(None))


def import_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(("import ", "from "))]


def python(
    root: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=root, capture_output=True, text=True, env=env, timeout=300
    )


@pytest.fixture
def without_nbops(tmp_path: Path) -> dict[str, str]:
    """An environment where `import nbops` fails: a build must run with what it pins alone."""
    blocker = tmp_path / "blocker" / "nbops"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text('raise ImportError("a build must not import nbops")\n')
    return {**os.environ, "PYTHONPATH": str(blocker.parent)}


@pytest.fixture
def build(tmp_path: Path) -> Callable[[Cells], Path]:
    def make(cells: Cells) -> Path:
        root = tmp_path / "build"
        write_pipeline(pipeline(cells), root)
        return root

    return make


# what the files are


def test_a_build_has_one_module_per_step_and_the_fixed_files() -> None:
    churn = analyse(load_notebook(ROOT / "example_notebooks" / "churn.ipynb"))
    assert list(render_pipeline(churn)) == [
        "pipeline/__init__.py",
        "pipeline/__main__.py",
        "pipeline/capture.py",
        "pipeline/dag.py",
        "pipeline/metric_values.py",
        "pipeline/metrics.py",
        "pipeline/parameters.py",
        "pipeline/runner.py",
        "pipeline/shared.py",
        "pipeline/steps/__init__.py",
        "pipeline/steps/evaluate.py",
        "pipeline/steps/features.py",
        "pipeline/steps/load.py",
        "pipeline/steps/report.py",
        "pipeline/steps/train.py",
        "pipeline/store.py",
        "pipeline/task.py",
        "ruff.toml",
    ]
    assert list(render_tests(churn)) == [
        "tests/conftest.py",
        "tests/test_features.py",
        "tests/test_report.py",
        "tests/test_train.py",
    ]


def test_rendering_is_deterministic_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    churn = analyse(load_notebook(ROOT / "example_notebooks" / "churn.ipynb"))
    first = {**render_pipeline(churn), **render_tests(churn)}
    assert first == {**render_pipeline(churn), **render_tests(churn)}
    assert list(tmp_path.iterdir()) == []


def test_a_notebook_with_errors_is_refused() -> None:
    broken = pipeline([("y = x + 1", ["step:a"])])
    with pytest.raises(PipelineError) as caught:
        render_pipeline(broken)
    assert str(caught.value) == (
        "nb.ipynb: the notebook has 1 error, so nbops cannot generate its pipeline. "
        "Run `nbops check nb.ipynb` and fix them."
    )


# step functions


def test_a_step_takes_its_inputs_and_the_parameters_it_reads_as_typed_keywords() -> None:
    files = render(
        [
            PARAMETERS,
            SETUP,
            ("x = double(n)", ["step:make"]),
            ("y = math.floor(x * rate) + OFFSET + len(names) + len(label)", ["step:use"]),
            ("assert y", ["test"]),
        ]
    )
    use = files["pipeline/steps/use.py"]
    assert signature(use, "use") == (
        "*, x: Any, rate: float, names: Any, label: str -> dict[str, Any]"
    )
    assert import_lines(use) == [
        "from typing import Any",
        "from ..shared import OFFSET, math",
    ]
    assert import_lines(files["pipeline/steps/make.py"]) == [
        "from typing import Any",
        "from ..shared import double",
    ]
    assert "        x: made by step make\n" in use
    assert "        rate: how fast\n" in use
    assert "        y: read by the tests\n" in use
    assert use.rstrip().endswith('return {"y": y}')


def test_a_step_without_arguments_takes_none() -> None:
    files = render([("x = 1", ["step:make"]), ("y = x", ["step:use"]), ("assert y", ["test"])])
    assert signature(files["pipeline/steps/make.py"], "make") == " -> dict[str, Any]"


def test_each_function_names_its_cells_by_index_and_id() -> None:
    files = render(
        [
            SETUP,
            ("x = 1", ["step:make"]),
            "# md between",
            "y = x + 1",
            ("assert y == 2", ["test"]),
            ("total = float(y)", ["metrics"]),
        ]
    )
    assert (
        "\n    # cell 1 (id c1)\n    x = 1\n\n    # cell 3 (id c3)\n    y = x + 1\n"
        in (files["pipeline/steps/make.py"])
    )
    assert "\n# cell 0 (id c0)\nimport math\n" in files["pipeline/shared.py"]
    assert "\n    # cell 4 (id c4)\n    assert y == 2\n" in files["tests/test_make.py"]
    assert "\n    # cell 5 (id c5)\n    total = float(y)\n" in files["pipeline/metrics.py"]
    assert "cells 1 and 3 of nb.ipynb" in files["pipeline/steps/make.py"]


def test_a_step_reading_an_artifact_it_rewrites_gets_it_as_an_argument(
    build: Callable[[Cells], Path],
) -> None:
    cells: Cells = [
        ("rows = [1, 2]", ["step:load"]),
        ("rows = rows + [3]\nrows.append(4)", ["step:grow"]),
        ("assert rows == [1, 2, 3, 4]", ["test"]),
    ]
    files = render(cells)
    assert signature(files["pipeline/steps/grow.py"], "grow") == "*, rows: Any -> dict[str, Any]"
    result = python(build(cells), "-m", "pipeline", "--json")
    assert result.returncode == 0, result.stderr
    assert list(json.loads(result.stdout)["steps"]) == ["load", "grow"]


def test_names_a_step_reads_and_then_assigns_start_from_their_notebook_values(
    build: Callable[[Cells], Path],
) -> None:
    cells: Cells = [
        ("total = 1", ["setup"]),
        ("values = [1, 2]\nsum = sum(values)\ntotal = total + sum", ["step:sum"]),
        ("assert (sum, total) == (3, 4)", ["test"]),
    ]
    step = render(cells)["pipeline/steps/sum.py"]
    assert import_lines(step) == [
        "import builtins",
        "from typing import Any",
        "from .. import shared",
    ]
    assert "    sum = builtins.sum\n    total = shared.total\n" in step
    result = python(build(cells), "-m", "pipeline", "--json")
    assert result.returncode == 0, result.stderr


def test_multiline_strings_in_a_step_keep_their_value(build: Callable[[Cells], Path]) -> None:
    source = 'text = """\nfirst\n    second\n"""\nlines = text.splitlines()'
    root = build([(source, ["step:make"]), ("assert lines", ["test"])])
    check = "from pipeline.steps.make import make; print(repr(make()['lines']))"
    result = python(root, "-c", check)
    assert result.stdout.strip() == "['', 'first', '    second']", result.stderr


def test_ipython_syntax_in_a_step_becomes_plain_python_with_its_imports() -> None:
    step = render(
        [("!echo hello\nx = 1\n%matplotlib inline", ["step:make"]), ("assert x", ["test"])]
    )["pipeline/steps/make.py"]
    assert import_lines(step)[0] == "import subprocess"
    assert (
        '    print(\n        subprocess.run(\n            "echo hello",\n            shell=True,\n'
        "            check=True,\n            stdout=subprocess.PIPE,\n"
        "            stderr=subprocess.STDOUT,\n            text=True,\n"
        '        ).stdout,\n        end="",\n    )\n'
    ) in step
    assert "    pass  # IPython magic left out: %matplotlib inline\n" in step


# setup, parameters, metrics, tests, dag


def test_setup_is_kept_once_and_lists_the_names_it_defines() -> None:
    shared = render([SETUP, ("x = double(2)", ["step:a"]), ("assert x", ["test"])])[
        "pipeline/shared.py"
    ]
    assert "def double(x):\n    return 2 * x\n" in shared
    assert shared.endswith('__all__ = [\n    "OFFSET",\n    "double",\n    "math",\n]\n')


def test_setup_reading_a_parameter_sees_its_override(build: Callable[[Cells], Path]) -> None:
    cells: Cells = [
        ("n = 3  # how many", ["parameters"]),
        ("LIMIT = n * 10", ["setup"]),
        ("x = LIMIT", ["step:a"]),
        ("result = float(x)", ["metrics"]),
    ]
    assert "from .parameters import n\n" in render(cells)["pipeline/shared.py"]
    result = python(build(cells), "-m", "pipeline", "--json", "--param", "n=5")
    assert json.loads(result.stdout)["metrics"] == {"result": 50.0}, result.stderr


def test_parameters_are_typed_constants_with_their_help_and_a_dict() -> None:
    parameters = render([PARAMETERS, ("x = n", ["step:a"]), ("assert x", ["test"])])[
        "pipeline/parameters.py"
    ]
    assert "\nn: int = 3  # how many\n" in parameters
    assert '\nnames: Any = ["a"]  # who\n' in parameters
    assert '\nlabel: str = "x"\n' in parameters
    assert '\nPARAMETERS: dict[str, Any] = {\n    "n": n,\n' in parameters


@pytest.mark.parametrize(
    "value",
    [0.2, 1e-05, -3, True, None, "it's", 'say "hi"', [1, (2,)], {"a": [None]}, (), (1, 2), {3, 1}],
)
def test_parameter_defaults_are_written_as_python_literals(value: Any) -> None:
    assert ast.literal_eval(python_literal(value)) == value


def test_metrics_return_the_values_named_and_are_left_out_without_a_metrics_cell() -> None:
    files = render([("a = 1", ["step:s"]), ("score = a * 2\nother = 3", ["metrics"])])
    metrics = files["pipeline/metrics.py"]
    assert signature(metrics, "compute_metrics") == "*, a: Any -> dict[str, Any]"
    assert '        "score": score,\n        "other": other,\n' in metrics  # judged by __main__
    assert '    names=("score", "other"),\n' in files["pipeline/dag.py"]
    plain = render([("a = 1", ["step:s"]), ("assert a", ["test"])])
    assert "pipeline/metrics.py" not in plain
    assert "METRICS: Metrics | None = None\n" in plain["pipeline/dag.py"]


def test_tests_are_one_function_per_test_section_grouped_by_step() -> None:
    files = render(
        [
            ("n = 2", ["parameters"]),
            ("a = n", ["step:first"]),
            ("assert a == n", ["test"]),
            ("b = a", ["step:second"]),
            ("assert b", ["test"]),
            "c = b",
            ("assert a", ["test:first"]),
            ("# nothing to check yet", ["test:second"]),
        ]
    )
    assert sorted(p for p in files if p.startswith("tests/")) == [
        "tests/conftest.py",
        "tests/test_first.py",
        "tests/test_second.py",
    ]
    first = files["tests/test_first.py"]
    assert [f.name for f in ast.parse(first).body if isinstance(f, ast.FunctionDef)] == [
        "test_cell_2_first",
        "test_cell_6_first",
    ]
    assert (
        "def test_cell_2_first(artifacts: Mapping[str, Any], parameters: Mapping[str, Any])"
        " -> None:\n"
        '    a = artifacts["first.a"]\n    n = parameters["n"]\n'
    ) in first
    second = files["tests/test_second.py"]
    assert "def test_cell_7_second() -> None:\n    # cell 7 (id c7)\n    # nothing" in second
    assert second.endswith("    pass\n")


def test_no_tests_means_no_tests_folder() -> None:
    assert render_tests(pipeline([("a = 1", ["step:s"]), ("m = float(a)", ["metrics"])])) == {}


def test_the_dag_lists_steps_inputs_outputs_and_edges_including_after() -> None:
    dag = render(
        [
            ("a = 1", ["step:first"]),
            ("b = a", ["step:second"]),
            ("c = b", ["step:third", "after:first"]),
            ("assert c", ["test"]),
        ]
    )["pipeline/dag.py"]
    assert (
        '    Step(\n        name="second",\n        module="second",\n        function="second",\n'
        '        cells=(1,),\n        inputs={"a": "first"},\n        parameters=(),\n'
        '        outputs=("b",),\n    ),\n'
    ) in dag
    assert (
        "EDGES: tuple[tuple[str, str, tuple[str, ...]], ...] = (\n"
        '    ("first", "second", ("a",)),\n'
        '    ("first", "third", ()),\n'
        '    ("second", "third", ("b",)),\n'
        ")\n"
    ) in dag


def test_importing_the_dag_imports_no_step(build: Callable[[Cells], Path]) -> None:
    root = build([("import json\na = 1", ["step:first"]), ("assert a", ["test"])])
    check = "import sys, pipeline.dag; print(sorted(m for m in sys.modules if 'steps' in m))"
    assert python(root, "-c", check).stdout.strip() == "[]"


# the command line


@pytest.fixture
def tiny(build: Callable[[Cells], Path]) -> Path:
    return build(
        [
            ("n = 2  # how many\nrate = 0.5\nname = 'x'", ["parameters"]),
            ("values = list(range(n))\nprint('made', values)\n!echo shell says hi", ["step:make"]),
            ("total = sum(values) * rate\nassert name", ["step:add"]),
            ("result = float(total)", ["metrics"]),
        ]
    )


def test_the_cli_prints_a_line_per_step_and_the_metrics(tiny: Path) -> None:
    result = python(tiny, "-m", "pipeline", "--param", "n=4", "--store", "store")
    assert [re.sub(r"\d+\.\d\d s", "N s", line) for line in result.stdout.splitlines()] == [
        "make     N s  values",
        "add      N s  total",
        "result = 3",
        "artifacts stored in store, logs in .pipeline-logs",
    ], result.stderr
    assert (tiny / "store").is_dir()


def test_what_steps_print_and_their_shell_commands_write_goes_to_the_steps_log(
    tiny: Path,
) -> None:
    result = python(tiny, "-m", "pipeline", "--logs", "logs")
    assert (result.returncode, result.stderr) == (0, "")
    logs = {path.name: path.read_text() for path in (tiny / "logs").iterdir()}
    assert logs == {
        "setup.log": "",
        "make.log": "made [0, 1]\nshell says hi\n",
        "add.log": "",
        "metrics.log": "",
    }


def test_json_output_is_only_json_even_when_steps_print(tiny: Path) -> None:
    result = python(tiny, "-m", "pipeline", "--json")
    data = json.loads(result.stdout)
    assert list(data) == ["steps", "metrics", "metric_problems"]
    assert list(data["steps"]["make"]) == ["values"]
    assert re.fullmatch(r"[0-9a-f]{64}", data["steps"]["make"]["values"])
    assert data["metrics"] == {"result": 0.5}
    assert result.stderr == ""  # what the steps print is in their logs


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        (
            "rat=1",
            "there is no parameter 'rat'; did you mean 'rate'? parameters are: n, rate, name",
        ),
        ("n=many", "parameter 'n' is int (default 2), and 'many' is not"),
        ("n", "--param 'n' is not NAME=VALUE"),
    ],
)
def test_the_cli_rejects_bad_parameters_clearly(tiny: Path, argument: str, message: str) -> None:
    result = python(tiny, "-m", "pipeline", "--param", argument)
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == f"python -m pipeline: error: {message}"


def test_parameter_values_are_typed_like_their_defaults(tiny: Path) -> None:
    check = (
        "from pipeline.runner import parse_parameter;"
        "print([parse_parameter(t) for t in ('rate=1', 'name=7', 'n=5', 'name=two words')])"
    )
    assert python(tiny, "-c", check).stdout.strip() == (
        "[('rate', 1.0), ('name', '7'), ('n', 5), ('name', 'two words')]"
    )


def test_a_failing_step_names_its_cell_and_exits_1(build: Callable[[Cells], Path]) -> None:
    root = build([("a = 1", ["step:ok"]), ("b = a / 0", ["step:bad"]), ("assert b", ["test"])])
    result = python(root, "-m", "pipeline")
    assert result.returncode == 1
    assert "ZeroDivisionError" in result.stderr
    assert result.stderr.splitlines()[-1] == (
        "error: step 'bad' (notebook cell 1) raised ZeroDivisionError: division by zero"
    )


# writing and templates


def test_write_pipeline_writes_every_file_and_formats_the_cells(tmp_path: Path) -> None:
    built = pipeline([("x = {'a':1}", ["step:make"]), ("assert x", ["test"])])
    written = write_pipeline(built, tmp_path)
    expected = {**render_pipeline(built), **render_tests(built)}
    assert sorted(p.relative_to(tmp_path).as_posix() for p in written) == sorted(expected)
    assert '    x = {"a": 1}\n' in (tmp_path / "pipeline/steps/make.py").read_text()


# the examples, built for real


@dataclass
class Build:
    root: Path
    rendered: dict[str, str]
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def run(self, store: str, env: dict[str, str] | None = None) -> dict[str, Any]:
        """`python -m pipeline --json` into `store` (once per store), as parsed JSON."""
        if store not in self.runs:
            result = python(self.root, "-m", "pipeline", "--json", "--store", store, env=env)
            assert result.returncode == 0, result.stderr
            self.runs[store] = json.loads(result.stdout)
        return self.runs[store]


@pytest.fixture(scope="module")
def examples(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Build]]:
    builds: dict[str, Build] = {}
    for example in EXAMPLES:
        built = analyse(load_notebook(ROOT / "example_notebooks" / f"{example}.ipynb"))
        root = tmp_path_factory.mktemp(example)
        write_pipeline(built, root)
        builds[example] = Build(root, {**render_pipeline(built), **render_tests(built)})
    yield builds


@pytest.mark.slow
@pytest.mark.parametrize("example", EXAMPLES)
def test_example_templates_write_code_ruff_format_leaves_alone(
    examples: dict[str, Build], example: str
) -> None:
    build = examples[example]
    for relative, text in build.rendered.items():
        assert (build.root / relative).read_text() == text, relative


@pytest.mark.slow
@pytest.mark.parametrize("example", EXAMPLES)
def test_example_builds_pass_ruff_check_and_format_check(
    examples: dict[str, Build], example: str
) -> None:
    root = examples[example].root
    config = ["--config", str(root / "ruff.toml"), "--no-cache"]
    check = python(root, "-m", "ruff", "check", *config, ".")
    assert check.returncode == 0, check.stdout
    formatted = python(root, "-m", "ruff", "format", "--check", *config, ".")
    assert formatted.returncode == 0, formatted.stdout


@pytest.mark.slow
@pytest.mark.parametrize("example", EXAMPLES)
def test_example_builds_import_cleanly(
    examples: dict[str, Build], example: str, without_nbops: dict[str, str]
) -> None:
    root = examples[example].root
    modules = ["pipeline.dag", "pipeline.__main__"] + [
        f"pipeline.steps.{path.stem}"
        for path in sorted((root / "pipeline" / "steps").glob("*.py"))
        if path.stem != "__init__"
    ]
    if (root / "pipeline" / "metrics.py").exists():
        modules.append("pipeline.metrics")
    result = python(root, "-W", "error", "-c", f"import {', '.join(modules)}", env=without_nbops)
    assert result.returncode == 0, result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("example", EXAMPLES)
def test_example_pipelines_run_end_to_end_without_nbops(
    examples: dict[str, Build], example: str, without_nbops: dict[str, str]
) -> None:
    build = examples[example]
    result = build.run("store", env=without_nbops)
    dag = build.rendered["pipeline/dag.py"]
    assert list(result["steps"]) == re.findall(r'^        name="(\w+)",$', dag, re.MULTILINE)
    hashes = [h for artifacts in result["steps"].values() for h in artifacts.values()]
    assert hashes and all(re.fullmatch(r"[0-9a-f]{64}", h) for h in hashes)
    assert all(isinstance(v, float) for v in result["metrics"].values())
    assert result["metrics"]


@pytest.mark.slow
def test_the_churn_pipeline_gives_the_same_hashes_twice(examples: dict[str, Build]) -> None:
    churn = examples["churn"]
    assert churn.run("store") == churn.run("second-store")


@pytest.mark.slow
@pytest.mark.parametrize("example", ["churn", "regression"])
def test_the_generated_tests_pass_on_a_runs_artifacts(
    examples: dict[str, Build], example: str
) -> None:
    build = examples[example]
    result = build.run("store")
    store = build.root / "store"
    index = {
        f"{step}.{name}": {"sha256": digest, "format": _format_of(store, digest)}
        for step, artifacts in result["steps"].items()
        for name, digest in artifacts.items()
    }
    (build.root / "tests" / "artifacts.json").write_text(json.dumps(index))
    env = {**os.environ, "NBOPS_STORE": str(store)}
    tests = python(build.root, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests", env=env)
    assert tests.returncode == 0, tests.stdout
    assert " passed" in tests.stdout


def test_generated_tests_compare_against_the_runs_parameters(
    build: Callable[[Cells], Path],
) -> None:
    root = build(
        [
            ("n = 2", ["parameters"]),
            ("values = list(range(n))", ["step:make"]),
            ("assert len(values) == n", ["test"]),
        ]
    )
    result = json.loads(python(root, "-m", "pipeline", "--json", "--param", "n=5").stdout)
    digest = result["steps"]["make"]["values"]
    index = {
        "make.values": {"sha256": digest, "format": _format_of(root / ".pipeline-store", digest)}
    }
    (root / "tests" / "artifacts.json").write_text(json.dumps(index))
    env = {**os.environ, "NBOPS_STORE": str(root / ".pipeline-store")}
    pytest_run = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"]
    failed = subprocess.run(pytest_run, cwd=root, env=env, capture_output=True, text=True)
    assert failed.returncode == 1, failed.stdout  # the defaults say n = 2
    (root / "tests" / "parameters.json").write_text(json.dumps({"n": 5}))
    passed = subprocess.run(pytest_run, cwd=root, env=env, capture_output=True, text=True)
    assert passed.returncode == 0, passed.stdout


def _format_of(store: Path, digest: str) -> str:
    """The store names files `<sha[:2]>/<sha>.<format>`; the run's JSON gives only the sha."""
    return next((store / digest[:2]).glob(f"{digest}.*")).suffix.lstrip(".")
