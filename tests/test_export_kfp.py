"""`nbops export --to kfp`: the kfp SDK's own compiler writes the YAML, read back here and held
against `nbops lineage --format json` (tasks, edges, parameters, commands, display names)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from nbops.cli import cli

EXAMPLES = Path(__file__).resolve().parent.parent / "example_notebooks"
STORE = "s3://bucket/prefix"
RUN_ID = "{{$.pipeline_job_uuid}}"
KFP_TYPES = {"int": "NUMBER_INTEGER", "float": "NUMBER_DOUBLE", "str": "STRING", "bool": "BOOLEAN"}


@dataclass(frozen=True)
class Exported:
    lineage: dict[str, Any]
    spec: dict[str, Any]
    output: str

    @property
    def tasks(self) -> dict[str, Any]:
        tasks: dict[str, Any] = self.spec["root"]["dag"]["tasks"]
        return tasks

    def container(self, task: str) -> dict[str, Any]:
        component = self.spec["components"][self.tasks[task]["componentRef"]["name"]]
        container: dict[str, Any] = self.spec["deploymentSpec"]["executors"][
            component["executorLabel"]
        ]["container"]
        return container


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A working directory with its own .nbops, holding copies of the two examples."""
    root = tmp_path_factory.mktemp("export")
    for name in ("churn.ipynb", "branches.ipynb"):
        shutil.copy(EXAMPLES / name, root / name)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.setenv("NBOPS_HOME", str(root / ".nbops"))
        patch.delenv("NBOPS_STORE", raising=False)
        yield root


def export(notebook: str, *options: str) -> Exported:
    lineage = json.loads(invoke("lineage", notebook, "--format", "json").output)
    out = Path(notebook).with_suffix(".kfp.yaml")
    done = invoke("export", notebook, "--to", "kfp", "-o", str(out), "--store", STORE, *options)
    assert done.exit_code == 0, done.output
    return Exported(lineage, yaml.safe_load(out.read_text()), done.output)


@pytest.fixture(scope="module")
def churn(project: Path) -> Exported:
    """Built with its run, as `nbops build` does."""
    return export("churn.ipynb")


@pytest.fixture(scope="module")
def branches(project: Path) -> Exported:
    """Four branches off one step, joined again; built without a run (--no-run)."""
    return export("branches.ipynb", "--no-run")


@pytest.fixture(params=["churn", "branches"])
def exported(request: pytest.FixtureRequest) -> Exported:
    found: Exported = request.getfixturevalue(request.param)
    return found


def test_tasks_and_dependencies_are_the_lineage_edges(exported: Exported) -> None:
    steps = [s["name"] for s in exported.lineage["steps"]]
    assert set(exported.tasks) == {*steps, "metrics"}
    for step in steps:
        upstream = {e["source"] for e in exported.lineage["edges"] if e["target"] == step}
        assert set(exported.tasks[step].get("dependentTasks", [])) == upstream, step


def test_metrics_run_after_the_steps_they_read(churn: Exported) -> None:
    assert set(churn.tasks["metrics"]["dependentTasks"]) == {"evaluate"}


def test_pipeline_parameters_are_the_notebook_parameters(exported: Exported) -> None:
    found = exported.spec["root"]["inputDefinitions"]["parameters"]
    expected = exported.lineage["parameters"]
    assert sorted(found) == sorted(p["name"] for p in expected)
    for parameter in expected:
        kfp = found[parameter["name"]]
        assert kfp["parameterType"] == KFP_TYPES[parameter["type"]]
        assert kfp["defaultValue"] == parameter["default"]


def test_each_task_runs_the_step_entry_point(exported: Exported) -> None:
    for task in exported.tasks:
        container = exported.container(task)
        line = [*container["command"], *container["args"]]
        at = line.index("python", 1 if task == "metrics" else 0)
        assert line[at : at + 5] == ["python", "-m", "pipeline", "step", task]
        assert line[line.index("--store") + 1] == STORE
        run_id = line[line.index("--run-id") + 1]
        assert run_id == "{{$.inputs.parameters['run_id']}}"
        given = exported.tasks[task]["inputs"]["parameters"]["run_id"]
        assert given == {"runtimeValue": {"constant": RUN_ID}}
        assert container["image"].startswith("<registry>/")


def test_tasks_pass_the_parameters_they_read(churn: Exported) -> None:
    train = churn.container("train")["args"]
    passed = [train[i + 1] for i, arg in enumerate(train) if arg == "-p"]
    assert passed == [
        "n_estimators={{$.inputs.parameters['n_estimators']}}",
        "max_depth={{$.inputs.parameters['max_depth']}}",
        "seed={{$.inputs.parameters['seed']}}",
    ]
    given = churn.tasks["train"]["inputs"]["parameters"]
    assert given["n_estimators"] == {"componentInputParameter": "n_estimators"}
    assert "-p" not in churn.container("evaluate")["args"]


def test_display_names_and_descriptions_name_the_cells(churn: Exported) -> None:
    names = {task: spec["taskInfo"]["name"] for task, spec in churn.tasks.items()}
    assert names == {
        "load": "churn.ipynb cell 6 [step:load]",
        "features": "churn.ipynb cells 8-9 [step:features]",
        "train": "churn.ipynb cell 11 [step:train]",
        "evaluate": "churn.ipynb cell 14 [step:evaluate]",
        "report": "churn.ipynb cell 19 [step:report]",
        "metrics": "churn.ipynb cell 17 [metrics]",
    }
    assert churn.spec["pipelineInfo"]["name"] == "churn"


def test_metrics_task_has_a_metrics_output(exported: Exported) -> None:
    component = exported.spec["components"]["comp-metrics"]
    output = component["outputDefinitions"]["artifacts"]["metrics"]["artifactType"]
    assert output["schemaTitle"] == "system.Metrics"
    command = exported.container("metrics")["command"]
    assert command[:2] == ["python", "-c"]
    assert command[3] == "{{$}}"  # KFP's executor input: where the metrics are reported


def test_kfp_caching_is_off(exported: Exported) -> None:
    assert all(not t["cachingOptions"].get("enableCache") for t in exported.tasks.values())


def test_cli_says_the_image_is_a_placeholder(churn: Exported) -> None:
    assert "note: no --image: the tasks run <registry>/churn:" in churn.output
    assert "Build the image from build/churn/Dockerfile" in churn.output


def test_a_build_folder_exports_with_the_image_given(churn: Exported) -> None:
    done = invoke(
        "export", "build/churn", "--to", "kfp", "-o", "out/p.yaml", "--store", STORE,
        "--image", "registry.example/churn:1",
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    assert done.output == "wrote out/p.yaml (kfp, from build/churn/)\n"
    spec = yaml.safe_load(Path("out/p.yaml").read_text())
    images = {e["container"]["image"] for e in spec["deploymentSpec"]["executors"].values()}
    assert images == {"registry.example/churn:1"}


def test_kfp_needs_a_store_every_pod_reaches(churn: Exported) -> None:
    done = invoke("export", "build/churn", "--to", "kfp", "-o", "x.yaml")
    assert done.exit_code == 2
    assert done.output == (
        "error: a Kubeflow pipeline needs --store: each task runs in a pod of its own, so the "
        "artifacts must live where every pod can read and write them. Pass a bucket, e.g. "
        "--store s3://bucket/prefix.\n"
    )
    done = invoke("export", "build/churn", "--to", "kfp", "-o", "x.yaml", "--store", "here")
    assert done.exit_code == 2
    assert done.output.startswith("error: --store here is a local folder")
    assert not Path("x.yaml").exists()


def test_list_shows_the_installed_exporters(project: Path) -> None:
    done = invoke("export", "--list")
    assert done.exit_code == 0
    names = [line.split("\t")[0] for line in done.output.splitlines()]
    assert names == ["airflow", "kfp"]
    assert "kfp\tthe Kubeflow Pipelines SDK (kfp 2.x)\tavailable" in done.output


def test_an_unknown_target_lists_the_installed_ones(project: Path) -> None:
    done = invoke("export", "churn.ipynb", "--to", "nope", "-o", "x")
    assert done.exit_code == 2
    assert done.output == (
        "error: --to 'nope' names no installed exporter. "
        "Installed: airflow, kfp (`nbops export --list`).\n"
    )


def test_a_notebook_with_analysis_errors_is_refused(project: Path) -> None:
    broken = json.loads((project / "branches.ipynb").read_text())
    broken["cells"][8]["source"] = "summary = {'squares': squares, 'missing': not_made_here}"
    Path("broken.ipynb").write_text(json.dumps(broken))
    done = invoke("export", "broken.ipynb", "--to", "kfp", "-o", "b.yaml", "--store", STORE)
    assert done.exit_code == 2
    assert done.output.count("\n") == 1
    assert done.output.startswith("error: broken.ipynb cell 8 [step:join] line 1: 'not_made_here'")
    assert done.output.endswith("(1 error in all; `nbops check` lists them.)\n")
    assert not Path("build/broken").exists()


def test_a_parameter_without_a_kfp_type_is_refused(project: Path) -> None:
    odd = json.loads((project / "branches.ipynb").read_text())
    odd["cells"][1]["source"] = "size = None  # no KFP type"
    Path("odd.ipynb").write_text(json.dumps(odd))
    done = invoke(
        "export", "odd.ipynb", "--no-run", "--to", "kfp", "-o", "o.yaml", "--store", "s3://b"
    )
    assert done.exit_code == 2
    assert done.output.startswith(
        "error: odd.ipynb cell 1 [parameters]: parameter 'size' (default None) has no Kubeflow "
        "Pipelines type"
    )
