"""The ipywidgets and the `%nbops` magics: built from real lineage JSON and real deploy jobs."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from builders import notebook_json
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from markupsafe import escape

from nbops.deploy import local as deploy
from nbops.deploy.processes import free_port
from nbops.lab.magics import MagicLine, MagicUsage, parse_line
from nbops.lab.server.jobs import Job, JobRegistry
from nbops.lab.server.operations import lineage_of_file
from nbops.lab.widgets import DeployPanel, LineageView
from nbops.run.home import Home
from nbops.run.state import StepRecord

MODEL = [
    ("factor = 2  # how <b>steep</b>", ["parameters"]),
    ("values = [1, 2, 3]", ["step:load"]),
    ("scale = factor * max(values)", ["step:fit"]),
    ("assert scale > 0", ["test"]),
    ("total = scale * len(values)", ["metrics"]),
    ("def predict(x: float) -> float:\n    '''Scale x.'''\n    return x * scale", ["serve"]),
    "predict(3.0)",
]


@pytest.fixture
def model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The notebook in a folder of its own, which is also the working folder (builds go there)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NBOPS_HOME", str(tmp_path / ".nbops"))
    path = tmp_path / "model.ipynb"
    path.write_text(json.dumps(notebook_json(MODEL)))
    return path


# the lineage view


def test_the_lineage_view_shows_steps_flows_endpoints_and_diagnostics(
    example_notebooks: dict[str, Path],
) -> None:
    lineage = lineage_of_file(example_notebooks["churn"], "churn.ipynb")

    view = LineageView(lineage)

    sections = {tab: widget.value for tab, widget in view.sections.items()}
    assert "<b>churn.ipynb</b>" in view.header.value
    for step in lineage["steps"]:
        assert f"<td><b>{step['name']}</b></td>" in sections["steps"]
    for edge in lineage["edges"]:
        row = f"<td>{edge['source']}</td><td>&rarr;</td><td>{edge['target']}</td>"
        assert row in sections["flows"]
        for artifact in edge["artifacts"]:
            assert f"<code>{artifact}</code>" in sections["flows"]
    for endpoint in lineage["endpoints"]:
        assert f"<code>POST /{endpoint['route']}</code>" in sections["endpoints"]
        assert f"<code>{escape(endpoint['signature'])}</code>" in sections["endpoints"]
    assert view._titles() == [
        f"Steps ({len(lineage['steps'])})",
        f"Flows ({len(lineage['edges']) + sum(len(e['artifacts']) for e in lineage['endpoints'])})",
        f"Endpoints ({len(lineage['endpoints'])})",
        f"Diagnostics ({len(lineage['diagnostics'])})",
    ]
    assert "application/vnd.jupyter.widget-view+json" in view._repr_mimebundle_()


def test_the_lineage_view_lists_diagnostics_and_escapes_notebook_text(tmp_path: Path) -> None:
    path = tmp_path / "typo.ipynb"
    cells = [("n = 1  # <script>alert(1)</script>", ["parameters"]), ("y = X + n", ["step:a"])]
    path.write_text(json.dumps(notebook_json(cells)))

    view = LineageView(lineage_of_file(path, "typo.ipynb"))

    assert "<script>" not in view.header.value
    assert "(&lt;script&gt;alert(1)&lt;/script&gt;)" in view.header.value
    diagnostics = view.sections["diagnostics"].value
    assert "<td>cell 1 line 1</td>" in diagnostics
    assert "&#39;X&#39; is read but no earlier step, setup or parameters cell writes it." in (
        diagnostics
    )


# the deploy button


def test_a_notebook_with_errors_is_not_deployed(tmp_path: Path) -> None:
    path = tmp_path / "broken.ipynb"
    path.write_text(json.dumps(notebook_json([("y = nope", ["step:a"])])))
    panel = DeployPanel(path, home=Home(tmp_path / ".nbops"), registry=JobRegistry())

    panel.button.click()

    assert panel.job is None
    assert "<b>cannot deploy</b>: broken.ipynb cell 0 [step:a] line 1: &#39;nope&#39;" in (
        panel.status.value
    )
    assert not (tmp_path / ".nbops" / "deployments").exists()


@pytest.fixture
def stopped_afterwards(model: Path) -> Iterator[Home]:
    home = Home(model.parent / ".nbops")
    yield home
    for row in deploy.status(home=home):
        if row["status"] == "healthy":
            deploy.stop(row["name"], home=home)


@pytest.mark.slow
def test_clicking_deploy_starts_a_job_and_shows_it_live_until_healthy(
    model: Path, stopped_afterwards: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    panel = DeployPanel(
        model, port=port, home=stopped_afterwards, registry=JobRegistry(), poll_interval=0.05
    )
    shown: list[dict[str, Any]] = []
    show = panel.show

    def recording(snapshot: dict[str, Any]) -> None:
        shown.append(snapshot)
        show(snapshot)

    monkeypatch.setattr(panel, "show", recording)

    panel.button.click()

    assert panel.job is not None and panel.button.disabled
    assert panel.wait(120), "the deploy did not finish in 120 s"
    final = panel.job.snapshot()
    assert final["state"] == "succeeded", final
    assert final["result"]["started_by"].endswith(" via widget")
    assert {"building", "starting", "healthy"} <= {s["name"] for s in final["stages"]}
    assert shown[0]["state"] == "running" and shown[-1] == final
    assert 'data-state="succeeded"' in panel.status.value
    url = f"http://127.0.0.1:{port}"
    assert f'<b>model v1</b> is healthy at <a href="{url}" target="_blank">' in panel.status.value
    assert "<code>total = 18</code>" in panel.status.value
    assert not panel.button.disabled
    with urllib.request.urlopen(f"{url}/healthz", timeout=10) as answer:
        assert answer.status == 200

    stopped = deploy.stop("model", home=stopped_afterwards)
    assert stopped is not None and stopped.status == "stopped"


def test_the_deploy_panel_names_every_step_running_at_once(model: Path) -> None:
    panel = DeployPanel(model, registry=JobRegistry())
    job = Job("deploy", "model.ipynb", ["load", "b1", "b2"])
    job.on_stage("building", "running and building model.ipynb")
    for name in ("b1", "b2"):
        job.on_step(name, "start", StepRecord(name, "not-run"))

    panel.show(job.snapshot())

    assert "running step 2 of 3: <b>b1</b> · step 3 of 3: <b>b2</b></div>" in panel.status.value


# the magics


@pytest.fixture
def shell() -> Iterator[InteractiveShell]:
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "nbops")
    yield shell
    InteractiveShell.clear_instance()


def test_nbops_lineage_renders_the_lineage_of_the_path_given(shell: InteractiveShell, model: Path):
    view = shell.run_line_magic("nbops", "lineage model.ipynb")

    assert isinstance(view, LineageView)
    assert view.lineage == lineage_of_file(model, "model.ipynb")


def test_the_path_defaults_to_the_notebook_the_front_end_names(
    shell: InteractiveShell, model: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    with pytest.raises(UsageError, match="cannot tell which notebook this kernel runs for"):
        shell.run_line_magic("nbops", "lineage")

    monkeypatch.setenv("JPY_SESSION_NAME", str(model))  # Jupyter's server
    assert shell.run_line_magic("nbops", "lineage").lineage["notebook"]["path"] == "model.ipynb"

    monkeypatch.delenv("JPY_SESSION_NAME")
    shell.user_ns["__vsc_ipynb_file__"] = str(model)  # VS Code
    panel = shell.run_line_magic("nbops", "deploy --name churn-api --port 8123")
    assert isinstance(panel, DeployPanel)
    assert (panel.notebook, panel.name, panel.port) == (model, "churn-api", 8123)
    assert panel.button.description == "Deploy churn-api"
    assert panel.job is None  # nothing runs until the button is clicked


@pytest.mark.parametrize(
    ("line", "parsed"),
    [
        ("lineage", MagicLine("lineage")),
        ("lineage 'my notebook.ipynb'", MagicLine("lineage", "my notebook.ipynb")),
        ("deploy nb.ipynb --name api", MagicLine("deploy", "nb.ipynb", "api")),
        ("deploy --name=api --port 9000", MagicLine("deploy", None, "api", 9000)),
    ],
)
def test_magic_lines(line: str, parsed: MagicLine) -> None:
    assert parse_line(line) == parsed


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("", "unknown command ''."),
        ("run nb.ipynb", "unknown command 'run nb.ipynb'."),
        ("lineage --name x", "'--name' is not understood here."),
        ("lineage a.ipynb b.ipynb", "'b.ipynb' is not understood here."),
        ("deploy --port http", "--port 'http' is not a port number."),
    ],
)
def test_wrong_magic_lines_say_how_to_write_them(line: str, message: str) -> None:
    with pytest.raises(MagicUsage) as caught:
        parse_line(line)
    assert caught.value.message == message
    assert caught.value.fix.startswith(("Use %nbops lineage [PATH]", "Give --port"))


def test_a_wrong_magic_line_is_a_usage_error_in_ipython(shell: InteractiveShell) -> None:
    with pytest.raises(UsageError, match=r"^unknown command 'depoy'\. Use %nbops lineage"):
        shell.run_line_magic("nbops", "depoy")
