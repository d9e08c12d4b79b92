"""In-place changes and captured values through notebook functions: seen statically, joined
across cells, and shown in the lineage."""

from __future__ import annotations

import ast
import textwrap

import pytest
from builders import messages, pipeline

from nbops.model.dataflow import Names, scan
from nbops.model.effects import function_effects


def names_of(source: str) -> Names:
    return scan(ast.parse(textwrap.dedent(source)))


# what one body shows


def test_a_function_changing_its_parameter_in_place_says_so() -> None:
    (function,) = names_of(
        """
        def add_features(frame, scale=1):
            frame["area"] = frame["w"] * frame["h"] * scale
        """
    ).functions
    assert function.params == ("frame", "scale")
    assert function.mutated_params == {"frame"}


@pytest.mark.parametrize(
    "body",
    [
        'frame = frame.copy()\n    frame["x"] = 1',  # a copy is the function's own
        "parts = []\n    parts.append(frame)",  # a local, not a parameter
        "def inner(frame):\n        frame['x'] = 1",  # the nested function's own parameter
    ],
)
def test_changing_a_local_or_a_rebound_parameter_changes_nothing_of_the_caller(body: str) -> None:
    (function,) = names_of(f"def prepare(frame):\n    {body}\n").functions
    assert function.mutated_params == set()


@pytest.mark.parametrize(
    ("source", "root"),
    [
        ("rng.shuffle(arr)", "arr"),
        ("np.random.shuffle(arr)", "arr"),
        ("random.shuffle(items)", "items"),
        ("np.copyto(dst, src)", "dst"),
        ("heapq.heappush(heap, 3)", "heap"),
        ("bisect.insort(ordered, 3)", "ordered"),
        ("np.fill_diagonal(matrix, 0)", "matrix"),
        ("np.add(a, b, out=total)", "total"),
        ("weights.add_(1)", "weights"),
        ("arr.fill(0)", "arr"),
        ("arr.sort()", "arr"),
    ],
)
def test_library_calls_that_change_a_value_in_place_mutate_it(source: str, root: str) -> None:
    names = names_of(source)
    assert root in names.mutations


@pytest.mark.parametrize("source", ["out = rng.permutation(arr)", "x = np.sort(arr)", "f(arr)"])
def test_calls_whose_effect_is_unknown_are_not_guessed(source: str) -> None:
    assert "arr" not in names_of(source).mutations


def test_calls_of_plain_names_are_recorded_with_their_arguments_roots() -> None:
    names = names_of("add_features(df, scale=cfg.scale)\nprint(len(df))")
    assert [(c.callee, c.args, c.keywords) for c in names.calls] == [
        ("add_features", ("df",), (("scale", "cfg"),)),
        ("print", (None,), ()),
        ("len", ("df",), ()),
    ]


# joined across functions


def test_a_change_passes_through_the_functions_that_call_the_changer() -> None:
    effects = function_effects(
        names_of(
            """
            def add_area(frame):
                frame["area"] = frame["w"] * frame["h"]

            def prepare(table, log):
                add_area(table)
                log.append("done")

            def report():
                prepare(df, history)
            """
        ).functions
    )
    assert effects["add_area"].mutated_params == {"frame"}
    assert effects["prepare"].mutated_params == {"table", "log"}
    assert set(effects["report"].mutated_globals) == {"df", "history"}


def test_reads_pass_through_calls_and_instances_of_notebook_classes() -> None:
    effects = function_effects(
        names_of(
            """
            class Scorer:
                def score(self, x):
                    return model.predict(x) * weight

            def _features(x):
                return encoder.transform(x)

            def predict(x):
                return Scorer().score(_features(x))

            def forever(n):
                return forever(n - 1) + offset
            """
        ).functions
    )
    assert set(effects["predict"].reads) >= {"model", "weight", "encoder"}
    assert set(effects["forever"].reads) == {"forever", "offset"}  # recursion ends


# the lineage


MUTATION = [
    (
        "import numpy as np\nimport pandas as pd\n\n\n"
        "def add_features(frame):\n    frame['area'] = frame['w'] * frame['h']\n",
        ["setup"],
    ),
    ("seed = 3", ["parameters"]),
    ("df = pd.DataFrame({'w': [1.0, 2.0], 'h': [3.0, 4.0]})\narr = np.arange(10)", ["step:load"]),
    ("add_features(df)\nrng = np.random.default_rng(seed)\nrng.shuffle(arr)", ["step:mutate"]),
    ("total = float(df['area'].sum()) + float(arr[0])", ["step:report"]),
    ("total", ["metrics"]),
]


def test_a_step_that_changes_values_through_a_helper_and_shuffle_produces_them() -> None:
    p = pipeline(MUTATION)
    assert [(e.source, e.target, e.artifacts) for e in p.edges] == [
        ("load", "mutate", ("df", "arr")),
        ("mutate", "report", ("df", "arr")),
    ]
    assert p.step("mutate").outputs == ("arr", "df")
    assert messages(p) == []


def test_a_step_calling_a_setup_helper_reads_what_the_helper_reads() -> None:
    p = pipeline(
        [
            ("def score(x):\n    return model.predict(x)\n", ["setup"]),
            ("model = make_model()", ["step:train"]),
            ("result = score(rows)", ["step:evaluate"]),
            ("result", ["metrics"]),
            ("rows = [1]\nmake_model = list", ["skip"]),
        ]
    )
    assert p.step("evaluate").inputs == ("model",)
    assert [(e.source, e.target, e.artifacts) for e in p.edges] == [
        ("train", "evaluate", ("model",))
    ]


def test_a_serve_function_captures_what_the_notebook_functions_it_calls_read() -> None:
    p = pipeline(
        [
            ("def _prepare(features):\n    return encoder.transform([features])\n", ["setup"]),
            ("encoder = make_encoder()\nmodel = make_model()", ["step:train"]),
            (
                "def predict(features: dict) -> float:\n"
                "    return model.predict(_prepare(features))\n",
                ["serve"],
            ),
        ]
    )
    (endpoint,) = p.endpoints
    assert set(endpoint.artifacts) == {"encoder", "model"}
    assert dict(endpoint.inputs) == {"encoder": "train", "model": "train"}
