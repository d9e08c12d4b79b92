"""The Pipeline model built from tagged cells: steps, edges, parameters, endpoints, diagnostics."""

from __future__ import annotations

from pathlib import Path

import pytest
from builders import messages, pipeline

from nbops.model.analysis import analyse
from nbops.model.notebook import load_notebook
from nbops.model.pipeline import Argument, Edge

EXAMPLES = Path(__file__).parent.parent / "example_notebooks"

UNUSED_FIX = (
    "Read its outputs in a later step, test, metrics or serve cell, "
    "or tag the cell 'skip' if it is exploration."
)


def errors(cells: list) -> list[str]:
    return [m for m in messages(pipeline(cells)) if m.startswith("error")]


# dependencies


def test_a_step_depends_on_the_latest_earlier_step_that_wrote_what_it_reads() -> None:
    p = pipeline(
        [
            ("x = 1", ["step:first"]),
            ("x = x + 1\ny = 2", ["step:second"]),
            ("z = x * y", ["step:third"]),
            ("print(z)", ["test"]),
        ]
    )
    assert p.edges == (
        Edge("first", "second", ("x",)),
        Edge("second", "third", ("x", "y")),
    )
    assert p.step("third").inputs == ("x", "y")
    assert p.step("second").outputs == ("x", "y")
    assert p.diagnostics == ()


def test_setup_and_parameter_names_are_available_to_all_steps_but_are_not_artifacts() -> None:
    p = pipeline(
        [
            ("n = 3  # how many", ["parameters"]),
            ("import math\nK = 2", ["setup"]),
            ("a = math.sqrt(n) * K", ["step:compute"]),
            ("b = a + n", ["step:use"]),
            ("assert b", ["test"]),
        ]
    )
    assert p.edges == (Edge("compute", "use", ("a",)),)
    assert p.step("compute").parameters == ("n",)
    assert p.step("compute").reads == ("math", "n", "K")
    assert [ref.index for ref in p.setup] == [1]
    assert p.diagnostics == ()


def test_untagged_cells_continue_the_step_above_and_markdown_does_not_break_it() -> None:
    p = pipeline(
        [
            ("a = 1", ["step:load"]),
            "# md some prose",
            "b = a + 1",
            ("c = b", ["step:use"]),
            ("print(c)", ["test"]),
        ]
    )
    assert [ref.index for ref in p.step("load").cells] == [0, 2]
    assert p.step("load").writes == ("a", "b")
    assert p.edges == (Edge("load", "use", ("b",)),)


def test_in_place_mutation_makes_the_mutating_step_the_producer() -> None:
    p = pipeline(
        [
            ("import pandas as pd\nimport numpy as np", ["setup"]),
            ("df = pd.DataFrame({'a': [1]})", ["step:load"]),
            ("df['b'] = np.append(df['a'], 1)[:1]", ["step:features"]),
            ("model = object()", ["step:make"]),
            ("total = len(df)", ["step:train"]),
            ("print(total, model)", ["test"]),
        ]
    )
    assert Edge("features", "train", ("df",)) in p.edges
    assert Edge("load", "features", ("df",)) in p.edges
    assert "np" not in p.step("features").writes  # a module's function is not a mutation of it


def test_after_adds_an_ordering_edge_with_no_artifacts() -> None:
    p = pipeline(
        [
            ("a = 1", ["step:evaluate"]),
            ("b = 2", ["step:report", "after:evaluate"]),
            ("print(a, b)", ["test"]),
        ]
    )
    assert p.edges == (Edge("evaluate", "report", (), kind="after"),)
    assert p.step("report").after == ("evaluate",)


def test_a_written_file_is_noted_on_the_step() -> None:
    p = pipeline(
        [
            ("a = 1", ["step:s"]),
            "%%writefile config.yaml\nkey: value\n",
            ("print(a)", ["test"]),
        ]
    )
    assert p.step("s").files_written == ("config.yaml",)


# parameters


def test_parameters_carry_default_type_and_help_from_the_trailing_comment() -> None:
    p = pipeline(
        [
            (
                "n_estimators = 100  # trees in the forest\n"
                "rate: float = 1  # learning rate\n"
                "name = 'churn'\n"
                "layers = [1, 2]  # sizes\n"
                "flag = None",
                ["parameters"],
            ),
            ("x = n_estimators", ["step:s"]),
        ]
    )
    assert [(q.name, q.default, q.type, q.help) for q in p.parameters] == [
        ("n_estimators", 100, "int", "trees in the forest"),
        ("rate", 1, "float", "learning rate"),
        ("name", "churn", "str", ""),
        ("layers", [1, 2], "list", "sizes"),
        ("flag", None, "None", ""),
    ]


def test_papermill_injected_parameters_override_defaults_and_keep_the_help() -> None:
    p = pipeline(
        [
            ("n = 1  # how many", ["parameters"]),
            ("n = 5\n", ["injected-parameters"]),
            ("x = n", ["step:s"]),
        ]
    )
    assert [(q.name, q.default, q.help) for q in p.parameters] == [("n", 5, "how many")]
    assert errors([("n = 1", ["parameters"]), ("n = 5", ["injected-parameters"])]) == []


# endpoints


def test_a_serve_function_becomes_an_endpoint_with_its_signature_and_artifacts() -> None:
    p = pipeline(
        [
            ("import math", ["setup"]),
            ("model = 2\ncolumns = ['a']", ["step:train"]),
            (
                "def _prepare(x):\n"
                "    return [x[c] for c in columns]\n"
                "\n"
                "def predict(features: dict, *, scale: float = 1.0) -> float:\n"
                '    """Score one row."""\n'
                "    return model * math.fsum(_prepare(features)) * scale\n",
                ["serve:score"],
            ),
        ]
    )
    (endpoint,) = p.endpoints
    assert (endpoint.name, endpoint.route, endpoint.docstring) == (
        "predict",
        "score",
        "Score one row.",
    )
    assert endpoint.arguments == (
        Argument("features", "dict"),
        Argument("scale", "float", "1.0", "keyword_only"),
    )
    assert endpoint.returns == "float"
    assert endpoint.signature() == "predict(features: dict, *, scale: float = 1.0) -> float"
    assert set(endpoint.artifacts) == {"model", "columns"}  # columns through the helper
    assert p.step("train").outputs == ("model", "columns")


def test_serve_route_defaults_to_the_function_name() -> None:
    p = pipeline([("m = 1", ["step:s"]), ("def classify(x: int) -> int:\n    return m", ["serve"])])
    assert [e.route for e in p.endpoints] == ["classify"]


# tests and metrics


def test_test_cells_attach_to_the_step_above_or_the_one_named() -> None:
    p = pipeline(
        [
            ("a = 1", ["step:load"]),
            ("b = a", ["step:train"]),
            ("assert b", ["test"]),
            ("assert a", ["test:load"]),
        ]
    )
    assert [(t.step, [c.index for c in t.cells]) for t in p.tests] == [
        ("train", [2]),
        ("load", [3]),
    ]


def test_metrics_are_the_names_assigned_or_listed_kale_style() -> None:
    p = pipeline(
        [
            ("acc = 0.9\nf1 = 0.8", ["step:s"]),
            ("accuracy = float(acc)", ["metrics"]),
            ("f1", ["pipeline-metrics"]),
        ]
    )
    assert p.metrics.names == ("accuracy", "f1")
    assert [c.index for c in p.metrics.cells] == [1, 2]


# diagnostics: each one, with its exact message and fix


@pytest.mark.parametrize(
    ("cells", "expected"),
    [
        pytest.param(
            [("x = (\n", ["step:a"])],
            "error cell 0 line 1: syntax error: '(' was never closed; nbops cannot see what "
            "this cell reads or writes. | Fix the syntax (run the cell to see Python's message).",
            id="syntax-error",
        ),
        pytest.param(
            [("y = X_tset + 1", ["step:a"]), ("print(y)", ["test"])],
            "error cell 0 line 1: 'X_tset' is read but no earlier step, setup or parameters cell "
            "writes it. | Define it in the setup cell or an earlier step, or check the spelling.",
            id="undefined-name",
        ),
        pytest.param(
            [("X_test = 1", ["step:a"]), ("y = X_tset + 1", ["step:b"]), ("print(y)", ["test"])],
            "error cell 1 line 1: 'X_tset' is read but no earlier step, setup or parameters cell "
            "writes it. | Did you mean 'X_test'?",
            id="undefined-name-spelling",
        ),
        pytest.param(
            [("y = z + 1", ["step:a"]), ("z = y", ["step:b"]), ("print(z)", ["test"])],
            "error cell 0 line 1: 'z' is read here but only cell 1, further down, writes it. "
            "| Move this cell below cell 1, or compute 'z' earlier.",
            id="read-before-written",
        ),
        pytest.param(
            [
                "import pandas as pd",
                ("df = pd.DataFrame()", ["step:load"]),
                ("print(df)", ["test"]),
            ],
            "error cell 1 line 1: 'pd' is read here but only cell 0 (untagged, so in no step) "
            "writes it. | Tag cell 0 'setup' or make it a step, so steps can read 'pd'.",
            id="defined-only-in-untagged-cell",
        ),
        pytest.param(
            [("z = 1", ["skip"]), ("y = z", ["step:a"]), ("print(y)", ["test"])],
            "error cell 1 line 1: 'z' is read here but only cell 0 (skip) writes it. "
            "| Tag cell 0 'setup' or make it a step, so steps can read 'z'.",
            id="defined-only-in-skipped-cell",
        ),
        pytest.param(
            [("a = 1", ["step:data-loading"]), ("b = a", ["step:data_loading"]), "print(b)"],
            "error cell 1 line None: step names 'data-loading' (cell 0) and 'data_loading' both "
            "become the Python name 'data_loading'; nbops calls this one 'data_loading_2'. "
            "| Rename one of them, e.g. 'step:data_loading_2'.",
            id="step-names-clash-as-identifiers",
        ),
        pytest.param(
            [("n = 1\nm = k * 2", ["parameters"]), ("a = m", ["step:s"]), "print(a)"],
            "error cell 0 line None: the parameters cell reads 'k', but it runs before setup and "
            "every step, so only parameters and builtins exist there. | Compute the value in the "
            "setup cell or a step instead.",
            id="parameters-cell-reads-unknown-name",
        ),
        pytest.param(
            [
                ("a = 1", ["step:load"]),
                ("b = a", ["step:train", "after:lod"]),
                ("print(b)", ["test"]),
            ],
            "error cell 1 line None: 'after:lod' names no step. | Did you mean 'load'?",
            id="after-unknown-step",
        ),
        pytest.param(
            [("a = 1", ["step:load"]), ("assert a", ["test:lod"])],
            "error cell 1 line None: 'test:lod' names no step. | Did you mean 'load'?",
            id="test-unknown-step",
        ),
        pytest.param(
            [
                ("a = 1", ["step:load", "after:train"]),
                ("b = a", ["step:train"]),
                ("print(b)", ["test"]),
            ],
            "error cell 0 line None: 'after:train' makes a cycle: load -> train -> load. "
            "| Remove 'after:train'; a step cannot wait for one that depends on it.",
            id="cycle-through-after",
        ),
        pytest.param(
            [("a = 1", ["step:load", "after:load"]), ("print(a)", ["test"])],
            "error cell 0 line None: 'after:load' makes a cycle: load -> load. "
            "| Remove 'after:load'; a step cannot wait for one that depends on it.",
            id="after-itself",
        ),
        pytest.param(
            [
                ("a = 1", ["step:load", "after:report"]),
                ("b = 1", ["step:report"]),
                ("print(a, b)", ["test"]),
            ],
            "error cell 0 line None: 'after:report' names a step further down; steps run in "
            "notebook order. | Move step 'report' above this cell, or drop the tag.",
            id="after-later-step",
        ),
        pytest.param(
            [("n = 1", ["parameters"]), ("m = 2", ["parameters"]), ("a = n + m", ["step:s"])],
            "error cell 1 line 1: there is more than one parameters cell; papermill injects after "
            "the first only. | Merge the parameters into one cell.",
            id="two-parameters-cells",
        ),
        pytest.param(
            [
                ("model = 1", ["step:train"]),
                ("def predict(x: int) -> int:\n    return model + encoder(x)", ["serve"]),
            ],
            "error cell 1 line 2: serve function 'predict' reads 'encoder', which no step "
            "produces. | Compute 'encoder' in a step above this cell, or define it in this cell.",
            id="serve-reads-unproduced-value",
        ),
        pytest.param(
            [("assert True", ["test"]), ("a = 1", ["step:s"]), ("print(a)", ["test"])],
            "error cell 0 line None: this test cell comes before any step, so there is no step "
            "above it to test. | Tag it 'test:<step>' to name the step it checks, or move it "
            "below that step.",
            id="test-before-any-step",
        ),
        pytest.param(
            [("a = 1", ["step:s"]), ("b = a", ["setup"]), ("print(a)", ["test"])],
            "error cell 1 line 1: the setup cell reads 'a', which step 's' (cell 0) computes; "
            "setup runs before every step. | Move this code into a step, or compute the value "
            "in setup itself.",
            id="setup-reads-step-output",
        ),
        pytest.param(
            [("a = 1", ["step:s"]), ("x = a", ["serve"])],
            "error cell 1 line 1: this serve cell defines no function to serve. "
            "| Define one, e.g. 'def predict(features: dict) -> dict:'.",
            id="serve-without-function",
        ),
        pytest.param(
            [
                ("a = 1", ["step:s"]),
                ("def f() -> int:\n    return a\n\ndef g() -> int:\n    return a", ["serve:score"]),
            ],
            "error cell 1 line 4: 'serve:score' names one route but the cell defines 2 functions "
            "(f, g). | Put each function in its own serve cell, or start helpers' names with '_'.",
            id="serve-route-with-two-functions",
        ),
        pytest.param(
            [
                ("a = 1", ["step:s"]),
                ("def f() -> int:\n    return a", ["serve"]),
                ("def f() -> int:\n    return a", ["serve"]),
            ],
            "error cell 2 line 1: route '/f' is served by more than one function. "
            "| Give one of them its own route with 'serve:<route>'.",
            id="route-twice",
        ),
    ],
)
def test_error_diagnostics(cells: list, expected: str) -> None:
    assert errors(cells) == [expected]


@pytest.mark.parametrize(
    ("cells", "expected"),
    [
        pytest.param(
            [("a = 1", ["step:load"]), ("b = 2", ["step:other"]), ("print(b)", ["test"])],
            f"warning cell 0 line None: step 'load' writes 'a', which nothing after it reads. "
            f"| {UNUSED_FIX}",
            id="unused-step-outputs",
        ),
        pytest.param(
            ["import os\ndef f(): pass", ("a = 1", ["step:s"]), ("print(a)", ["test"])],
            "warning cell 0 line 1: this untagged cell comes before the first step, so it belongs "
            "to no step and the pipeline leaves it out. | It only imports or defines: tag it "
            "'setup' so every step has it.",
            id="untagged-before-first-step-looks-like-setup",
        ),
        pytest.param(
            ["x = 1", ("a = 1", ["step:s"]), ("print(a)", ["test"])],
            "warning cell 0 line 1: this untagged cell comes before the first step, so it belongs "
            "to no step and the pipeline leaves it out. | Tag it 'step:<name>' if the pipeline "
            "needs what it computes, 'setup' if it is shared set-up, or 'skip' if it is "
            "exploration.",
            id="untagged-before-first-step-computes",
        ),
        pytest.param(
            ["print('hello')", ("a = 1", ["step:s"]), ("print(a)", ["test"])],
            "warning cell 0 line 1: this untagged cell comes before the first step, so it belongs "
            "to no step and the pipeline leaves it out. | It computes nothing later cells use: "
            "tag it 'skip' if it is exploration.",
            id="untagged-before-first-step-exploration",
        ),
        pytest.param(
            [("a = 1", ["step:s"]), ("print(a)", ["metrics"])],
            "warning cell 1 line None: this metrics cell records no value. "
            "| Assign each metric to a name, e.g. 'accuracy = float(score)'.",
            id="metrics-without-values",
        ),
        pytest.param(
            [("a = 1", ["step:s"]), ("print(a)", ["test", "after:s"])],
            "warning cell 1 line None: 'after:s' is on a cell that is not part of a step, so it "
            "orders nothing. | Put it on the step's cell.",
            id="after-outside-a-step",
        ),
        pytest.param(
            [("def f():\n    return nothing_here", ["step:s"]), ("print(f)", ["test"])],
            "warning cell 0 line 2: 'nothing_here' is read inside a function but no earlier step, "
            "setup or parameters cell writes it. | Define it in the setup cell or an earlier "
            "step, or check the spelling.",
            id="undefined-name-in-function-body",
        ),
    ],
)
def test_warning_diagnostics(cells: list, expected: str) -> None:
    assert messages(pipeline(cells)) == [expected]


def test_a_star_import_silences_undefined_names_it_may_provide() -> None:
    assert errors([("from os.path import *", ["setup"]), ("x = join('a')", ["step:s"])]) == []


def test_builtins_and_kernel_names_are_never_undefined() -> None:
    assert errors([("x = len(range(3))\ndisplay(x)\nget_ipython()", ["step:s"])]) == []


def test_diagnostics_carry_the_cell_id() -> None:
    p = pipeline([("y = nope", ["step:a"])])
    assert [(d.cell_index, d.cell_id) for d in p.errors] == [(0, "c0")]


@pytest.mark.parametrize("name", ["churn", "kale_dialect", "regression"])
def test_example_notebooks_have_no_errors(name: str) -> None:
    p = analyse(load_notebook(EXAMPLES / f"{name}.ipynb"))
    assert p.errors == ()
    assert len(p.steps) >= 2 and p.edges


def test_the_churn_example_has_the_lineage_its_cells_imply() -> None:
    p = analyse(load_notebook(EXAMPLES / "churn.ipynb"))
    assert [s.name for s in p.steps] == ["load", "features", "train", "evaluate", "report"]
    assert Edge("train", "evaluate", ("model",)) in p.edges
    assert Edge("evaluate", "report", (), kind="after") in p.edges
    assert [(e.route, e.artifacts) for e in p.endpoints] == [
        ("predict", ("feature_columns", "model")),
        ("predict_batch", ("feature_columns", "model")),
    ]
    assert [(e.name, e.batch) for e in p.endpoints] == [("predict", False), ("predict_many", True)]


# Kale's and papermill's ways


def test_cells_with_the_same_step_name_are_one_step_in_notebook_order() -> None:
    p = pipeline(
        [
            ("a = 1", ["step:evaluation"]),
            ("b = a + 1", ["step:train"]),
            ("c = a * 2", ["step:evaluation"]),
            "d = c + 1",
            ("print(b, d)", ["test"]),
        ]
    )

    assert [(s.name, [c.index for c in s.cells]) for s in p.steps] == [
        ("evaluation", [0, 2, 3]),
        ("train", [1]),
    ]
    assert messages(p) == [
        "info cell 2 line None: step 'evaluation' is also the name of cell 0; as in Kale, cells "
        "with the same step name are one step, run where it first appears. | Nothing to do if "
        "that is meant; give this cell its own name to make it a step of its own."
    ]


def test_an_empty_block_continues_the_step_above() -> None:
    p = pipeline([("a = 1", ["block:load"]), ("b = a + 1", ["block:"]), ("print(b)", ["test"])])

    assert [(s.name, [c.index for c in s.cells]) for s in p.steps] == [("load", [0, 1])]
    assert messages(p) == []


def test_prev_with_several_parents_orders_after_each() -> None:
    p = pipeline(
        [
            ("a = 1", ["step:load"]),
            ("b = 2", ["step:clean"]),
            ("c = 3", ["step:train", "prev:load:clean"]),
            ("print(a, b, c)", ["test"]),
        ]
    )

    assert p.step("train").after == ("load", "clean")
    assert {(e.source, e.target, e.kind) for e in p.edges} == {
        ("load", "train", "after"),
        ("clean", "train", "after"),
    }


def test_a_kale_step_name_is_the_title_and_its_identifier_the_name() -> None:
    p = pipeline(
        [
            ("a = 1", ["step:data-loading"]),
            ("b = a", ["step:train", "prev:data-loading"]),
            ("print(b)", ["test:train"]),
        ]
    )

    assert [(s.name, s.title, s.display_name) for s in p.steps] == [
        ("data_loading", "data-loading", "data-loading"),
        ("train", "", "train"),
    ]
    assert p.step("data-loading") is p.step("data_loading")
    assert messages(p) == []


def test_parameters_cell_code_is_kept_runs_after_the_values_and_is_a_global() -> None:
    source = (
        "# papermill's parameters\n"
        "base = 2  # the base\n"
        'print("hello")\n'
        "n = 2 * base\n"
        "lr: float = 0.1"
    )
    p = pipeline([(source, ["parameters"]), ("a = n + 1", ["step:s"]), ("print(a)", ["test"])])

    assert [(x.name, x.default, x.help) for x in p.parameters] == [
        ("base", 2, "the base"),
        ("lr", 0.1, ""),
    ]
    (code,) = p.parameter_code
    assert code.lines == (3, 4)
    assert code.source == '\n\nprint("hello")\nn = 2 * base\n'
    assert (code.reads, code.writes) == (("print", "base"), ("n",))
    assert p.step("s").reads == ("n",)
    assert p.step("s").inputs == ()
    assert messages(p) == [
        "warning cell 0 line 3: lines 3, 4 are not parameters (literal assignments); nbops "
        "runs them after injecting the parameter values, before setup, so every step sees "
        "what the parameters cell computes. | Nothing to do if that is meant. 'n' is computed, "
        "not a parameter: -p cannot set it. nbops test computes it again from the values "
        "given, but papermill run by hand computes it from the defaults, since it injects "
        "values after this cell."
    ]
