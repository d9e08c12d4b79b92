"""Reference profiles: the `reference=` serve option, the profile of rows, PSI, and the build."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from builders import pipeline

from nbops.build.profile import (
    FieldProfile,
    bin_counts,
    field_profile,
    psi,
    reference_profile,
)
from nbops.model.diagnostic import Diagnostic, Severity

CHURN = Path(__file__).parent.parent / "example_notebooks" / "churn.ipynb"
NBOPS = str(Path(sys.executable).parent / "nbops")

SERVED = [
    ("rows = [{'x': 1.0}, {'x': 2.0}]\nscale = 2.0", ["step:load"]),
    ("def predict(x: float) -> float:\n    return x * scale", ["serve:predict", "reference=rows"]),
]


# the tag and the model


def test_a_serve_reference_names_the_step_value_of_input_rows() -> None:
    (endpoint,) = pipeline(SERVED).endpoints

    assert (endpoint.reference, endpoint.reference_step) == ("rows", "load")
    assert pipeline(SERVED).diagnostics == ()


def test_a_reference_may_name_the_step_that_made_the_value() -> None:
    cells = [*SERVED[:1], ("rows = rows[:1]", ["step:trim"]), *SERVED[1:]]
    cells[-1] = (cells[-1][0], ["serve:predict", "reference=load.rows"])

    (endpoint,) = pipeline(cells).endpoints

    assert (endpoint.reference, endpoint.reference_step) == ("rows", "load")


def test_without_a_reference_an_endpoint_has_none() -> None:
    (endpoint,) = pipeline([SERVED[0], (SERVED[1][0], ["serve:predict"])]).endpoints

    assert (endpoint.reference, endpoint.reference_step) == (None, None)


def test_a_reference_no_step_makes_is_an_error_naming_the_cell_with_a_did_you_mean() -> None:
    cells = [SERVED[0], (SERVED[1][0], ["serve:predict", "reference=row"])]

    result = pipeline(cells)

    assert result.endpoints[0].reference is None
    assert result.diagnostics == (
        Diagnostic(
            Severity.ERROR,
            "'reference=row' names no value a step above this cell makes, so the build cannot "
            "profile it.",
            "Did you mean 'reference=rows'? Name a value an earlier step makes, e.g. a table "
            "of input rows.",
            cell_index=1,
            cell_id="c1",
            tag="reference=row",
        ),
    )


def test_a_reference_that_is_not_a_name_is_an_error_of_the_tag() -> None:
    cells = [SERVED[0], (SERVED[1][0], ["serve:predict", "reference=a-b"])]

    (problem,) = pipeline(cells).diagnostics

    assert problem.message == (
        "'reference=a-b': a reference is an artifact name, like 'customers' or 'load.customers'."
    )
    assert problem.fix == "Write it like 'reference=customers'."


def test_a_reference_on_a_step_cell_is_an_error() -> None:
    problem = pipeline([("rows = [1]", ["step:load", "reference=rows"])]).diagnostics[0]

    assert problem.message == (
        "'reference=rows' is on a step cell, but only serve cells take 'reference', "
        "so nbops ignores it."
    )


def test_check_suggests_a_reference_when_a_step_makes_a_table() -> None:
    cells = [
        ("import pandas as pd", ["setup"]),
        ("frame = pd.DataFrame({'x': [1.0, 2.0]})\nscale = 2.0", ["step:load"]),
        ("def predict(x: float) -> float:\n    return x * scale", ["serve:predict"]),
    ]
    found = pipeline(cells)

    (hint,) = [d for d in found.diagnostics if "reference" in d.fix]
    assert hint.severity is Severity.INFO
    assert (hint.cell_index, hint.line, hint.tag) == (2, 1, "serve")
    assert hint.message.startswith("serve function 'predict' has no reference rows")
    assert hint.fix.startswith(
        "Add the tag 'reference=load.frame' to this cell (the table step 'load' makes in cell 1)"
    )


def test_no_suggestion_without_a_table_or_with_a_reference() -> None:
    with_reference = pipeline(
        [
            ("import pandas as pd", ["setup"]),
            ("frame = pd.read_csv('rows.csv')\nscale = 2.0", ["step:load"]),
            (SERVED[1][0], ["serve:predict", "reference=frame"]),
        ]
    )
    assert not [d for d in pipeline(SERVED).diagnostics if "reference rows" in d.message]
    assert not [d for d in with_reference.diagnostics if "reference rows" in d.message]
    assert with_reference.endpoints[0].reference == "frame"


# profiles


def small_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "x": [*range(11), None],
            "c": ["a"] * 6 + ["b"] * 4 + ["c"] * 2,
        }
    )


def test_a_numeric_field_has_decile_edges_shares_and_a_missing_rate() -> None:
    profile = field_profile("x", small_frame()["x"])

    assert profile == FieldProfile(
        name="x",
        kind="numeric",
        count=12,
        missing_rate=0.083333,
        shares=(*[0.090909] * 9, 0.181818),
        edges=tuple(float(e) for e in range(11)),
    )


def test_a_categorical_field_has_category_shares_and_an_other_bucket() -> None:
    profile = field_profile("c", small_frame()["c"])

    assert profile == FieldProfile(
        name="c",
        kind="categorical",
        count=12,
        missing_rate=0.0,
        shares=(0.5, 0.333333, 0.166667, 0.0),
        categories=("a", "b", "c", "__other__"),
    )


def test_more_than_twenty_categories_keep_the_top_twenty_and_other() -> None:
    values = pd.Series([f"k{i:02}" for i in range(25) for _ in range(25 - i)])

    profile = field_profile("k", values)

    assert profile.categories == (*(f"k{i:02}" for i in range(20)), "__other__")
    assert profile.shares[-1] == round(sum(range(1, 6)) / len(values), 6)


def test_repeated_quantiles_give_each_edge_once() -> None:
    profile = field_profile("n", pd.Series([1, 1, 1, 1, 1, 1, 1, 1, 2, 3]))

    assert profile.edges == (1.0, 1.2, 2.1, 3.0)
    assert sum(profile.shares) == 1.0


def test_the_profile_covers_inputs_and_the_outputs_of_the_function() -> None:
    rows = small_frame().to_dict(orient="records")

    def predict(row: dict) -> dict:
        return {"label": row["c"] == "a", "score": 1.0 if row["c"] == "a" else 0.0, "v": [1]}

    profile = reference_profile(rows, ["c"], predict)

    assert (profile.rows, profile.sampled) == (12, 12)
    assert [f.name for f in profile.inputs] == ["c"]
    assert [(f.name, f.kind) for f in profile.outputs] == [
        ("label", "categorical"),
        ("score", "numeric"),
    ]
    assert profile.outputs[0].categories == ("False", "True", "__other__")  # a tie: by label


def test_the_same_rows_give_the_same_bytes_and_a_sample_of_at_most_250() -> None:
    frame = pd.DataFrame({"x": np.random.default_rng(1).normal(size=3000)})
    calls: list[float] = []

    def twice(row: dict) -> float:
        calls.append(row["x"])
        return row["x"] * 2

    first = reference_profile(frame, ["x"], twice).to_json()
    second = reference_profile(frame.copy(), ["x"], twice).to_json()

    assert first == second
    assert len(calls) == 500
    assert json.loads(first)["sampled"] == 250
    assert json.loads(first)["outputs"][0]["name"] == "output"


def test_bin_counts_puts_values_out_of_range_in_the_end_bins_and_counts_missing() -> None:
    numeric = field_profile("x", small_frame()["x"])
    categorical = field_profile("c", small_frame()["c"])

    assert bin_counts(numeric, [-5, 0.5, 10, 99, None, float("nan")]) == (
        [2, 0, 0, 0, 0, 0, 0, 0, 0, 2],
        2,
    )
    assert bin_counts(categorical, ["a", "zzz", None]) == ([1, 0, 0, 1], 1)


def test_psi_of_the_same_shares_is_zero_and_of_a_shifted_sample_above_a_quarter() -> None:
    rng = np.random.default_rng(7)
    reference = field_profile("x", pd.Series(rng.normal(50, 10, size=5000)))
    same, _ = bin_counts(reference, rng.normal(50, 10, size=2000).tolist())
    shifted, _ = bin_counts(reference, rng.normal(60, 10, size=2000).tolist())

    assert psi(reference.shares, reference.shares) < 1e-9
    assert psi(reference.shares, same) < 0.05
    assert psi(reference.shares, shifted) > 0.25


# the build


def test_the_churn_build_stores_the_reference_profile_and_its_hash(tmp_path: Path) -> None:
    notebook = json.loads(CHURN.read_text())
    serve = next(c for c in notebook["cells"] if "serve:predict" in c["metadata"].get("tags", []))
    assert "reference=load.customers" in serve["metadata"]["tags"]
    path = tmp_path / "churn.ipynb"
    path.write_text(json.dumps(notebook))
    out = tmp_path / "build"
    env = {**os.environ, "NBOPS_HOME": str(tmp_path / ".nbops")}
    args = ["-p", "n_rows=600", "-p", "n_estimators=8"]

    # A relative build folder: the profile is written from a child working inside it.
    built = subprocess.run(
        [NBOPS, "build", "churn.ipynb", "-o", "build", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=False,
    )

    assert built.returncode == 0, built.stderr
    manifest = json.loads((out / "nbops.json").read_text())
    endpoint, batch = manifest["endpoints"]
    profile_bytes = (out / "profile-predict.json").read_bytes()
    assert endpoint["reference"] == {
        "artifact": "load.customers",
        "profile": "profile-predict.json",
        "sha256": hashlib.sha256(profile_bytes).hexdigest(),
    }
    profile = json.loads(profile_bytes)
    assert profile["rows"] == 600 and profile["sampled"] == 250
    fields = {f["name"]: f for f in profile["inputs"]}
    assert list(fields) == ["tenure_months", "monthly_charges", "support_calls", "contract"]
    assert fields["monthly_charges"]["kind"] == "numeric"
    assert len(fields["monthly_charges"]["edges"]) == 11
    assert fields["contract"]["categories"] == ["monthly", "annual", "two_year", "__other__"]
    outputs = {f["name"]: f for f in profile["outputs"]}
    assert outputs["churn_probability"]["kind"] == "numeric"
    assert outputs["churn"]["kind"] == "categorical"
    # The batch function, called on the same sampled rows, profiles the same answers.
    assert batch["reference"]["profile"] == "profile-predict_batch.json"
    assert json.loads((out / "profile-predict_batch.json").read_bytes()) == profile
