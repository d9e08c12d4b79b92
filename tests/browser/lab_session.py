"""What the browser tests need besides fixtures: the running JupyterLab's handle, the notebooks
they open, its settings, and the watcher of what goes wrong in a page."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "example_notebooks"
ARTIFACTS = REPO / "tests" / "artifacts"
VENV_BIN = Path(sys.executable).parent
SIDEBAR_ID = "nbops-sidebar"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,900",
]


@dataclass
class Lab:
    """The running JupyterLab: where it serves, its token, and the folders it uses."""

    url: str
    token: str
    root: Path
    home: Path
    env: dict[str, str]
    deployed: set[str] = field(default_factory=set)

    def page_url(self, path: str = "lab") -> str:
        return f"{self.url}/{path}?token={self.token}"

    def nbops(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """The nbops CLI against the same state as the server (NBOPS_HOME, working folder)."""
        return subprocess.run(
            [str(VENV_BIN / "nbops"), *args],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def write_settings(folder: Path, deployment_port: int) -> None:
    """User settings: no news toast (it covers the page), and nbops deploying to a free port."""
    files = {
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
            "fetchNews": "false",
            "checkForUpdates": False,
        },
        "nbops/plugin.jupyterlab-settings": {"deploymentPort": deployment_port},
    }
    for name, data in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data))


def large_notebook(path: Path, cells: int = 200) -> Path:
    """A tagged notebook of `cells` cells: parameters, setup, then steps of five cells each
    (a heading, the step, two cells continuing it, a test), each reading the step before."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    add = nb.cells.append
    add(nbformat.v4.new_markdown_cell("# A long pipeline"))
    add(_code("scale = 2  # factor\nseed = 1  # start value", ["parameters"]))
    add(_code("import math", ["setup"]))
    step = 0
    while len(nb.cells) + 5 <= cells:
        previous = f"out_{step - 1}" if step else "seed"
        add(nbformat.v4.new_markdown_cell(f"## Step {step}"))
        first = f"[{previous}] * 3" if step == 0 else f"list({previous})"
        add(_code(f"part_{step} = {first}", [f"step:s{step}"]))
        add(_code(f"part_{step} = [math.tanh(v * scale) for v in part_{step}]", []))
        add(_code(f"out_{step} = [v + {step} for v in part_{step}]", []))
        add(_code(f"assert len(out_{step}) == 3", ["test"]))
        step += 1
    while len(nb.cells) < cells:
        add(nbformat.v4.new_markdown_cell("Notes."))
    for index, cell in enumerate(nb.cells):
        cell.id = f"big-{index:03d}"
    nbformat.write(nb, path)
    return path


def broken_notebook(source: Path, path: Path) -> Path:
    """The example with a typo in the evaluate step: `X_tset` is read but nothing writes it."""
    nb = nbformat.read(source, as_version=4)
    evaluate = next(c for c in nb.cells if "step:evaluate" in c.metadata.get("tags", []))
    evaluate.source = evaluate.source.replace("predict_proba(X_test)", "predict_proba(X_tset)")
    assert "X_tset" in evaluate.source
    nbformat.write(nb, path)
    return path


def _code(source: str, tags: list[str]) -> Any:
    cell = nbformat.v4.new_code_cell(source)
    if tags:
        cell.metadata["tags"] = tags
    return cell


def wait_for_server(url: str, token: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"jupyter lab exited ({process.returncode}):\n{log.read_text()}")
        try:
            request = urllib.request.Request(
                f"{url}/api/status", headers={"Authorization": f"token {token}"}
            )
            with urllib.request.urlopen(request, timeout=2):
                return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.2)
    raise RuntimeError(f"jupyter lab did not answer in 60 s:\n{log.read_text()}")


@dataclass
class PageProblems:
    """What went wrong in the page: console errors, uncaught exceptions, failed requests."""

    items: list[str] = field(default_factory=list)

    def watch(self, page: Any) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.items.append(f"page error: {error}"))
        page.on(
            "requestfailed",
            lambda request: self.items.append(
                f"request failed: {request.method} {request.url} ({request.failure})"
            ),
        )
        page.on("response", self._response)

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.items.append(f"console error: {message.text}")

    def _response(self, response: Any) -> None:
        if response.status >= 400:
            self.items.append(f"HTTP {response.status}: {response.request.method} {response.url}")
