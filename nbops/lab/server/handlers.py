"""The REST handlers under /nbops/api/: parse the request, call server.operations (and
server.exports), answer JSON.

Every method needs Jupyter's authentication (token or cookie, and XSRF on POST, as
jupyter_server enforces) and asks Jupyter's authorizer: reading is `read` on `contents` (a
notebook's lineage) or `nbops` (deployments, jobs, exporters); what runs notebook code (deploy,
run, rollback, stop, export: it builds, so runs, the notebook) is `execute` on `kernels`, the
permission running a cell needs. Blocking work (reading and analysing a notebook, the state db,
health checks) runs in a thread, never on the server's event loop.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from tornado import web
from tornado.ioloop import IOLoop

from nbops.build.exporters import ExporterUnavailable, ExportRefused
from nbops.deploy.health import UnknownDeployment
from nbops.deploy.local import DeployError, RollbackError
from nbops.deploy.records import DeployBusy
from nbops.errors import NbopsError, NotebookError, NotebookNotFound
from nbops.lab.server import exports, operations
from nbops.lab.server.jobs import JobEnded, JobNotFound, JobRegistry
from nbops.lab.server.paths import ApiPath, PathRefused, resolve_api_path, server_home
from nbops.run.home import Home

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])
VIA = "jupyter"

# The one place user errors become HTTP statuses; the first class that matches wins.
ERROR_STATUS: tuple[tuple[type[NbopsError], int], ...] = (
    (PathRefused, 403),
    (NotebookNotFound, 404),
    (JobNotFound, 404),
    (operations.DeploymentNotFound, 404),
    (UnknownDeployment, 404),
    (JobEnded, 409),
    (DeployBusy, 409),
    (DeployError, 409),
    (RollbackError, 409),
    (NotebookError, 422),
    (ExportRefused, 422),
    (ExporterUnavailable, 422),
    (NbopsError, 400),
)


def allowed(action: str, resource: str | None = None) -> Callable[[F], F]:
    """jupyter_server's `authorized` decorator, typed; `resource` defaults to the handler's."""
    return cast("Callable[[F], F]", authorized(action, resource=resource))


RUNS_CODE = allowed("execute", resource="kernels")
READS = allowed("read", resource="nbops")


class BadRequest(NbopsError):
    """A request whose query or JSON body lacks a field or has one of the wrong type."""


@dataclass(frozen=True)
class ServerState:
    """What the extension keeps in the web app's settings: the root folder and its jobs."""

    root_dir: Path
    registry: JobRegistry


def http_status(error: NbopsError) -> int:
    return next(status for kind, status in ERROR_STATUS if isinstance(error, kind))


class NbopsHandler(APIHandler):
    """Shared request parsing, off-loop calls and the mapping of nbops errors to JSON."""

    auth_resource = "nbops"

    @property
    def state(self) -> ServerState:
        state: ServerState = self.settings["nbops"]
        return state

    @property
    def home(self) -> Home:
        return server_home(self.state.root_dir)

    def notebook(self, api_path: str) -> ApiPath:
        allow_hidden = bool(getattr(self.contents_manager, "allow_hidden", False))
        return resolve_api_path(self.state.root_dir, api_path, allow_hidden=allow_hidden)

    async def saved_lineage(self) -> dict[str, Any]:
        """The lineage of the notebook `?path=` names, with what runs here saw."""
        notebook = self.notebook(self.query("path"))
        return await self.off_loop(
            operations.lineage_of_file, notebook.os_path, notebook.api_path, self.home
        )

    def query(self, name: str) -> str:
        value = self.get_query_argument(name, None)
        if not value:
            raise BadRequest(f"the query parameter {name!r} is missing.", fix=f"Add ?{name}=...")
        return value

    def body(self) -> dict[str, Any]:
        try:
            data = json.loads(self.request.body or b"{}")
        except ValueError:
            raise BadRequest("the body is not JSON.", fix="Send a JSON object.") from None
        except RecursionError:
            raise BadRequest(
                "the body is nested too deeply.", fix="Send the notebook's JSON as saved."
            ) from None
        if not isinstance(data, dict):
            raise BadRequest("the body is not a JSON object.", fix="Send a JSON object.")
        return data

    async def off_loop(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await IOLoop.current().run_in_executor(
            None, functools.partial(function, *args, **kwargs)
        )

    def reply(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.finish(json.dumps(data))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        error = kwargs.get("exc_info", (None, None, None))[1]
        if not isinstance(error, NbopsError):
            super().write_error(status_code, **kwargs)  # HTTPError (403, ...) and bugs (500)
            return
        self.set_status(http_status(error))
        reply = {"message": error.render(), "error": type(error).__name__, "fix": error.fix}
        self.finish(json.dumps(reply))

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, NbopsError):  # the user's mistake, answered: not a server error
            self.log.info("nbops: %s %s: %s", self.request.method, self.request.path, value)
            return
        super().log_exception(typ, value, tb)


def text(body: dict[str, Any], key: str) -> str | None:
    return None if body.get(key) is None else required_text(body, key)


def required_text(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise BadRequest(f"{key!r} must be a non-empty string.", fix=f'Send {{"{key}": "..."}}.')
    return value


def flag(body: dict[str, Any], key: str, *, default: bool) -> bool:
    value = body.get(key, default)
    if not isinstance(value, bool):
        raise BadRequest(f"{key!r} must be true or false.", fix=f'Send {{"{key}": true}}.')
    return value


def integer(body: dict[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
        raise BadRequest(f"{key!r} must be a whole number.", fix=f'Send {{"{key}": 2}}.')
    return value


class LineageHandler(NbopsHandler):
    """GET ?path=P: the lineage of a saved notebook; POST {"notebook", "path"?}: of its content."""

    auth_resource = "contents"

    @web.authenticated
    @allowed("read")
    async def get(self) -> None:
        self.reply(await self.saved_lineage())

    @web.authenticated
    @allowed("read")
    async def post(self) -> None:
        body = self.body()
        content = body.get("notebook")
        if not isinstance(content, dict):
            raise BadRequest(
                "'notebook' must be the notebook's JSON.", fix='Send {"notebook": {...}}.'
            )
        label = text(body, "path") or "untitled.ipynb"
        on_disk = self._saved_file(label) if text(body, "path") else None
        reply = await self.off_loop(
            operations.lineage_of_content, content, label, on_disk, self.home
        )
        self.reply(reply)

    def _saved_file(self, label: str) -> Path | None:
        """The notebook's file, whose runs may have seen changes in place; None if unsaved."""
        try:
            return self.notebook(label).os_path
        except NbopsError:  # not saved yet, or a label outside the root: just the content
            return None


class CheckHandler(NbopsHandler):
    """GET ?path=P: the diagnostics, as `nbops check --format json` prints them."""

    auth_resource = "contents"

    @web.authenticated
    @allowed("read")
    async def get(self) -> None:
        self.reply((await self.saved_lineage())["diagnostics"])


class DeploymentsHandler(NbopsHandler):
    """GET: every deployment, checked now, with its history; POST {"path", ...}: deploy."""

    @web.authenticated
    @READS
    async def get(self) -> None:
        self.reply(await self.off_loop(operations.deployments, self.home))

    @web.authenticated
    @RUNS_CODE
    async def post(self) -> None:
        body = self.body()
        notebook = self.notebook(required_text(body, "path"))
        job = await self.off_loop(
            operations.start_deploy,
            self.state.registry,
            notebook.os_path,
            notebook.api_path,
            home=self.home,
            via=VIA,
            name=text(body, "name"),
            port=integer(body, "port"),
            parameters=body.get("parameters"),
            root=self.state.root_dir,
            gated=flag(body, "gated", default=True),
        )
        self.reply({"job_id": job.id}, status=202)


class ChallengerHandler(NbopsHandler):
    """GET ?notebook=P: the comparison before deploying P as NAME: its declared gates, the
    serving version's metrics, P's last run's, each gate and duel judged."""

    @web.authenticated
    @READS
    async def get(self, name: str) -> None:
        notebook = self.notebook(self.query("notebook"))
        reply = await self.off_loop(
            operations.challenger,
            notebook.os_path,
            notebook.api_path,
            name,
            home=self.home,
            root=self.state.root_dir,
        )
        self.reply(reply)


class RollbackHandler(NbopsHandler):
    """POST {"to"?: version}: serve an earlier version of NAME again, health-gated."""

    @web.authenticated
    @RUNS_CODE
    async def post(self, name: str) -> None:
        to = integer(self.body(), "to")
        job = await self.off_loop(
            operations.start_rollback, self.state.registry, name, home=self.home, via=VIA, to=to
        )
        self.reply({"job_id": job.id}, status=202)


class StopHandler(NbopsHandler):
    """POST: stop NAME's serving version and its stable port; answers the stopped deployment."""

    @web.authenticated
    @RUNS_CODE
    async def post(self, name: str) -> None:
        self.reply(await self.off_loop(operations.stop, name, home=self.home))


class MonitoringHandler(NbopsHandler):
    """GET: NAME's status row, its serving version's /monitoring and its proxy's stats."""

    @web.authenticated
    @READS
    async def get(self, name: str) -> None:
        self.reply(await self.off_loop(operations.monitoring, name, home=self.home))


class RunsHandler(NbopsHandler):
    """POST {"path", "parameters"?}: run the pipeline locally (cached), as `nbops run`."""

    @web.authenticated
    @RUNS_CODE
    async def post(self) -> None:
        body = self.body()
        notebook = self.notebook(required_text(body, "path"))
        job = await self.off_loop(
            operations.start_run,
            self.state.registry,
            notebook.os_path,
            notebook.api_path,
            home=self.home,
            parameters=body.get("parameters"),
        )
        self.reply({"job_id": job.id}, status=202)


class ExportersHandler(NbopsHandler):
    """GET: the installed exporters, each with whether it can be used here and why not."""

    @web.authenticated
    @READS
    async def get(self) -> None:
        self.reply(await self.off_loop(exports.exporters))


class ExportsHandler(NbopsHandler):
    """POST {"path", "to", "store"?, "image"?}: export next to the notebook, as `nbops export`."""

    @web.authenticated
    @RUNS_CODE
    async def post(self) -> None:
        body = self.body()
        notebook = self.notebook(required_text(body, "path"))
        job = await self.off_loop(
            exports.start_export,
            self.state.registry,
            notebook.os_path,
            notebook.api_path,
            home=self.home,
            root=self.state.root_dir,
            to=required_text(body, "to"),
            store=text(body, "store"),
            image=text(body, "image"),
        )
        self.reply({"job_id": job.id}, status=202)


class JobsHandler(NbopsHandler):
    """GET: the jobs this server remembers, newest first (a reloaded page finds its job)."""

    @web.authenticated
    @READS
    async def get(self) -> None:
        self.reply([job.snapshot() for job in self.state.registry.jobs()])


class JobHandler(NbopsHandler):
    """GET: one job's state, stages, current step, log tail and result."""

    @web.authenticated
    @READS
    async def get(self, job_id: str) -> None:
        self.reply(self.state.registry.get(job_id).snapshot())


class CancelHandler(NbopsHandler):
    """POST: cancel a job; answers it as it is now (202), `cancelled` once its process is gone."""

    @web.authenticated
    @RUNS_CODE
    async def post(self, job_id: str) -> None:
        self.reply(operations.cancel(self.state.registry, job_id), status=202)
