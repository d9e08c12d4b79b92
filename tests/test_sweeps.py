"""Parameter sweeps: which runs `-p NAME=V1,V2` and a params file ask for."""

from __future__ import annotations

import pytest
from builders import pipeline

from nbops.errors import ParameterError
from nbops.model.parameters import parse_sweep

PARAMETERS = pipeline(
    [
        (
            "n_estimators = 100\nmax_depth = 8\nname = 'rf'\ncolumns = ['a', 'b']\nrate = 0.1",
            ["parameters"],
        ),
        ("x = n_estimators", ["step:use"]),
    ]
).parameters


def test_one_value_each_is_one_run() -> None:
    assert parse_sweep(("n_estimators=10", "name=gb"), PARAMETERS) == [
        {"n_estimators": 10, "name": "gb"}
    ]


def test_several_values_make_the_grid_in_order() -> None:
    runs = parse_sweep(("n_estimators=10,50", "max_depth=4,8"), PARAMETERS)
    assert runs == [
        {"n_estimators": 10, "max_depth": 4},
        {"n_estimators": 10, "max_depth": 8},
        {"n_estimators": 50, "max_depth": 4},
        {"n_estimators": 50, "max_depth": 8},
    ]


def test_text_splits_on_commas_unless_quoted_and_lists_never_split() -> None:
    assert parse_sweep(("name=rf,gb",), PARAMETERS) == [{"name": "rf"}, {"name": "gb"}]
    assert parse_sweep(("name='rf,gb'",), PARAMETERS) == [{"name": "rf,gb"}]
    assert parse_sweep(("columns=['a','c']",), PARAMETERS) == [{"columns": ["a", "c"]}]


def test_each_value_is_checked_against_the_parameters_type() -> None:
    assert parse_sweep(("rate=1,0.5",), PARAMETERS) == [{"rate": 1.0}, {"rate": 0.5}]
    with pytest.raises(ParameterError, match="parameter 'n_estimators' is int"):
        parse_sweep(("n_estimators=10,many",), PARAMETERS)
    with pytest.raises(ParameterError, match="Did you mean 'max_depth'"):
        parse_sweep(("max_dept=1,2",), PARAMETERS)
    with pytest.raises(ParameterError, match="is not NAME=VALUE"):
        parse_sweep(("max_depth",), PARAMETERS)


def test_a_params_file_sweeps_lists_and_the_command_line_wins() -> None:
    grid = {"n_estimators": [10, 20], "columns": ["x"], "max_depth": 3}
    runs = parse_sweep(("max_depth=5",), PARAMETERS, grid)
    assert runs == [
        {"n_estimators": 10, "columns": ["x"], "max_depth": 5},
        {"n_estimators": 20, "columns": ["x"], "max_depth": 5},
    ]
    with pytest.raises(ParameterError, match="the params file sets 'depth'"):
        parse_sweep((), PARAMETERS, {"depth": 1})
