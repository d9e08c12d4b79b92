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
from nbops.lab.monitoring import context, watch_view
from nbops.lab.server.jobs import Job, JobRegistry
from nbops.lab.server.operations import lineage_of_file
from nbops.lab.widgets import DeployPanel, LineageView, MonitorView
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


def test_the_lineage_view_lists_the_data_files_each_step_reads(tmp_path: Path) -> None:
    path = tmp_path / "files.ipynb"
    cells = [
        ("rows = open('data/customers.csv').read()", ["step:load"]),
        ("extra = 1", ["step:extras", "reads=extra/*.csv"]),
        ("both = (rows, extra, open('data/customers.csv').read())", ["step:join"]),
    ]
    path.write_text(json.dumps(notebook_json(cells)))

    view = LineageView(lineage_of_file(path, "files.ipynb"))

    steps, flows = view.sections["steps"].value, view.sections["flows"].value
    assert "<td><code>data/customers.csv</code></td>" in steps
    assert "<td><code>extra/*.csv</code> <i>(reads=)</i></td>" in steps
    for reader in ("load", "join"):
        row = f"<td><code>data/customers.csv</code></td><td>&rarr;</td><td>{reader}</td>"
        assert f"{row}\n    <td><i>data file</i></td>" in flows
    assert "<td>extras</td>\n    <td><i>data file, named by reads=</i></td>" in flows
    assert view._titles()[1] == "Flows (5)"  # 2 edges, 3 files read


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
    assert panel.monitor.name == "model" and panel.monitor.view is not None
    assert "<b>model v1</b> (healthy)" in panel.monitor.html.value
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


# the deployment's watch and drift


def field(name: str, flagged: bool, **extra: Any) -> dict[str, Any]:
    return {
        "name": name, "kind": "numeric", "psi": 3.1 if flagged else 0.02,
        "p_value": 0.0, "flagged": flagged, "edges": [18.0, 41.5, 70.0, 120.0],
        "reference_shares": [0.3, 0.4, 0.3], "window_shares": [0.0, 0.0, 1.0] if flagged
        else [0.3, 0.4, 0.3], "window_count": 250, "reference_missing_rate": 0.0,
        "window_missing_rate": 0.0, **extra,
    }  # fmt: skip


ROLLED_BACK = {
    "version": 3,
    "reason": "rolled back by its watch: error rate 17.9% (14 of 78 requests answered 5xx) "
    "> 2% (--max-error-rate); v2 serves again",
    "at": 1000.0,
}


def monitoring_view(**row: Any) -> dict[str, Any]:
    """The JSON of GET /nbops/api/deployments/churn/monitoring, as the route contract has it."""
    contract = field("contract", False, kind="categorical", edges=None,
                     categories=["monthly", "annual", "two_year", "__other__"],
                     reference_shares=[0.55, 0.25, 0.2, 0.0],
                     window_shares=[0.5, 0.3, 0.2, 0.0])  # fmt: skip
    route = {
        "route": "predict", "requests": 250, "errors": 3, "error_rate": 0.012,
        "latency_ms": {"p50": 1.2, "p90": 2.0, "p99": 4.1}, "reference": "load.customers",
        "reason": None, "drift": 3.1, "output_drift": 0.4,
        "flagged": ["monthly_charges", "churn_probability"],
        "inputs": [field("tenure_months", False), field("monthly_charges", True), contract],
        "outputs": [field("churn_probability", True, edges=[0.0, 0.5, 0.9, 1.0])],
    }  # fmt: skip
    deployment = {
        "name": "churn", "version": 2, "status": "healthy", "watch": "stable",
        "watch_summary": "stable", "rolled_back": None, "policy": {"max_error_rate": 0.02},
        **row,
    }  # fmt: skip
    report = {
        "enabled": True, "window": {"max_requests": 1000, "max_seconds": 900, "min_requests": 100},
        "max_drift": 0.25, "computed_at": 1000.0, "routes": [route],
    }  # fmt: skip
    return {"deployment": deployment, "monitoring": report, "monitoring_error": None, "proxy": None}


def test_the_monitor_view_shows_the_rollback_and_each_fields_bars(tmp_path: Path) -> None:
    view = MonitorView("churn", home=Home(tmp_path / ".nbops"))

    view.show(monitoring_view(rolled_back=ROLLED_BACK))

    html = view.html.value
    assert 'data-watch="rolled-back"' in html
    assert "<b>v3 stopped; v2 serves again.</b>" in html
    assert f"{escape(ROLLED_BACK['reason'])}</div>" in html
    assert html.count("rolled back by its watch") == 1  # in the notice, not twice
    assert 'data-field="monthly_charges" data-flagged="true"' in html
    assert 'data-field="tenure_months" data-flagged="false"' in html
    assert html.count('data-testid="nbops-drifted"') == 2  # monthly_charges, churn_probability
    assert "<b>churn_probability</b> (output)" in html
    assert "PSI 3.10" in html and "PSI 0.02" in html
    assert "window <b>250 of 1000 requests</b>" in html
    assert "error rate <b>1.2%</b>" in html and "p99 <b>4.1 ms</b>" in html
    assert 'title="70\u2013120: reference 30%, window 100%"' in html
    assert 'title="two_year: reference 20%, window 20%"' in html
    assert 'title="other: reference 0%, window 0%"' in html


def test_the_watch_label_and_its_reason() -> None:
    summary = "watching (25s left; canary 20%, v1 serves the rest)"
    row = {"name": "churn", "status": "healthy", "watch_summary": summary}
    assert watch_view({**row, "watch": "watching"}) == {"state": "watching", "detail": summary}
    degraded = {**row, "watch": "degraded", "watch_summary": "degraded: drift 0.8 > 0.25"}
    assert watch_view(degraded) == {"state": "degraded", "detail": "degraded: drift 0.8 > 0.25"}
    assert watch_view({**row, "watch": "stable"})["state"] == "stable"  # type: ignore[index]
    assert watch_view({**row, "watch": None}) is None
    rolled = watch_view({**row, "watch": "stable", "rolled_back": ROLLED_BACK})
    assert rolled == {"state": "rolled-back", "detail": f"churn v3 {ROLLED_BACK['reason']}"}


def test_a_version_without_monitoring_says_why(tmp_path: Path) -> None:
    view = monitoring_view()
    view.update(monitoring=None, monitoring_error="v2 has no /monitoring: <old> build.")

    shown = context(view)
    assert (shown["routes"], shown["error"]) == ([], "v2 has no /monitoring: <old> build.")
    widget = MonitorView("churn", home=Home(tmp_path / ".nbops"))
    widget.show(view)
    assert "v2 has no /monitoring: &lt;old&gt; build." in widget.html.value


def test_monitoring_an_unknown_deployment_says_so(tmp_path: Path) -> None:
    view = MonitorView("nope", home=Home(tmp_path / ".nbops"))

    assert view.refresh() is None
    assert (
        "<b>cannot monitor</b>: nothing named &#39;nope&#39; was ever deployed. "
        "`nbops status` lists them."
    ) in view.html.value


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
        ("monitor churn", MagicLine("monitor", name="churn")),
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


def test_monitor_needs_a_name() -> None:
    with pytest.raises(MagicUsage) as caught:
        parse_line("monitor")
    assert (caught.value.message, caught.value.fix) == (
        "monitor needs the deployment's name.",
        "Use %nbops monitor churn.",
    )


def test_nbops_monitor_shows_the_deployment(shell: InteractiveShell, model: Path) -> None:
    view = shell.run_line_magic("nbops", "monitor nope")

    assert isinstance(view, MonitorView)
    assert "nothing named &#39;nope&#39; was ever deployed." in view.html.value
