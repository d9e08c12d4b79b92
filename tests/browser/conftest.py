"""A real JupyterLab with nbops, and Debian's headless Chromium driven by Python Playwright.

One `jupyter lab` serves the whole session: a random token, a free port, a temporary root
folder holding copies of the example notebooks (and a generated 200-cell one), the nbops state
under that root (NBOPS_HOME), and user settings that silence the news toast. Each test gets a
fresh page, which fails the test on a console error, an uncaught exception or a failed request.
Screenshots go to tests/artifacts/ (not committed).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lab_session import (
    ARTIFACTS,
    CHROMIUM_ARGS,
    EXAMPLES,
    VENV_BIN,
    Lab,
    PageProblems,
    broken_notebook,
    free_port,
    large_notebook,
    wait_for_server,
    write_settings,
)

playwright_sync = pytest.importorskip("playwright.sync_api")


# Module scope: the server (and what it deployed) and Playwright's event loop are gone before the
# next test module runs; pytest-jupyter's tests cannot share the thread with a running loop.
@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    if shutil.which("chromium") is None:
        pytest.fail("chromium is not installed: run `make browser-deps` (Debian's chromium).")
    base = tmp_path_factory.mktemp("lab")
    root = base / "root"
    root.mkdir()
    shutil.copy(EXAMPLES / "churn.ipynb", root / "churn.ipynb")  # opened, deployed, never changed
    shutil.copy(EXAMPLES / "churn.ipynb", root / "retag.ipynb")  # retagged and saved
    shutil.copy(EXAMPLES / "churn.ipynb", root / "zoom.ipynb")  # zoomed, then retagged unsaved
    broken_notebook(EXAMPLES / "churn.ipynb", root / "broken.ipynb")
    large_notebook(root / "large.ipynb")
    settings = base / "settings"
    write_settings(settings, free_port())
    home = root / ".nbops"
    port, token = free_port(), secrets.token_hex(16)
    env = {
        **os.environ,
        "NBOPS_HOME": str(home),
        "JUPYTER_CONFIG_DIR": str(base / "config"),
        "JUPYTER_RUNTIME_DIR": str(base / "runtime"),
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    log = base / "jupyter.log"
    command = [
        str(VENV_BIN / "jupyter"),
        "lab",
        "--allow-root",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        f"--LabApp.workspaces_dir={base / 'workspaces'}",
        f"--LabApp.user_settings_dir={settings}",
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    lab = Lab(url=url, token=token, root=root, home=home, env=env)
    try:
        wait_for_server(url, token, process, log)
        yield lab
    finally:
        for name in sorted(lab.deployed):
            lab.nbops("stop", name, timeout=60)
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(scope="module")
def browser_context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with playwright_sync.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium")),
            executable_path=shutil.which("chromium"),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 900},
        )
        context.set_default_timeout(30_000)
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def page(lab: Lab, browser_context: Any) -> Iterator[Any]:
    """A browser tab; the test fails if the page logged an error meanwhile."""
    page = browser_context.new_page()
    problems = PageProblems()
    problems.watch(page)
    yield page
    found = list(problems.items)
    page.close()
    assert found == [], "the page reported problems:\n" + "\n".join(found)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
