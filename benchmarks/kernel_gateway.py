"""Jupyter Kernel Gateway in notebook-http mode, from a venv of its own, serving a notebook's
`predict` as POST /predict.

The gateway never goes into .venv: jupyter_server there would make every `import nbformat`, so
every nbops command, 1.6 s slower (see BASELINES). Its venv is made once and kept in
benchmarks/.cache/ (`venvs.py`).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import venvs

GATEWAY = "jupyter_kernel_gateway==3.0.1"
# The kernel must compute what .venv computes: same model code, same numbers, same speed.
SAME_AS_MAIN = ("numpy", "pandas", "scikit-learn", "scipy", "joblib", "threadpoolctl", "ipykernel")
# Reads the request the gateway assigns to REQUEST, calls the notebook's own function and
# prints the answer, which the gateway sends back as the body.
HANDLER = """\
# POST /predict
print(json.dumps(predict(json.loads(REQUEST)["body"]["features"])))
"""


def requirements() -> list[str]:
    """What the gateway's venv holds: the gateway, and the notebook's libraries at the exact
    versions installed next to the running interpreter."""
    return [GATEWAY, *venvs.same_as_main(SAME_AS_MAIN)]


def environment() -> Path:
    """The gateway venv's `jupyter-kernelgateway`, made first if it is not in the cache."""
    return venvs.cached("kernel-gateway", requirements()) / "bin" / "jupyter-kernelgateway"


def seed_notebook(notebook: Path, destination: Path) -> Path:
    """The notebook-http version of `notebook`: all its code cells, run once when the kernel
    starts (so the model is trained there, as the notebook trains it), then the handler."""
    source = json.loads(notebook.read_text(encoding="utf-8"))
    code = [_text(cell["source"]) for cell in source["cells"] if cell["cell_type"] == "code"]
    cells = [_code_cell("import json"), *(_code_cell(c) for c in code), _code_cell(HANDLER)]
    seed = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
        },
        "cells": cells,
    }
    destination.write_text(json.dumps(seed, indent=1), encoding="utf-8")
    return destination


def _text(source: str | list[str]) -> str:
    return source if isinstance(source, str) else "".join(source)


def _code_cell(source: str) -> dict[str, Any]:
    return {
        "cell_type": "code",
        "id": hashlib.sha1(source.encode()).hexdigest()[:8],
        "metadata": {},
        "execution_count": None,
        "outputs": [],
        "source": source,
    }


def command(program: Path, seed: Path, port: int) -> list[str]:
    """The gateway serving `seed` on 127.0.0.1:`port`, with one kernel, as one server worker."""
    return [
        str(program),
        "--KernelGatewayApp.api=kernel_gateway.notebook_http",
        f"--KernelGatewayApp.seed_uri={seed}",
        "--KernelGatewayApp.ip=127.0.0.1",
        f"--KernelGatewayApp.port={port}",
        "--KernelGatewayApp.port_retries=0",
        "--KernelGatewayApp.prespawn_count=1",
    ]


def isolated_environment(base: dict[str, str], folder: Path) -> dict[str, str]:
    """`base`, with Jupyter's runtime and data folders in `folder`: connection files and kernel
    specs neither leak into nor come from the user's own Jupyter."""
    env = {k: v for k, v in base.items() if not k.startswith("JUPYTER")}
    env["JUPYTER_RUNTIME_DIR"] = str(folder / "runtime")
    env["JUPYTER_DATA_DIR"] = str(folder / "data")
    env["JUPYTER_CONFIG_DIR"] = str(folder / "config")
    return env
