"""`nbops serve` on a port another program holds: one error line at once, exit 2."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest
from builders import notebook_json
from servers import NBOPS

pytestmark = pytest.mark.slow

CELLS = [
    ("values = [1.0, 2.0]", ["step:load"]),
    ("def predict(x: float) -> float:\n    return x * max(values)", ["serve"]),
]


def test_serve_on_a_port_another_program_holds_is_one_error_line_at_once(tmp_path: Path) -> None:
    (tmp_path / "busy.ipynb").write_text(json.dumps(notebook_json(CELLS)))
    env = {**os.environ, "NBOPS_HOME": str(tmp_path / ".nbops")}

    def nbops(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [NBOPS, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
        )

    built = nbops("build", "busy.ipynb", "-o", "busy")
    assert built.returncode == 0, built.stderr
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        started = time.monotonic()
        done = nbops("serve", "busy", "--port", str(port))
        took = time.monotonic() - started
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == (
        f"error: port {port} on 127.0.0.1 is taken by another program, so busy cannot be "
        "served there. Stop that program, or choose another port with --port.\n"
    )
    assert took < 3.0  # no artifacts loaded, no uvicorn started
