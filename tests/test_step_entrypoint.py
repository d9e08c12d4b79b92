"""`python -m pipeline step NAME --run-id ID --store URL`: a build's steps one process each, as an
orchestrator runs them, give the hashes and metrics of `nbops run`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

CHURN = Path(__file__).parent.parent / "example_notebooks" / "churn.ipynb"
NBOPS = str(Path(sys.executable).parent / "nbops")
SMALL = ("-p", "n_rows=400")  # a smaller table keeps each step fast; every run here uses it
ORDER = ("load", "features", "train", "evaluate", "report")


@dataclass(frozen=True)
class Built:
    root: Path
    build: Path
    env: dict[str, str]

    def nbops_run(self, *params: str) -> dict[str, Any]:
        done = subprocess.run(
            [NBOPS, "run", str(CHURN), *SMALL, *params, "--format", "json"],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        record: dict[str, Any] = json.loads(done.stdout)
        return record

    def step(self, name: str, *options: str, env: dict[str, str] | None = None) -> Done:
        done = subprocess.run(
            [sys.executable, "-m", "pipeline", "step", name, *options],
            cwd=self.build,
            env={**(env or os.environ), "PYTHONPATH": ""},
            capture_output=True,
            text=True,
            check=False,
        )
        return Done(done.returncode, done.stdout, done.stderr)


@dataclass(frozen=True)
class Done:
    code: int
    stdout: str
    stderr: str

    @property
    def result(self) -> dict[str, Any]:
        assert self.code == 0, self.stderr
        result: dict[str, Any] = json.loads(self.stdout)
        return result


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    root = tmp_path_factory.mktemp("entrypoint")
    env = {**os.environ, "NBOPS_HOME": str(root / ".nbops")}
    out = root / "build"
    done = subprocess.run(
        [NBOPS, "build", str(CHURN), "-o", str(out), *SMALL],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return Built(root, out, env)


@pytest.fixture(scope="module")
def default_run(built: Built) -> dict[str, Any]:
    return built.nbops_run()


def run_steps(
    built: Built, run_id: str, store: str, *params: str, env: dict[str, str] | None = None
) -> dict[str, dict[str, Any]]:
    """Every step in dependency order, then the metrics: {step: its JSON result}."""
    options = ("--run-id", run_id, "--store", store, *SMALL, *params)
    return {name: built.step(name, *options, env=env).result for name in (*ORDER, "metrics")}


def hashes(record: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {step["name"]: step["outputs"] for step in record["steps"]}


def test_each_step_on_its_own_gives_the_runs_hashes_and_metrics(
    built: Built, default_run: dict[str, Any], tmp_path: Path
) -> None:
    results = run_steps(built, "r1", str(tmp_path / "store"))
    assert {name: results[name]["outputs"] for name in ORDER} == hashes(default_run)
    assert results["metrics"]["metrics"] == default_run["metrics"]
    assert results["metrics"]["metric_problems"] == default_run["metric_problems"]
    train = results["train"]
    assert (train["step"], train["run_id"], train["formats"]) == (
        "train",
        "r1",
        {"model": "joblib"},
    )
    assert train["seconds"] >= 0


def test_a_parameter_changes_the_hashes_as_it_does_in_nbops_run(
    built: Built, default_run: dict[str, Any], tmp_path: Path
) -> None:
    store = str(tmp_path / "store")
    results = run_steps(built, "manual__2026-12-01T10:00:00+00:00", store, "-p", "n_estimators=10")
    changed = built.nbops_run("-p", "n_estimators=10")
    assert {name: results[name]["outputs"] for name in ORDER} == hashes(changed)
    assert results["metrics"]["metrics"] == changed["metrics"]
    assert results["train"]["outputs"] != hashes(default_run)["train"]


def test_the_result_file_holds_what_is_printed(built: Built, tmp_path: Path) -> None:
    result = tmp_path / "out" / "load.json"
    options = ("--run-id", "r1", "--store", str(tmp_path / "store"), *SMALL)
    done = built.step("load", *options, "--result", str(result))
    assert json.loads(result.read_text()) == done.result


def test_a_step_whose_producer_has_not_run_exits_1_saying_what_to_run(
    built: Built, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    done = built.step("train", "--run-id", "r1", "--store", str(store))
    assert done.code == 1
    assert done.stderr.splitlines()[-1] == (
        "error: step 'train' needs 'X_train' from step 'features', which has not run for run ID "
        f"'r1': run `python -m pipeline step features --run-id r1 --store {store}` first."
    )


def test_a_step_of_another_run_id_is_not_an_input(built: Built, tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    assert built.step("load", "--run-id", "r1", "--store", store, *SMALL).code == 0
    done = built.step("features", "--run-id", "r2", "--store", store, *SMALL)
    assert done.code == 1
    assert done.stderr.splitlines()[-1] == (
        "error: step 'features' needs 'customers' from step 'load', which has not run for run "
        f"ID 'r2': run `python -m pipeline step load --run-id r2 --store {store}` first."
    )


def test_an_unknown_step_exits_2_listing_the_steps(built: Built, tmp_path: Path) -> None:
    done = built.step("trian", "--run-id", "r1", "--store", str(tmp_path / "store"))
    assert done.code == 2
    assert done.stderr.splitlines()[-1] == (
        "python -m pipeline step: error: there is no step 'trian'; did you mean 'train'? "
        "steps are: load, features, train, evaluate, report, metrics"
    )


def test_a_bad_parameter_exits_2(built: Built, tmp_path: Path) -> None:
    options = ("--run-id", "r1", "--store", str(tmp_path / "store"))
    done = built.step("load", *options, "-p", "n_rws=5")
    assert done.code == 2
    assert done.stderr.splitlines()[-1] == (
        "python -m pipeline step: error: there is no parameter 'n_rws'; did you mean 'n_rows'? "
        "parameters are: n_rows, n_estimators, max_depth, test_size, seed"
    )


def test_the_steps_share_a_store_on_s3(
    built: Built, default_run: dict[str, Any], s3_store_url: str
) -> None:
    options = ("--run-id", "kfp-3f2a", "--store", s3_store_url, *SMALL)
    env = dict(os.environ)  # with the moto server's endpoint and credentials
    results = {name: built.step(name, *options, env=env).result for name in ORDER[:3]}
    assert {name: results[name]["outputs"] for name in ORDER[:3]} == {
        name: hashes(default_run)[name] for name in ORDER[:3]
    }
