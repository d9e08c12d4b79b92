"""Virtualenvs of their own for the tools measured against nbops, made once with pip and kept in
benchmarks/.cache/ (git-ignored) under a name that changes with the versions they hold.

A baseline never goes into .venv: what it pulls in would change what nbops itself costs there
(Kernel Gateway's jupyter_server makes every `import nbformat` 1.6 s slower, see BASELINES).
"""

from __future__ import annotations

import hashlib
import json
import platform
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from measure import BenchmarkFailed

CACHE = Path(__file__).resolve().parent / ".cache"


def same_as_main(names: tuple[str, ...]) -> list[str]:
    """`name==version` for each of `names` as installed next to the running interpreter, so a
    baseline computes with exactly the libraries (and the pickles load) that nbops's .venv has."""
    return [f"{name}=={metadata.version(name)}" for name in names]


def cached(prefix: str, wanted: list[str]) -> Path:
    """The folder of a venv holding `wanted`, made first if the cache has none of those versions
    (an older `prefix-*` venv is removed then: it would only fill the disk)."""
    key = hashlib.sha256(json.dumps([platform.python_version(), *wanted]).encode()).hexdigest()
    venv = CACHE / f"{prefix}-{key[:12]}"
    done = venv / ".complete"
    if not done.is_file():
        _create(prefix, venv, wanted)
        done.write_text("\n".join(wanted) + "\n", encoding="utf-8")
    return venv


def _create(prefix: str, venv: Path, wanted: list[str]) -> None:
    for stale in CACHE.glob(f"{prefix}-*"):
        shutil.rmtree(stale)
    print(f"making {venv.relative_to(CACHE.parent.parent)} (once; about a minute)", file=sys.stderr)
    _checked([sys.executable, "-m", "venv", str(venv)])
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    _checked([*pip, "--disable-pip-version-check", *wanted])


def _checked(argv: list[str]) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-10:])
        raise BenchmarkFailed(f"`{' '.join(argv)}` exited with {done.returncode}:\n{tail}")
