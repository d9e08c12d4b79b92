"""The ipywidgets for where the sidebar is not (Notebook 7, VS Code): lineage, a deploy button,
and a deployment's watch and drift.

They render the JSON the REST API answers (the lineage, a job snapshot, a deployment's
monitoring) through the templates in templates/widgets/, so a notebook shows what the sidebar
shows. A deploy runs as a job of this kernel's registry (nbops.lab.server.jobs), polled from a
thread that updates the widgets.
"""

from __future__ import annotations

import functools
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from nbops.errors import NbopsError
from nbops.lab.server.jobs import Job, JobRegistry, shared_registry
from nbops.lab.server.paths import home_for_notebook

if TYPE_CHECKING:
    import jinja2

    from nbops.run.home import Home

POLL_INTERVAL_S = 0.25
LINEAGE_TABS = ("steps", "flows", "endpoints", "diagnostics")


class LineageView:
    """The lineage JSON as a header and tabs: steps, what flows, endpoints, diagnostics."""

    def __init__(self, lineage: dict[str, Any]) -> None:
        self.lineage = lineage
        macros: Any = _template("widgets/lineage.html.j2").module  # the template's macros
        self.header = widgets.HTML(str(macros.header(lineage)))
        self.sections = {
            tab: widgets.HTML(str(getattr(macros, tab)(lineage))) for tab in LINEAGE_TABS
        }
        tabs = widgets.Tab(children=list(self.sections.values()))
        for index, title in enumerate(self._titles()):
            tabs.set_title(index, title)
        self.widget = widgets.VBox([self.header, tabs])

    def _titles(self) -> list[str]:
        flows = (
            len(self.lineage["edges"])
            + sum(len(s.get("files") or []) for s in self.lineage["steps"])
            + sum(len(e["artifacts"]) for e in self.lineage["endpoints"])
        )
        counts = (
            len(self.lineage["steps"]),
            flows,
            len(self.lineage["endpoints"]),
            len(self.lineage["diagnostics"]),
        )
        return [
            f"{tab.capitalize()} ({count})" for tab, count in zip(LINEAGE_TABS, counts, strict=True)
        ]

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)


class MonitorView:
    """A deployment's watch (watching, stable, degraded, rolled-back, and why), a rollback its
    watch made by itself, and its serving version's window against the reference per field;
    Refresh asks again."""

    def __init__(self, name: str | None, *, home: Home) -> None:
        self.name = name
        self.home = home
        self.view: dict[str, Any] | None = None
        self.html = widgets.HTML("")
        self.button = widgets.Button(
            description="Refresh", icon="refresh", tooltip="Check the deployment again now"
        )
        self.button.on_click(lambda _button: self.refresh())
        self.widget = widgets.VBox(
            [self.html, self.button], layout={"display": "none" if name is None else None}
        )

    def refresh(self) -> dict[str, Any] | None:
        """Fetch the deployment's monitoring (status, /monitoring, proxy stats) and show it."""
        from nbops.lab.server.operations import monitoring

        if self.name is None:
            return None
        try:
            self.view = monitoring(self.name, home=self.home)
        except NbopsError as error:
            self.html.value = _error_html(error, "cannot monitor")
            return None
        self.show(self.view)
        return self.view

    def show(self, view: dict[str, Any]) -> None:
        from nbops.lab.monitoring import context

        self.widget.layout.display = None
        self.html.value = _template("widgets/monitoring.html.j2").render(**context(view))

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)


class DeployPanel:
    """A deploy button for one notebook, and the live status of the deploy it starts."""

    def __init__(
        self,
        notebook: Path,
        *,
        name: str | None = None,
        port: int | None = None,
        home: Home | None = None,
        registry: JobRegistry | None = None,
        poll_interval: float = POLL_INTERVAL_S,
    ) -> None:
        self.notebook = notebook.resolve()
        self.name = name
        self.port = port
        self.home = home or home_for_notebook(self.notebook)
        self.registry = registry or shared_registry()
        self.poll_interval = poll_interval
        self.job: Job | None = None
        self._poller: threading.Thread | None = None
        self.button = widgets.Button(
            description=f"Deploy {name or self.notebook.stem}",
            button_style="primary",
            icon="rocket",
            tooltip="Run, build and deploy this notebook (saved version), health-gated",
        )
        self.progress = widgets.IntProgress(value=0, min=0, max=1, layout={"display": "none"})
        self.status = widgets.HTML("")
        self.button.on_click(lambda _button: self.deploy())
        # Once a deploy succeeded: the deployment's watch and drift, refreshed on demand.
        self.monitor = MonitorView(None, home=self.home)
        self.widget = widgets.VBox([self.button, self.progress, self.status, self.monitor.widget])

    def deploy(self) -> Job | None:
        """What a click does: start the deploy job and a thread that shows its progress."""
        from nbops.lab.server.operations import start_deploy

        try:
            self.job = start_deploy(
                self.registry,
                self.notebook,
                self.notebook.name,
                home=self.home,
                via="widget",
                name=self.name,
                port=self.port,
            )
        except NbopsError as error:  # the notebook has errors: say so, start nothing
            self.status.value = _error_html(error)
            return None
        self.button.disabled = True
        self._poller = threading.Thread(
            target=self._poll, args=(self.job,), name="nbops-deploy-status", daemon=True
        )
        self._poller.start()
        return self.job

    def wait(self, timeout: float | None = None) -> bool:
        """Until the job ended and its final state is shown; False on timeout."""
        if self._poller is not None:
            self._poller.join(timeout)
            return not self._poller.is_alive()
        return True

    def show(self, snapshot: dict[str, Any]) -> None:
        step = snapshot["step"]
        running = snapshot["state"] == "running" and step is not None
        if running:
            self.progress.max = max(step["total"], 1)
            self.progress.value = (step["index"] or 1) - (1 if step["state"] == "running" else 0)
        self.progress.layout.display = None if running else "none"
        self.status.value = _template("widgets/deploy_status.html.j2").render(job=snapshot)

    def _poll(self, job: Job) -> None:
        while not job.wait(self.poll_interval):
            self.show(job.snapshot())
        final = job.snapshot()
        self.show(final)
        if final["state"] == "succeeded" and final["result"]:
            self.monitor.name = final["result"]["name"]
            self.monitor.refresh()
        self.button.disabled = False

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)


def _error_html(error: NbopsError, what: str = "cannot deploy") -> str:
    from markupsafe import escape

    return (
        '<div style="color: var(--jp-error-color1, #d32f2f)" data-testid="nbops-deploy-error">'
        f"<b>{escape(what)}</b>: {escape(error.render())}</div>"
    )


@functools.lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    from nbops.templating import new_environment

    return new_environment(html=True)  # notebook text (cell sources, messages) ends up in HTML


def _template(name: str) -> jinja2.Template:
    return _environment().get_template(name)
