"""Metric-gated promotion: `--require` gates and `--must-beat` the version serving, judged on
the metrics each build recorded; real deploys of a small notebook."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from builders import notebook_json

from nbops.ci.gates import Rival, duel, parse_must_beat
from nbops.deploy.processes import free_port
from nbops.errors import MalformedGate
from nbops.run.pids import pid_alive

NBOPS = str(Path(sys.executable).parent / "nbops")


# champion against challenger, pure


def test_a_challenger_at_least_as_good_passes_and_a_worse_one_fails_naming_both() -> None:
    rivals = (Rival("accuracy"),)
    equal = duel(rivals, {"accuracy": 0.8}, {"accuracy": 0.8}, 0.0, "v2 (serving)")
    worse = duel(rivals, {"accuracy": 0.79}, {"accuracy": 0.8}, 0.0, "v2 (serving)")
    within = duel(rivals, {"accuracy": 0.796}, {"accuracy": 0.8}, 0.005, "v2 (serving)")

    assert equal[0].passed and within[0].passed
    assert not worse[0].passed
    assert worse[0].reason == (
        "accuracy 0.79 against 0.8 of v2 (serving), higher is better, tolerance 0: worse"
    )


def test_lower_is_better_with_a_minus_and_missing_values() -> None:
    (rmse,) = parse_must_beat(["-rmse"])
    assert rmse == Rival("rmse", higher_is_better=False)
    assert duel([rmse], {"rmse": 1.0}, {"rmse": 2.0}, 0.0, "v1")[0].passed
    assert not duel([rmse], {"rmse": 3.0}, {"rmse": 2.0}, 0.0, "v1")[0].passed
    nothing_to_beat = duel([rmse], {"rmse": 3.0}, {}, 0.0, "v1")[0]
    assert (
        nothing_to_beat.passed and nothing_to_beat.reason == "v1 recorded no rmse: nothing to beat"
    )
    assert not duel([rmse], {}, {"rmse": 2.0}, 0.0, "v1")[0].passed


def test_must_beat_takes_commas_and_refuses_what_is_not_a_name() -> None:
    assert parse_must_beat(["a,b", "-c"]) == (Rival("a"), Rival("b"), Rival("c", False))
    with pytest.raises(MalformedGate, match=r"'a>0\.5' is not a metric name"):
        parse_must_beat(["a>0.5"])


# real deploys


def scored_notebook() -> dict[str, Any]:
    return notebook_json(
        [
            ("factor = 8", ["parameters"]),
            ("scale = factor * 2", ["step:fit"]),
            ("quality = factor / 10", ["metrics"]),
            (
                "def predict(x: float) -> float:\n    '''Scale x.'''\n    return x * scale",
                ["serve"],
            ),
            "predict(3.0)",
        ]
    )


class Project:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.env = {**os.environ, "NBOPS_HOME": str(root / ".nbops"), "NBOPS_WATCH": "0"}
        self.env.pop("NBOPS_API_KEY", None)
        (root / "model.ipynb").write_text(json.dumps(scored_notebook()))

    def deploy(self, *args: str) -> subprocess.CompletedProcess[str]:
        argv = [NBOPS, "deploy", "model.ipynb", "--port", str(self.port), *args]
        return subprocess.run(
            [*argv, "--format", "json"],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )

    def history(self) -> dict[int, dict[str, Any]]:
        done = subprocess.run(
            [NBOPS, "history", "model", "--format", "json"],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        )
        return {row["version"]: row for row in json.loads(done.stdout)}

    def answer(self) -> Any:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/predict",
            data=json.dumps({"x": 1.0}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())["result"]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    project = Project(tmp_path_factory.mktemp("promotion"))
    yield project
    subprocess.run([NBOPS, "stop", "model"], cwd=project.root, env=project.env, capture_output=True)


@pytest.mark.slow
def test_a_worse_challenger_is_refused_and_the_champion_untouched(project: Project) -> None:
    first = project.deploy("-p", "factor=8")
    assert first.returncode == 0, first.stderr
    champion = json.loads(first.stdout)

    worse = project.deploy("-p", "factor=5", "--must-beat", "quality")

    assert worse.returncode == 1
    refused = json.loads(worse.stdout)
    assert (refused["version"], refused["status"], refused["pid"]) == (2, "refused", None)
    assert refused["reason"] == (
        "refused: quality 0.5 against 0.8 of v1 (serving), higher is better, tolerance 0: "
        "worse (it was not started)"
    )
    (compared,) = refused["figures"]["must_beat"]
    assert (compared["challenger"], compared["champion"]) == (0.5, 0.8)
    history = project.history()
    assert history[1]["status"] == "healthy" and history[1]["current"]
    assert history[1]["pid"] == champion["pid"] and pid_alive(champion["pid"])
    assert (history[1]["metrics"], history[2]["metrics"]) == ({"quality": 0.8}, {"quality": 0.5})
    assert project.answer() == 16.0


@pytest.mark.slow
def test_an_equal_or_better_challenger_is_promoted(project: Project) -> None:
    equal = project.deploy("-p", "factor=8", "--must-beat", "quality")
    assert equal.returncode == 0, equal.stderr
    assert json.loads(equal.stdout)["status"] == "healthy"
    better = project.deploy(
        "-p", "factor=9", "--must-beat", "quality", "--require", "quality>=0.85"
    )
    assert better.returncode == 0, better.stderr
    assert "metrics: metrics pass: quality = 0.9; quality 0.9 against 0.8 of v3" in better.stderr
    assert project.answer() == 18.0
    assert project.history()[4]["metrics"] == {"quality": 0.9}


@pytest.mark.slow
def test_a_failed_gate_refuses_and_a_lower_is_better_rival_is_judged_so(project: Project) -> None:
    gated = project.deploy("-p", "factor=8", "--require", "quality>=0.95")
    assert gated.returncode == 1
    assert json.loads(gated.stdout)["reason"] == (
        "refused: quality = 0.8, needs >= 0.95 (it was not started)"
    )
    lower = project.deploy("-p", "factor=7", "--must-beat=-quality", "--tolerance", "0.01")
    assert lower.returncode == 0, lower.stderr  # 0.7 is better when lower is better
    assert project.answer() == 14.0


def test_an_unknown_metric_is_a_clear_error_before_anything_runs(tmp_path: Path) -> None:
    project = Project(tmp_path)
    done = project.deploy("--must-beat", "qualty")

    assert done.returncode == 2
    assert "--must-beat 'qualty'" in done.stderr and "Did you mean 'quality'?" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / ".nbops" / "deployments").exists()


def test_gates_hold_for_docker_and_kubernetes_targets_too(tmp_path: Path) -> None:
    project = Project(tmp_path)
    base = [NBOPS, "deploy", "model.ipynb", "-p", "factor=5", "--target", "docker"]

    def deploy(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*base, *args], cwd=tmp_path, env=project.env, capture_output=True, text=True
        )

    gated = deploy("--require", "quality>=0.9")
    rival = deploy("--must-beat", "quality")

    assert gated.returncode == 1
    assert "metrics: refused: quality = 0.5, needs >= 0.9 (it was not started)" in gated.stderr
    assert "docker build" not in gated.stderr  # refused before anything is built or applied
    assert rival.returncode == 2
    assert "--must-beat needs the version serving" in rival.stderr


def declare(project: Project, gates: dict[str, Any]) -> None:
    """The notebook declares `gates` in its metadata, as the sidebar and `nbops ci init` read."""
    path = project.root / "model.ipynb"
    notebook = json.loads(path.read_text())
    notebook["metadata"]["nbops"] = gates
    path.write_text(json.dumps(notebook))


@pytest.mark.slow
def test_a_notebooks_declared_gates_hold_for_nbops_deploy_unless_flags_or_no_gates(
    tmp_path: Path,
) -> None:
    project = Project(tmp_path)
    declare(project, {"require": ["quality>=0.9"]})
    try:
        declared = project.deploy("-p", "factor=8")
        assert declared.returncode == 1
        assert "gates: quality>=0.9, declared in model.ipynb metadata.nbops.require" in (
            declared.stderr
        )
        assert json.loads(declared.stdout)["reason"] == (
            "refused: quality = 0.8, needs >= 0.9 (it was not started)"
        )
        flagged = project.deploy("-p", "factor=8", "--require", "quality>=0.5")  # flags win
        assert flagged.returncode == 0, flagged.stderr
        assert "declared in" not in flagged.stderr
        ungated = project.deploy("-p", "factor=7", "--no-gates")
        assert ungated.returncode == 0, ungated.stderr
        assert project.answer() == 14.0
    finally:
        subprocess.run([NBOPS, "stop", "model"], cwd=tmp_path, env=project.env, check=False)


def test_a_declared_gate_on_a_metric_the_notebook_lacks_is_an_error_before_anything_runs(
    tmp_path: Path,
) -> None:
    project = Project(tmp_path)
    declare(project, {"must_beat": ["qualty"]})
    done = project.deploy()

    assert done.returncode == 2
    assert "Did you mean 'quality'?" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / ".nbops" / "deployments").exists()


def test_declared_must_beat_applies_to_local_deploys_only(tmp_path: Path) -> None:
    project = Project(tmp_path)
    declare(project, {"require": ["quality>=0.9"], "must_beat": ["quality"]})
    done = subprocess.run(
        [NBOPS, "deploy", "model.ipynb", "-p", "factor=5", "--target", "docker"],
        cwd=tmp_path,
        env=project.env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert "must_beat applies to local deploys only (--target docker)" in done.stdout
    assert "metrics: refused: quality = 0.5, needs >= 0.9" in done.stderr
