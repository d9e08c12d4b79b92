"""`%load_ext nbops`, then `%nbops lineage [PATH]`, `%nbops deploy [PATH] [--name N] [--port P]`
and `%nbops monitor NAME`.

PATH defaults to the notebook the kernel runs for, when the front end says which: VS Code sets
`__vsc_ipynb_file__`, Jupyter's server sets JPY_SESSION_NAME. Both magics read the saved file.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class

from nbops.errors import NbopsError
from nbops.run.home import Home

USAGE = (
    "%nbops lineage [PATH]  |  %nbops deploy [PATH] [--name NAME] [--port PORT]  |  "
    "%nbops monitor NAME"
)
COMMANDS = ("lineage", "deploy", "monitor")


class MagicUsage(NbopsError):
    """A `%nbops` line that is not one of the forms USAGE shows."""


@dataclass(frozen=True)
class MagicLine:
    command: str
    path: str | None = None
    name: str | None = None
    port: int | None = None


def parse_line(line: str) -> MagicLine:
    words = shlex.split(line)
    if not words or words[0] not in COMMANDS:
        raise MagicUsage(f"unknown command {line.strip()!r}.", fix=f"Use {USAGE}.")
    command, rest = words[0], words[1:]
    options: dict[str, str] = {}
    paths: list[str] = []
    while rest:
        word = rest.pop(0)
        key, _, value = word.partition("=")
        if command == "deploy" and key in ("--name", "--port"):
            options[key[2:]] = value or (rest.pop(0) if rest else "")
        elif word.startswith("-") or paths:
            raise MagicUsage(f"{word!r} is not understood here.", fix=f"Use {USAGE}.")
        else:
            paths.append(word)
    if command == "monitor":
        if not paths:
            raise MagicUsage(
                "monitor needs the deployment's name.", fix="Use %nbops monitor churn."
            )
        return MagicLine(command, name=paths[0])
    port = options.get("port")
    if port is not None and not port.isdigit():
        raise MagicUsage(f"--port {port!r} is not a port number.", fix="Give --port 8000.")
    return MagicLine(command, paths[0] if paths else None, options.get("name"), _int(port))


def _int(text: str | None) -> int | None:
    return int(text) if text is not None else None


def current_notebook(user_ns: Mapping[str, Any], environ: Mapping[str, str]) -> Path:
    """The notebook this kernel runs for, as VS Code or Jupyter's server tells the kernel."""
    given = user_ns.get("__vsc_ipynb_file__") or environ.get("JPY_SESSION_NAME")
    if given and Path(given).is_file():
        return Path(given)
    raise MagicUsage(
        "cannot tell which notebook this kernel runs for.",
        fix="Give its path: %nbops lineage churn.ipynb",
    )


@magics_class
class NbopsMagics(Magics):
    @line_magic
    def nbops(self, line: str) -> Any:
        """%nbops lineage [PATH]: the notebook's lineage (steps, what flows, endpoints,
        diagnostics). %nbops deploy [PATH] [--name NAME] [--port PORT]: a button that deploys
        the saved notebook, with its progress and the URL once healthy. %nbops monitor NAME:
        the deployment's watch and its drift per field, with a Refresh button."""
        try:
            return self._run(parse_line(line))
        except NbopsError as error:
            raise UsageError(error.render()) from None

    def _run(self, parsed: MagicLine) -> Any:
        from nbops.lab.widgets import DeployPanel, LineageView, MonitorView

        user_ns = self.shell.user_ns if self.shell is not None else {}
        if parsed.command == "monitor":
            view = MonitorView(parsed.name, home=_home(user_ns))
            view.refresh()
            return view
        notebook = Path(parsed.path) if parsed.path else current_notebook(user_ns, os.environ)
        if parsed.command == "deploy":
            return DeployPanel(notebook, name=parsed.name, port=parsed.port)
        from nbops.lab.server.operations import lineage_of_file

        return LineageView(lineage_of_file(notebook, parsed.path or notebook.name))


def _home(user_ns: Mapping[str, Any]) -> Home:
    """The state the sidebar of this notebook's Jupyter server reads, else the CLI's."""
    from nbops.lab.server.paths import home_for_notebook

    try:
        return home_for_notebook(current_notebook(user_ns, os.environ))
    except MagicUsage:
        return Home.default()


def load_ipython_extension(ipython: Any) -> None:
    ipython.register_magics(NbopsMagics)
