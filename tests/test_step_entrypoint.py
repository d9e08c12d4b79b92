"""`python -m pipeline step NAME --run-id ID --store URL`: a build's steps one process each, as an
orchestrator runs them, give the hashes and metrics of `nbops run`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
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


@dataclass(frozen=True)
class Chains:
    """The steps run one by one for run IDs r1 (defaults) and r2 (n_estimators=10), in one
    store, and `nbops run` with the same parameters."""

    store: Path
    default: dict[str, dict[str, Any]]
    changed: dict[str, dict[str, Any]]
    default_run: dict[str, Any]
    changed_run: dict[str, Any]


@pytest.fixture(scope="module")
def chains(built: Built) -> Chains:
    store = built.root / "store"
    changed = ("-p", "n_estimators=10")
    # Both runs at once in one store, as an orchestrator may run them; `nbops run` meanwhile.
    with ThreadPoolExecutor(max_workers=2) as pool:
        default = pool.submit(run_steps, built, "r1", str(store))
        other = pool.submit(
            run_steps, built, "manual__2026-12-01T10:00:00+00:00", str(store), *changed
        )
        default_run, changed_run = built.nbops_run(), built.nbops_run(*changed)
        return Chains(store, default.result(), other.result(), default_run, changed_run)


def run_steps(
    built: Built, run_id: str, store: str, *params: str, env: dict[str, str] | None = None
) -> dict[str, dict[str, Any]]:
    """Every step in dependency order, then the metrics: {step: its JSON result}, each also
    written with --result."""
    results: dict[str, dict[str, Any]] = {}
    for name in (*ORDER, "metrics"):
        written = built.root / "results" / run_id / f"{name}.json"
        logs = built.root / "logs" / run_id
        options = ("--run-id", run_id, "--store", store, *SMALL, *params, "--logs", str(logs))
        options += ("--result", str(written))
        results[name] = built.step(name, *options, env=env).result
        assert json.loads(written.read_text()) == results[name]
    return results


def hashes(record: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {step["name"]: step["outputs"] for step in record["steps"]}


def test_each_step_on_its_own_gives_the_runs_hashes_and_metrics(chains: Chains) -> None:
    results, run = chains.default, chains.default_run
    assert {name: results[name]["outputs"] for name in ORDER} == hashes(run)
    assert results["metrics"]["metrics"] == run["metrics"]
    assert results["metrics"]["metric_problems"] == run["metric_problems"]
    train = results["train"]
    assert (train["step"], train["run_id"], train["formats"]) == (
        "train",
        "r1",
        {"model": "joblib"},
    )
    assert train["seconds"] >= 0


def test_a_parameter_changes_the_hashes_as_it_does_in_nbops_run(chains: Chains) -> None:
    results, run = chains.changed, chains.changed_run
    assert {name: results[name]["outputs"] for name in ORDER} == hashes(run)
    assert results["metrics"]["metrics"] == run["metrics"]
    assert results["train"]["outputs"] != chains.default["train"]["outputs"]


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


def test_a_step_of_another_run_id_is_not_an_input(built: Built, chains: Chains) -> None:
    done = built.step("features", "--run-id", "r3", "--store", str(chains.store), *SMALL)
    assert done.code == 1
    assert done.stderr.splitlines()[-1] == (
        "error: step 'features' needs 'customers' from step 'load', which has not run for run "
        f"ID 'r3': run `python -m pipeline step load --run-id r3 --store {chains.store}` first."
    )


def test_a_step_that_raises_exits_1_naming_its_cells(built: Built, chains: Chains) -> None:
    options = ("--run-id", "r1", "--store", str(chains.store), *SMALL, "-p", "test_size=2.0")
    done = built.step("features", *options, "--logs", str(built.root / "logs" / "failing"))
    assert done.code == 1
    assert done.stdout == ""
    assert "Traceback" in done.stderr and "pipeline/steps/features.py" in done.stderr
    assert done.stderr.splitlines()[-1].startswith(
        "error: step 'features' (notebook cells 8, 9) raised InvalidParameterError: "
        "The 'test_size' parameter of train_test_split must be"
    )  # scikit-learn's own words follow


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


def test_the_steps_share_a_store_on_s3(built: Built, chains: Chains, s3_store_url: str) -> None:
    options = ("--run-id", "kfp-3f2a", "--store", s3_store_url, *SMALL)
    env = dict(os.environ)  # with the moto server's endpoint and credentials
    results = {name: built.step(name, *options, env=env).result for name in ORDER[:2]}
    assert {name: results[name]["outputs"] for name in ORDER[:2]} == {
        name: chains.default[name]["outputs"] for name in ORDER[:2]
    }
