"""The Airflow exporter: the DAG file it writes, imported and run by Airflow itself.

Airflow's pins clash with nbops's, so it lives in a virtualenv of its own, `.venv-airflow/` at
the repository's root: made once (a minute or so), reused while its stamp names these pins.
The tasks run the step entry point with this interpreter, which has the notebook's libraries,
so their artifacts hash as `nbops run`'s do.
"""

from __future__ import annotations

import ast
import fcntl
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from nbops.build.codegen import write_pipeline
from nbops.build.exporters import GROUP, ExportRefused, ExportRequest
from nbops.build.exporters.airflow import AirflowExporter, task_edges
from nbops.model.analysis import analyse
from nbops.model.notebook import load_notebook
from nbops.model.pipeline import Pipeline

MakeNotebook = Callable[..., Path]  # the make_notebook fixture of tests/conftest.py

ROOT = Path(__file__).resolve().parent.parent
CHURN = ROOT / "example_notebooks" / "churn.ipynb"
BRANCHES = ROOT / "example_notebooks" / "branches.ipynb"
GOLDEN = ROOT / "tests" / "golden_exports" / "airflow"
NBOPS = str(Path(sys.executable).parent / "nbops")
# Airflow 3 with the providers the DAG files import (the default), or Airflow 2 with
# NBOPS_TEST_AIRFLOW=2; each in a virtualenv of its own, made once and kept.
AIRFLOW_PINS = {
    "3": (
        "apache-airflow==3.1.8",
        "apache-airflow-providers-standard==1.21.0",
        "apache-airflow-providers-cncf-kubernetes==10.25.0",
    ),
    "2": ("apache-airflow==2.10.5", "apache-airflow-providers-cncf-kubernetes==10.10.0"),
}
AIRFLOW = os.environ.get("NBOPS_TEST_AIRFLOW", "3")
AIRFLOW_VENV = ROOT / (".venv-airflow" if AIRFLOW == "3" else f".venv-airflow{AIRFLOW}")
# Run inside the Airflow venv: what Airflow's DagBag makes of a folder of DAG files.
DAGBAG = """
import json, sys
from airflow.models.dagbag import DagBag

bag = DagBag(dag_folder=sys.argv[1], include_examples=False)
print(json.dumps({
    "errors": {path: str(error) for path, error in bag.import_errors.items()},
    "dags": {
        dag_id: {
            "tasks": {t.task_id: sorted(t.upstream_task_ids) for t in dag.tasks},
            "kinds": {t.task_id: type(t).__name__ for t in dag.tasks},
            "params": {n: dag.params.get_param(n).schema for n in dag.params},
            "defaults": {n: dag.params[n] for n in dag.params},
        }
        for dag_id, dag in bag.dags.items()
    },
}))
"""
# Run inside the Airflow venv: the newest run of a DAG and its tasks' states.
STATES = """
import json, sys
from airflow.models import DagRun, TaskInstance
from airflow.utils.session import create_session

with create_session() as session:
    run = session.query(DagRun).filter(DagRun.dag_id == sys.argv[1]).one()
    tasks = session.query(TaskInstance).filter(TaskInstance.run_id == run.run_id)
    states = {ti.task_id: str(ti.state) for ti in tasks}
    print(json.dumps({"run_id": run.run_id, "state": str(run.state), "tasks": states}))
"""
# Run with the tasks' Python in the build folder: the outputs each step recorded for a run.
RECORDS = """
import json, sys
from pipeline.store import open_store
from pipeline.task import record_key

store = open_store(sys.argv[1])
steps = {}
for step in sys.argv[3:]:
    recorded = store.recall(record_key(sys.argv[2], step))
    steps[step] = {name: digest for name, (digest, _) in (recorded or {}).items()}
print(json.dumps(steps))
"""


def export(pipeline: Pipeline, build: Path, out: Path, **request: Any) -> tuple[Path, str]:
    (path,) = AirflowExporter().export(ExportRequest(pipeline, build, out, **request))
    return path, path.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def churn() -> Pipeline:
    return analyse(load_notebook(CHURN))


@pytest.fixture(scope="module")
def churn_build(churn: Pipeline, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The generated package alone (nothing run): what the DAG file points at."""
    build = tmp_path_factory.mktemp("build") / "churn"
    write_pipeline(churn, build)
    return build


# the file, without Airflow


def test_the_dag_file_parses_passes_ruff_and_names_the_notebook_and_its_cells(
    churn: Pipeline, churn_build: Path, tmp_path: Path
) -> None:
    path, text = export(churn, churn_build, tmp_path / "dags", options={"python": "/opt/py"})
    assert path == tmp_path / "dags" / "churn_dag.py"
    tree = ast.parse(text)
    assert "churn.ipynb" in (ast.get_docstring(tree) or "")
    for step in churn.steps:
        cells = " and ".join(str(ref.index) for ref in step.cells)
        assert f"# Step {step.name}: notebook cell{'s' if len(step.cells) > 1 else ''} " in text
        assert f"**Step `{step.name}`** of churn.ipynb: cell" in text
        assert all(f"{ref.index} (`{ref.id}`)" in text for ref in step.cells), cells
    assert f"BUILD = {json.dumps(str(churn_build.resolve()))}" in text
    assert 'PYTHON = "/opt/py"' in text
    assert f"STORE = {json.dumps(str(churn_build.resolve() / 'store'))}" in text
    for parameter in churn.parameters:
        assert f"-p {parameter.name}={{{{ params.{parameter.name} | shell_quote }}}}" in text
    lint = subprocess.run(
        [
            sys.executable,
            "-m",
            "ruff",
            "check",
            "--isolated",
            "--line-length",
            "100",
            "--select",
            "E,F,W,I,B,UP",
            path,
        ],
        capture_output=True,
        text=True,
    )
    assert lint.returncode == 0, lint.stdout
    formatted = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--check", "--line-length", "100", path],
        capture_output=True,
        text=True,
    )
    assert formatted.returncode == 0, formatted.stdout


@pytest.mark.parametrize(
    ("golden", "request_options"),
    [
        ("churn_dag.py", {"options": {"python": "/srv/churn-venv/bin/python"}}),
        (
            "churn_pods_dag.py",
            {
                "image": "registry.example/churn:1",
                "store": "s3://bucket/churn",
                "options": {"kubernetes": "true", "secret": "nbops-s3"},
            },
        ),
    ],
)
def test_the_dag_files_match_their_golden_files(
    churn: Pipeline,
    churn_build: Path,
    tmp_path: Path,
    golden: str,
    request_options: dict[str, Any],
) -> None:
    """tests/golden_exports/airflow/ pins the files; after an intended change rewrite them with
    NBOPS_UPDATE_GOLDEN=1 pytest tests/test_export_airflow.py, and read the diff."""
    _, text = export(churn, churn_build, tmp_path, **request_options)
    text = text.replace(str(churn_build.resolve()), "/srv/build/churn")
    pinned = GOLDEN / golden
    if os.environ.get("NBOPS_UPDATE_GOLDEN") == "1":
        pinned.parent.mkdir(parents=True, exist_ok=True)
        pinned.write_text(text, encoding="utf-8")
    hint = (
        "If the change is intended, run NBOPS_UPDATE_GOLDEN=1 pytest tests/test_export_airflow.py."
    )
    assert text == pinned.read_text(encoding="utf-8"), hint


def test_the_dependencies_are_the_lineage_edges_and_the_metrics_inputs(churn: Pipeline) -> None:
    lineage = lineage_json(CHURN)
    edges = {(edge["source"], edge["target"]) for edge in lineage["edges"]}
    metrics = {(producer, "metrics") for _, producer in churn.metrics.inputs}
    assert set(task_edges(churn)) == edges | metrics
    assert len(task_edges(churn)) == len(edges | metrics)


def test_kubernetes_tasks_are_pods_of_the_image_reading_the_store(
    churn: Pipeline, churn_build: Path, tmp_path: Path
) -> None:
    _, text = export(
        churn,
        churn_build,
        tmp_path,
        image="registry.example/churn:1",
        store="s3://bucket/churn",
        options={"kubernetes": "1", "secret": "churn-store"},
    )
    ast.parse(text)
    assert 'IMAGE = "registry.example/churn:1"' in text
    assert 'STORE = "s3://bucket/churn"' in text
    assert 'SECRETS = [Secret("env", None, "churn-store")]' in text
    assert text.count("KubernetesPodOperator(") == len(churn.steps) + 1
    assert "BashOperator" not in text and "BUILD" not in text


def test_kubernetes_without_a_shared_store_is_refused(
    churn: Pipeline, churn_build: Path, tmp_path: Path
) -> None:
    pods = {"image": "churn:1", "options": {"kubernetes": "true"}}
    with pytest.raises(ExportRefused) as no_store:
        export(churn, churn_build, tmp_path, **pods)
    assert str(no_store.value) == (
        "--kubernetes needs --store: each task runs in a pod of its own, so the artifacts must "
        "live where every pod can read and write them. "
        "Pass a bucket, e.g. --store s3://bucket/prefix."
    )
    with pytest.raises(ExportRefused) as local:
        export(churn, churn_build, tmp_path, store=str(tmp_path / "store"), **pods)
    assert str(local.value) == (
        f"--store {tmp_path}/store is a local folder, which the pods of --kubernetes tasks do "
        "not share. Pass a bucket, e.g. --store s3://bucket/prefix."
    )


def test_kubernetes_without_an_image_names_the_builds_placeholder(
    churn: Pipeline, churn_build: Path, tmp_path: Path
) -> None:
    build = tmp_path / "churn"
    shutil.copytree(churn_build, build)
    (build / "nbops.json").write_text(json.dumps({"name": "churn", "build_id": "b1"}))
    _, text = export(churn, build, tmp_path, store="s3://b/p", options={"kubernetes": "1"})
    assert 'IMAGE = "<registry>/churn:b1"' in text


def test_an_unknown_option_is_refused_listing_the_known_ones(
    churn: Pipeline, churn_build: Path, tmp_path: Path
) -> None:
    with pytest.raises(ExportRefused, match=r"^the airflow exporter has no option 'pods'\. \("):
        export(churn, churn_build, tmp_path, options={"pods": "1"})


def test_the_exporter_is_registered_and_needs_no_airflow() -> None:
    (entry,) = metadata.entry_points(group=GROUP, name="airflow")
    found = entry.load()()
    assert isinstance(found, AirflowExporter)
    assert (found.name, found.extra) == ("airflow", "airflow")
    assert found.available()


# Airflow itself, in its own virtualenv


def lineage_json(notebook: Path) -> dict[str, Any]:
    done = subprocess.run(
        [NBOPS, "lineage", str(notebook), "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    data: dict[str, Any] = json.loads(done.stdout)
    return data


def airflow_venv() -> Path:
    """The Airflow venv with its pins, made unless its stamp names them already; a lock keeps
    two test sessions from making it at once."""
    pins = AIRFLOW_PINS[AIRFLOW]
    stamp = AIRFLOW_VENV / ".installed-stamp"
    with open(f"{AIRFLOW_VENV}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.is_file() and stamp.read_text() == "\n".join(pins):
            return AIRFLOW_VENV
        shutil.rmtree(AIRFLOW_VENV, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", AIRFLOW_VENV], check=True)
        pip = [AIRFLOW_VENV / "bin" / "python", "-m", "pip", "install", "--quiet"]
        subprocess.run([*pip, *pins], check=True, timeout=1200)
        stamp.write_text("\n".join(pins))
    return AIRFLOW_VENV


@pytest.fixture(scope="session")
def airflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The environment to run Airflow commands with: its venv first on PATH, AIRFLOW_HOME a
    fresh folder with a migrated SQLite database, DAGs from `<home>/dags`."""
    venv = airflow_venv()
    home = tmp_path_factory.mktemp("airflow")
    (home / "dags").mkdir()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW", "PYTHON", "VIRTUAL_ENV"))
    }
    env.update(
        PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(home / "dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
    )
    subprocess.run(
        ["airflow", "db", "migrate"], env=env, check=True, capture_output=True, timeout=600
    )
    yield env


def in_airflow(env: dict[str, str], *command: str, timeout: float = 600) -> Any:
    """Run a command in the Airflow venv; its stdout's last line, as JSON."""
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-5000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def expected_upstream(notebook: Path, pipeline: Pipeline) -> dict[str, list[str]]:
    """Each task's upstream task ids: the lineage's edges, and the metrics' producers."""
    upstream: dict[str, set[str]] = {step.name: set() for step in pipeline.steps}
    upstream["metrics"] = {producer for _, producer in pipeline.metrics.inputs}
    for edge in lineage_json(notebook)["edges"]:
        upstream[edge["target"]].add(edge["source"])
    return {name: sorted(sources) for name, sources in upstream.items()}


@pytest.mark.slow
def test_airflow_imports_the_dags_with_the_lineages_tasks_and_params(
    airflow: dict[str, str], churn: Pipeline, churn_build: Path, tmp_path: Path
) -> None:
    dags = tmp_path / "dags"
    export(churn, churn_build, dags, options={"python": sys.executable})
    branches = analyse(load_notebook(BRANCHES))
    write_pipeline(branches, tmp_path / "branches")
    export(branches, tmp_path / "branches", dags)
    _, text = export(
        churn,
        churn_build,
        tmp_path / "pods",
        image="registry.example/churn:1",
        store="s3://bucket/churn",
        options={"kubernetes": "1", "secret": "churn-store"},
    )
    (dags / "pods_dag.py").write_text(text.replace('dag_id="churn"', 'dag_id="pods"'))
    bag = in_airflow(airflow, "python", "-c", DAGBAG, str(dags))
    assert bag["errors"] == {}
    assert sorted(bag["dags"]) == ["branches", "churn", "pods"]
    assert bag["dags"]["churn"]["tasks"] == expected_upstream(CHURN, churn)
    assert bag["dags"]["pods"]["tasks"] == expected_upstream(CHURN, churn)
    assert bag["dags"]["branches"]["tasks"] == expected_upstream(BRANCHES, branches)
    assert set(bag["dags"]["churn"]["kinds"].values()) == {"BashOperator"}
    assert set(bag["dags"]["pods"]["kinds"].values()) == {"KubernetesPodOperator"}
    assert bag["dags"]["churn"]["defaults"] == {p.name: p.default for p in churn.parameters}
    assert bag["dags"]["churn"]["params"]["test_size"]["type"] == "number"
    assert bag["dags"]["churn"]["params"]["n_rows"]["type"] == "integer"


def nbops_json(*arguments: str, cwd: Path) -> Any:
    """An nbops command's JSON output, with its state in `cwd`."""
    env = {**os.environ, "NBOPS_HOME": str(cwd / ".nbops")}
    done = subprocess.run(
        [NBOPS, *arguments, "--format", "json"],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(done.stdout)


def run_in_airflow(
    airflow: dict[str, str], notebook: Path, tmp_path: Path, conf: dict[str, Any]
) -> None:
    """`nbops run` and `nbops build` the notebook, export its DAG and `airflow dags test` it
    with `conf` as the run's params: every task succeeds, and the outputs each step recorded
    in the store have the hashes `nbops run` gave them, with the same parameters."""
    parameters = [part for name, value in conf.items() for part in ("-p", f"{name}={value}")]
    record = nbops_json("run", str(notebook), *parameters, cwd=tmp_path)
    hashes = {step["name"]: step["outputs"] for step in record["steps"]}
    build = tmp_path / "build" / notebook.stem
    nbops_json("build", str(notebook), "-o", str(build), *parameters, cwd=tmp_path)
    pipeline = analyse(load_notebook(notebook))
    dags = Path(airflow["AIRFLOW__CORE__DAGS_FOLDER"])
    path, text = export(pipeline, build, dags, options={"python": sys.executable})
    # `nbops export` of the build writes the same file, bar the Python the tasks run with.
    cli = tmp_path / "cli"
    exported = subprocess.run(
        [NBOPS, "export", str(build), "--to", "airflow", "-o", str(cli)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert exported.returncode == 0, exported.stderr
    python = f"PYTHON = {json.dumps(sys.executable)}"
    assert (cli / path.name).read_text() == text.replace(python, 'PYTHON = "python3"')

    command = ["airflow", "dags", "test", notebook.stem, "--conf", json.dumps(conf)]
    ran = subprocess.run(command, env=airflow, capture_output=True, text=True, timeout=900)
    assert ran.returncode == 0, ran.stdout[-5000:] + ran.stderr[-5000:]
    states = in_airflow(airflow, "python", "-c", STATES, notebook.stem)
    assert states["state"] == "success"
    tasks = [step.name for step in pipeline.steps] + ["metrics"]
    assert states["tasks"] == dict.fromkeys(tasks, "success")
    records = subprocess.run(
        [sys.executable, "-c", RECORDS, str(build / "store"), states["run_id"], *hashes],
        cwd=build,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(records.stdout) == hashes


@pytest.mark.slow
def test_airflow_dags_test_runs_churn_with_the_hashes_of_nbops_run(
    airflow: dict[str, str], tmp_path: Path
) -> None:
    run_in_airflow(airflow, CHURN, tmp_path, {"n_rows": 3000, "max_depth": 6})


@pytest.mark.slow
def test_a_params_value_with_quotes_and_spaces_reaches_its_step_as_one_word(
    airflow: dict[str, str], make_notebook: MakeNotebook, tmp_path: Path
) -> None:
    notebook = make_notebook(
        [
            ('label = "plain"  # shown in the report\ncount = 2', ["parameters"]),
            ("text = label * count", ["step:repeat"]),
            ("size = len(text)", ["step:measure"]),
            ("length = float(size)", ["metrics"]),
        ],
        name="quoting.ipynb",
    )
    run_in_airflow(airflow, notebook, tmp_path, {"label": 'it\'s $HOME; "a b"', "count": 3})


def test_the_cli_passes_exporter_options(tmp_path: Path) -> None:
    """`--option python=...` reaches the DAG file; an unknown option is refused in one line."""
    import subprocess
    import sys

    nbops = str(Path(sys.executable).parent / "nbops")
    notebook = Path(__file__).parent.parent / "example_notebooks" / "branches.ipynb"
    env = {**os.environ, "NBOPS_HOME": str(tmp_path / ".nbops")}
    base = [nbops, "export", str(notebook), "--to", "airflow", "-o", "dags", "--no-run"]
    done = subprocess.run(
        [*base, "--option", "python=/srv/venv/bin/python"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert 'PYTHON = "/srv/venv/bin/python"' in (tmp_path / "dags" / "branches_dag.py").read_text()
    wrong = subprocess.run(
        [*base, "--option", "pyton=x"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert wrong.returncode == 2
    assert wrong.stderr.startswith("error: the airflow exporter has no option 'pyton'.")
