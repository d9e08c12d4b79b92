"""Gated deploys through the REST API: the comparison before a deploy
(GET deployments/<name>/challenger) and the notebook's declared gates applied to a deploy from
the sidebar, as CI's `nbops deploy --require ... --must-beat ...` applies them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from builders import notebook_json
from test_server import Fetch, finished, get, post, refused
from traitlets.config import Config

from nbops.deploy.processes import free_port
from nbops.lab.server.jobs import shutdown_all
from nbops.run.home import Home

GATED = [
    ("quality = 0.9  # the accuracy the model reaches", ["parameters"]),
    ("values = [1, 2, 3]", ["step:load"]),
    ("model = round(quality * len(values) / 3, 6)", ["step:fit"]),
    ("accuracy = float(model)", ["metrics"]),
    ("def predict(x: float) -> float:\n    '''Scale x.'''\n    return x * model", ["serve"]),
    "predict(3.0)",
]
GATES = {"require": ["accuracy>=0.5"], "must_beat": ["accuracy"], "tolerance": 0.01}


def gated_notebook(path: Path, gates: dict[str, Any]) -> Path:
    content = notebook_json(GATED)
    content["metadata"]["nbops"] = gates
    path.write_text(json.dumps(content))
    return path


@pytest.fixture
def jp_server_config() -> Config:
    return Config({"ServerApp": {"jpserver_extensions": {"nbops": True}}})


@pytest.fixture
def root(jp_root_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.delenv("NBOPS_HOME", raising=False)
    monkeypatch.chdir(jp_root_dir)
    yield jp_root_dir
    shutdown_all(timeout=10)  # no job's process outlives its test


@pytest.fixture
def gated(root: Path) -> Path:
    return gated_notebook(root / "gated.ipynb", GATES)


@pytest.fixture
def stopped_afterwards(root: Path) -> Iterator[None]:
    yield
    from nbops.deploy import local as deploy

    home = Home(root / ".nbops")
    for row in deploy.status(home=home):
        if row["status"] == "healthy":
            deploy.stop(row["name"], home=home)


async def challenger(fetch: Fetch, name: str = "gated") -> dict[str, Any]:
    return await get(fetch, f"deployments/{name}/challenger", notebook="gated.ipynb")  # type: ignore[no-any-return]


async def deploy(fetch: Fetch, body: dict[str, Any]) -> dict[str, Any]:
    response = await fetch("nbops", "api", "deployments", method="POST", body=json.dumps(body))
    assert response.code == 202
    return await finished(fetch, json.loads(response.body)["job_id"])


async def test_before_any_run_the_comparison_lists_the_declared_gates(jp_fetch: Fetch, gated: Path):
    view = await challenger(jp_fetch)

    assert view["gated"] is True
    assert view["gates"] == {
        "require": ["accuracy>=0.5"],
        "must_beat": ["accuracy"],
        "tolerance": 0.01,
        "sources": [
            "gated.ipynb metadata.nbops.require",
            "gated.ipynb metadata.nbops.must_beat",
            "gated.ipynb metadata.nbops.tolerance",
        ],
    }
    assert (view["serving"], view["challenger"], view["verdict"]) == (None, None, None)


async def test_pyproject_gates_win_over_the_notebooks_metadata(
    jp_fetch: Fetch,
    root: Path,
    gated: Path,
):
    (root / "pyproject.toml").write_text('[tool.nbops.notebooks."gated.ipynb"]\ntolerance = 0.3\n')
    view = await challenger(jp_fetch)
    assert view["gates"]["tolerance"] == 0.3
    assert (
        'pyproject.toml [tool.nbops.notebooks."gated.ipynb"] tolerance' in view["gates"]["sources"]
    )


async def test_a_gate_on_a_metric_the_notebook_lacks_is_refused_before_anything_runs(
    jp_fetch: Fetch,
    root: Path,
):
    gated_notebook(root / "gated.ipynb", {"must_beat": ["acuracy"]})
    expected = (
        "gated.ipynb metadata.nbops.must_beat: gated.ipynb has no metric 'acuracy'. "
        "Did you mean 'accuracy'? Its metrics are: accuracy."
    )
    for request in (
        challenger(jp_fetch),
        jp_fetch(
            "nbops", "api", "deployments", method="POST", body=json.dumps({"path": "gated.ipynb"})
        ),
    ):
        code, reply = await refused(request)
        assert (code, reply["error"], reply["message"]) == (400, "UnknownMetric", expected)
    assert await get(jp_fetch, "jobs") == []


@pytest.mark.slow
async def test_a_worse_challenger_is_refused_with_both_figures_and_the_serving_one_stays(
    jp_fetch: Fetch, gated: Path, stopped_afterwards: None
):
    first = await deploy(jp_fetch, {"path": "gated.ipynb", "port": free_port()})
    assert (first["state"], first["error"]) == ("succeeded", None), first
    assert [s["name"] for s in first["stages"]][:2] == ["building", "metrics"]
    verdict = first["result"]["verdict"]
    assert (verdict["refused"], verdict["champion"], verdict["must_beat"]) == (False, None, [])
    assert verdict["gates"] == [
        {"gate": "accuracy>=0.5", "value": 0.9, "passed": True, "reason": "accuracy = 0.9"}
    ]

    # The last run is the champion's own: equal passes.
    before = await challenger(jp_fetch)
    assert before["serving"]["version"] == 1
    assert before["serving"]["metrics"] == {"accuracy": 0.9}
    assert before["verdict"]["refused"] is False

    # A run with a worse parameter is what a deploy would build now: the comparison says so.
    ran = await post(jp_fetch, "runs", {"path": "gated.ipynb", "parameters": {"quality": 0.7}})
    assert (await finished(jp_fetch, ran["job_id"]))["state"] == "succeeded"
    before = await challenger(jp_fetch)
    assert before["challenger"]["metrics"] == {"accuracy": 0.7}
    assert before["challenger"]["parameters"] == {"quality": 0.7}
    assert before["verdict"]["refused"] is True
    duel = {
        "metric": "accuracy",
        "higher_is_better": True,
        "challenger": 0.7,
        "champion": 0.9,
        "passed": False,
        "reason": "accuracy 0.7 against 0.9 of v1 (serving), higher is better, tolerance "
        "0.01: worse",
    }
    assert before["verdict"]["must_beat"] == [duel]

    second = await deploy(jp_fetch, {"path": "gated.ipynb", "parameters": {"quality": 0.7}})
    reason = f"refused: {duel['reason']} (it was not started)"
    assert (second["state"], second["error"]) == ("failed", reason)
    result = second["result"]
    assert (result["version"], result["status"], result["reason"]) == (2, "refused", reason)
    assert result["figures"]["must_beat"] == [duel]
    assert result["figures"]["champion"] == 1
    assert result["verdict"]["must_beat"] == [duel]
    assert [s["name"] for s in second["stages"]] == ["building", "metrics"]

    listed = await get(jp_fetch, "deployments")
    assert (listed[0]["version"], listed[0]["status"], listed[0]["current"]) == (1, "healthy", True)
    assert [(v["version"], v["status"]) for v in listed[0]["history"]] == [
        (1, "healthy"),
        (2, "refused"),
    ]

    # Not gated when asked: the worse one is promoted.
    third = await deploy(
        jp_fetch, {"path": "gated.ipynb", "parameters": {"quality": 0.7}, "gated": False}
    )
    assert (third["state"], third["result"]["version"]) == ("succeeded", 3), third
    assert third["result"]["verdict"] is None


def test_gates_are_keyed_from_the_git_work_tree_as_ci_reads_them(tmp_path: Path) -> None:
    import subprocess

    from nbops.ci.repository import gate_root
    from nbops.lab.server.challenger import declared_gates
    from nbops.model.analysis import analyse
    from nbops.model.notebook import load_notebook

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "pyproject.toml").write_text(
        '[tool.nbops.notebooks."sub/gated.ipynb"]\nrequire = ["accuracy>=0.6"]\n'
    )
    served = tmp_path / "sub"  # Jupyter serves a folder inside the repository
    served.mkdir()
    notebook = gated_notebook(served / "gated.ipynb", GATES)

    assert gate_root(notebook, served) == tmp_path.resolve()
    gates = declared_gates(notebook, served, analyse(load_notebook(notebook)))
    assert [str(g) for g in gates.require] == ["accuracy>=0.6"]  # pyproject's wins
    assert [str(r) for r in gates.must_beat] == ["accuracy"]  # the rest from the metadata
    assert gate_root(notebook, tmp_path / "elsewhere") == tmp_path.resolve()
    (tmp_path / ".git").rename(tmp_path / "not-git")
    assert gate_root(notebook, served) == served.resolve()
