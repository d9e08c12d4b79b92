"""`nbops ci init`: the workflow found, written once, valid for GitHub and GitLab, and passing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from builders import notebook_json
from click.testing import CliRunner

from nbops.ci.gate_config import declared_gates, tool_table
from nbops.ci.repository import find_notebooks, plan_workflow
from nbops.ci.workflows import (
    INSTALL_STEP,
    Install,
    NotebookJob,
    Workflow,
    render_workflow,
    yaml_scalar,
)
from nbops.cli import cli
from nbops.errors import CiConfigError, UnknownMetric

BIN = Path(sys.executable).parent
# The workflows rendered from fixed settings, pinned; after an intended change to templates/ci/,
# rewrite them with NBOPS_UPDATE_GOLDEN=1 pytest tests/test_ci_init.py and review the diff.
GOLDEN = Path(__file__).resolve().parent / "golden_ci"
UPDATE = os.environ.get("NBOPS_UPDATE_GOLDEN") == "1"
GATES = """\
[tool.nbops.notebooks."model.ipynb"]
require = ["score>=0.5"]
must_beat = ["score"]
"""


def scored(score: str = "0.75") -> dict[str, Any]:
    """A tiny notebook with a parameter, two steps, a metric and a test cell."""
    return notebook_json(
        [
            ("n = 4", ["parameters"]),
            ("data = list(range(n))", ["step:load"]),
            ("total = sum(data)", ["step:fit"]),
            (f"score = {score}", ["metrics"]),
            ("assert total == n * (n - 1) // 2", ["test"]),
        ]
    )


def write(path: Path, content: dict[str, Any] | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository with one tagged notebook and its gates in pyproject.toml."""
    git(tmp_path, "init", "-q")
    write(tmp_path / "model.ipynb", scored())
    write(tmp_path / "pyproject.toml", GATES)
    return tmp_path


def ci_init(root: Path, *args: str) -> Any:
    cwd = Path.cwd()
    os.chdir(root)
    try:
        return CliRunner().invoke(cli, ["ci", "init", *args])
    finally:
        os.chdir(cwd)


# finding notebooks and their gates


def test_finds_tagged_notebooks_only(repo: Path) -> None:
    untagged = notebook_json(["x = 1"])
    write(repo / "notes" / "scratch.ipynb", untagged)
    write(repo / "notes" / "more.ipynb", scored())
    for skipped in (".ipynb_checkpoints", "build/model", ".nbops", ".venv", "venv"):
        write(repo / skipped / "model.ipynb", scored())
    write(repo / "env2" / "pyvenv.cfg", "")
    write(repo / "env2" / "x.ipynb", scored())

    found = [p.relative_to(repo).as_posix() for p in find_notebooks(repo)]

    assert found == ["model.ipynb", "notes/more.ipynb"]


def test_pyproject_gates_win_over_the_notebooks_metadata_key_by_key() -> None:
    tool = tool_table(GATES)
    metadata = {"nbops": {"require": ["score>=0.1"], "tolerance": 0.01}}

    gates = declared_gates("model.ipynb", tool, metadata)

    assert gates.as_dict() == {
        "require": ["score>=0.5"],
        "must_beat": ["score"],
        "tolerance": 0.01,
        "params_file": None,
        "sources": [
            'pyproject.toml [tool.nbops.notebooks."model.ipynb"] require',
            'pyproject.toml [tool.nbops.notebooks."model.ipynb"] must_beat',
            "model.ipynb metadata.nbops.tolerance",
        ],
    }


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            'require = ["score=0.5"]',
            "pyproject.toml [tool.nbops.notebooks.\"model.ipynb\"] require: 'score=0.5': a gate "
            "is a metric name, an operator and a number. Did you mean 'score==0.5' or "
            "'score>=0.5'?",
        ),
        (
            "require = 0.5",
            'pyproject.toml [tool.nbops.notebooks."model.ipynb"] require: must be a list of '
            'strings, not 0.5. Write it like ["test_accuracy>=0.8"].',
        ),
        (
            "requires = []",
            'pyproject.toml [tool.nbops.notebooks."model.ipynb"]: requires is not a key nbops '
            "reads. Its keys are: require, must_beat, tolerance, params_file.",
        ),
    ],
)
def test_a_wrong_declaration_names_where_and_the_fix(table: str, message: str) -> None:
    tool = tool_table(f'[tool.nbops.notebooks."model.ipynb"]\n{table}\n')
    with pytest.raises(CiConfigError) as raised:
        declared_gates("model.ipynb", tool, {})
    assert raised.value.render() == message


def test_a_gate_on_a_metric_the_notebook_lacks_fails_ci_init(repo: Path) -> None:
    write(repo / "pyproject.toml", '[tool.nbops.notebooks."model.ipynb"]\nrequire = ["scor>0"]\n')
    with pytest.raises(UnknownMetric) as raised:
        plan_workflow(repo)
    assert raised.value.render() == (
        'pyproject.toml [tool.nbops.notebooks."model.ipynb"] require: model.ipynb has no metric '
        "'scor'. Did you mean 'score'? Its metrics are: score."
    )


def test_a_table_for_no_notebook_says_which_was_meant(repo: Path) -> None:
    write(repo / "pyproject.toml", '[tool.nbops.notebooks."modle.ipynb"]\nrequire = []\n')
    with pytest.raises(CiConfigError) as raised:
        plan_workflow(repo)
    assert raised.value.render() == (
        'pyproject.toml [tool.nbops.notebooks."modle.ipynb"]: names no notebook. Did you mean '
        "'model.ipynb'? Paths are from the repository's root, with /."
    )


def test_gates_from_pyproject_and_metadata_are_in_the_workflow(repo: Path) -> None:
    other = scored()
    other["metadata"]["nbops"] = {"require": ["score>0.25"], "params_file": "small.yaml"}
    write(repo / "sub dir" / "other.ipynb", other)

    text = render_workflow(plan_workflow(repo), "github")
    steps = {s.get("name"): s.get("run") for s in yaml.safe_load(text)["jobs"]["test"]["steps"]}

    assert steps["nbops test model.ipynb"] == (
        "nbops test model.ipynb --require 'score>=0.5' --junit reports/model.xml "
        "--report reports/model.html"
    )
    assert steps["nbops test sub dir/other.ipynb"] == (
        "nbops test 'sub dir/other.ipynb' --params-file small.yaml --require 'score>0.25' "
        "--junit reports/other.xml --report reports/other.html"
    )


def test_must_beat_goes_to_the_deploy_when_one_is_configured(repo: Path) -> None:
    write(
        repo / "pyproject.toml",
        f'{GATES}\n[tool.nbops.ci]\ndeploy = "local"\nrunner = "serving"\nnbops_home = "/srv"\n',
    )

    retrain = yaml.safe_load(render_workflow(plan_workflow(repo), "github"))["jobs"]["retrain"]

    assert retrain["runs-on"] == ["self-hosted", "serving"]
    assert retrain["steps"][-1]["run"] == (
        "nbops deploy model.ipynb --target local --require 'score>=0.5' --must-beat score"
    )


def golden_workflows() -> dict[str, str]:
    """Each flavour for two notebooks (one with gates, a params file and a committed build),
    retraining into artifacts, and again deploying on a self-hosted runner."""
    gates = declared_gates(
        "example_notebooks/churn.ipynb",
        tool_table(
            '[tool.nbops.notebooks."example_notebooks/churn.ipynb"]\n'
            'require = ["test_accuracy>=0.8", "roc_auc>0.7"]\nmust_beat = ["test_accuracy"]\n'
            'tolerance = 0.005\nparams_file = "ci/churn.yaml"\n'
        ),
        {},
    )
    jobs = (
        NotebookJob("example_notebooks/churn.ipynb", gates, "build/churn"),
        NotebookJob("example_notebooks/regression.ipynb"),
    )
    install = Install(
        "nbops==0.1.0", ("build/churn/requirements.lock",), ("requirements.txt",), True, True
    )
    plain = Workflow(jobs, install, "0.1.0")
    deploying = Workflow(
        jobs, install, "0.1.0", deploy="local", runner="serving", nbops_home="/srv/nbops"
    )
    return {
        f"{flavour}{suffix}.yml": render_workflow(workflow, flavour)
        for flavour in ("github", "gitlab")
        for suffix, workflow in (("", plain), ("-deploy", deploying))
    }


def test_golden_workflows() -> None:
    found = golden_workflows()
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        for name, text in found.items():
            (GOLDEN / name).write_text(text, encoding="utf-8")
    pinned = {p.name: p.read_text(encoding="utf-8") for p in sorted(GOLDEN.glob("*.yml"))}
    assert pinned == found


def test_github_and_gitlab_run_the_same_commands() -> None:
    texts = golden_workflows()
    for suffix in ("", "-deploy"):
        github = yaml.safe_load(texts[f"github{suffix}.yml"])["jobs"]
        gitlab = yaml.safe_load(texts[f"gitlab{suffix}.yml"])
        for ours, theirs in (("test", "nbops-test"), ("retrain", "nbops-retrain")):
            runs = [s["run"] for s in runnable_steps(github[ours])]
            assert runs == gitlab[theirs]["script"]
        install = next(s for s in github["test"]["steps"] if s.get("name") == INSTALL_STEP)
        assert install["run"].splitlines() == gitlab["default"]["before_script"]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"deploy": "k8s"},
            "pyproject.toml [tool.nbops.ci]: nbops deploy --target k8s does not judge must_beat "
            "(model.ipynb): the version serving is known only to the local target's state db. "
            'Deploy with deploy = "local" on the serving machine\'s runner, or drop must_beat.',
        ),
        (
            {"deploy": "local"},
            'pyproject.toml [tool.nbops.ci]: deploy = "local" needs nbops_home: the state db of '
            "the versions serving, and their folders, must outlive the job's checkout. Add "
            'nbops_home = "/srv/nbops" (a folder on the serving machine).',
        ),
        (
            {"deploy": "heroku"},
            "pyproject.toml [tool.nbops.ci]: deploy = 'heroku' is not a deploy target. Use one "
            "of: local, docker, k8s.",
        ),
    ],
)
def test_a_deploy_that_would_not_be_gated_is_refused(
    settings: dict[str, str], message: str
) -> None:
    gates = declared_gates("model.ipynb", tool_table(GATES), {})
    with pytest.raises(CiConfigError) as raised:
        Workflow((NotebookJob("model.ipynb", gates),), Install("nbops"), "0.1.0", **settings)
    assert raised.value.render() == message


# writing it


def test_running_it_twice_changes_nothing_and_a_changed_file_needs_force(repo: Path) -> None:
    first = ci_init(repo)
    path = repo / ".github" / "workflows" / "nbops.yml"
    written = path.read_bytes()
    again = ci_init(repo)

    assert first.exit_code == 0, first.output
    assert first.output.splitlines()[:2] == [
        "written .github/workflows/nbops.yml",
        "  model.ipynb: check, test (score>=0.5); scheduled: retrain, build",
    ]
    assert (again.exit_code, again.output) == (0, ".github/workflows/nbops.yml unchanged\n")
    assert path.read_bytes() == written

    path.write_text(path.read_text() + "# mine\n")
    refused = ci_init(repo, "--schedule", "0 7 * * *")
    assert refused.exit_code == 1
    assert refused.output == (
        "error: .github/workflows/nbops.yml: exists and differs from the workflow nbops ci init "
        "writes. Run it again with --force to replace it.\n"
    )
    assert path.read_text().endswith("# mine\n")

    forced = ci_init(repo, "--force", "--schedule", "0 7 * * *")
    assert forced.exit_code == 0, forced.output
    assert forced.output.startswith("replaced .github/workflows/nbops.yml\n")
    assert '- cron: "0 7 * * *"' in path.read_text()


def test_gitlab_writes_its_own_file(repo: Path) -> None:
    done = ci_init(repo, "--gitlab")
    assert done.exit_code == 0, done.output
    assert done.output.startswith("written .gitlab-ci.yml\n")
    assert (repo / ".gitlab-ci.yml").is_file()
    assert not (repo / ".github").exists()


def test_a_bad_schedule_is_refused() -> None:
    done = CliRunner().invoke(cli, ["ci", "init", "--schedule", "weekly"])
    assert done.exit_code == 2
    assert "'weekly' is not a cron schedule of five fields" in done.output


def test_yaml_scalars_read_back_as_the_same_text() -> None:
    for text in ["nbops check a.ipynb", "a: b", "x #y", "true", "1.5", "* * *", "it's", '"q"']:
        assert yaml.safe_load(f"key: {yaml_scalar(text)}")["key"] == text


# valid for GitHub and GitLab


def committed_build(repo: Path) -> None:
    """A committed build/model/ with its requirements.lock, as `nbops build` writes it."""
    built = run_shell(repo, "nbops build model.ipynb")
    assert built.returncode == 0, built.stdout + built.stderr
    git(repo, "add", "-f", "build/model")


def variants(repo: Path) -> list[str]:
    """GitHub then GitLab workflows: for a plain project, and for one with a committed build
    (its lock installed), requirements.txt, a params file and a deploy on its own runner."""
    plain = [render_workflow(plan_workflow(repo), flavour) for flavour in ("github", "gitlab")]
    write(repo / "build" / "model" / "nbops.json", "{}")
    write(repo / "build" / "model" / "requirements.lock", "# with Python 3.12.1.\nnumpy==2.1\n")
    git(repo, "add", "-f", "build")
    write(repo / "requirements.txt", "numpy\n")
    settings = 'tolerance = 0.01\nparams_file = "small.yaml"\n\n[tool.nbops.ci]\ndeploy = "local"\n'
    write(
        repo / "pyproject.toml", f'{GATES}{settings}runner = "serving"\nnbops_home = "/srv/nbops"\n'
    )
    full = [render_workflow(plan_workflow(repo), flavour) for flavour in ("github", "gitlab")]
    assert "pip install -r build/model/requirements.lock -r requirements.txt nbops==" in full[0]
    assert 'python-version: "3.12"' in full[0]
    return [plain[0], full[0], plain[1], full[1]]


def offline() -> list[str]:
    """`unshare -n` where it works (root on Linux): both checkers must pass without a network."""
    try:
        works = subprocess.run(["unshare", "-n", "true"], capture_output=True, check=False)
    except OSError:
        return []
    return ["unshare", "-n"] if works.returncode == 0 else []


def test_the_github_workflow_passes_actionlint(repo: Path, tmp_path_factory: Any) -> None:
    texts = variants(repo)[:2]
    folder = tmp_path_factory.mktemp("lint") / ".github" / "workflows"
    folder.mkdir(parents=True)
    for index, text in enumerate(texts):
        (folder / f"w{index}.yml").write_text(text)
    # As a project with a self-hosted runner tells actionlint its label.
    config = write(folder.parent / "actionlint.yaml", "self-hosted-runner:\n  labels: [serving]\n")
    done = subprocess.run(
        [
            *offline(),
            str(BIN / "actionlint"),
            "-config-file",
            str(config),
            *sorted(str(p) for p in folder.iterdir()),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_gitlab_file_passes_gitlabs_schema(repo: Path, tmp_path_factory: Any) -> None:
    folder = tmp_path_factory.mktemp("schema")
    files = []
    for index, text in enumerate(variants(repo)[2:]):
        files.append(write(folder / f"gitlab{index}.yml", text))
    # The schema ships inside check-jsonschema: nothing is fetched.
    done = subprocess.run(
        [
            *offline(),
            str(BIN / "check-jsonschema"),
            "--builtin-schema",
            "vendor.gitlab-ci",
            *map(str, files),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


# and it passes


def run_shell(root: Path, script: str) -> subprocess.CompletedProcess[str]:
    """A `run:` block as GitHub runs it (bash -eo pipefail), with this venv's nbops first."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    env.pop("NBOPS_HOME", None)
    env.pop("NBOPS_STORE", None)
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def runnable_steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    """The job's `run:` steps in order. Left out: the `uses:` steps (checkout, setup-python,
    upload-artifact are GitHub's actions, not commands), and the step named INSTALL_STEP, which
    pip-installs nbops and the requirements from the network: this venv already has them."""
    return [s for s in job["steps"] if "run" in s and s.get("name") != INSTALL_STEP]


@pytest.mark.slow
def test_the_workflows_own_steps_pass_in_a_copy_of_a_project(repo: Path) -> None:
    committed_build(repo)
    shutil.rmtree(repo / ".nbops")  # CI starts from a fresh checkout: nothing cached
    workflow = yaml.safe_load(render_workflow(plan_workflow(repo), "github"))
    shutil.rmtree(repo / "build" / "model")
    git(repo, "checkout", "--", "build")  # as committed

    install = [s for s in workflow["jobs"]["test"]["steps"] if s.get("name") == INSTALL_STEP]
    assert "-r build/model/requirements.lock" in install[0]["run"]
    ran: list[str] = []
    for job in ("test", "retrain"):
        for step in runnable_steps(workflow["jobs"][job]):
            done = run_shell(repo, step["run"])
            assert done.returncode == 0, f"{step['run']}\n{done.stdout}{done.stderr}"
            ran.append(step["name"])

    assert ran == [
        "nbops check model.ipynb",
        "nbops build --check model.ipynb",
        "nbops test model.ipynb",
        "nbops run model.ipynb",
        "nbops build model.ipynb",
    ]
    assert (repo / "reports" / "model.xml").is_file()
    assert (repo / "reports" / "model.html").is_file()
    assert (repo / "build" / "model" / "nbops.json").is_file()


@pytest.mark.slow
def test_a_failing_gate_fails_the_workflows_test_step(repo: Path) -> None:
    write(repo / "model.ipynb", scored("0.25"))
    workflow = yaml.safe_load(render_workflow(plan_workflow(repo), "github"))
    test = next(
        s for s in workflow["jobs"]["test"]["steps"] if s.get("name", "").startswith("nbops test")
    )

    done = run_shell(repo, test["run"])

    assert done.returncode == 1, done.stdout + done.stderr
    assert "score" in (repo / "reports" / "model.xml").read_text()
