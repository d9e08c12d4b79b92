"""Shared fixtures: notebooks built with nbformat from (source, tags) pairs, and the examples."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import nbformat
import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "example_notebooks"

# Deploys in tests replace the serving version at once, as before the watch: tests of the watch
# (tests/test_watch.py) give --watch themselves, and one of them checks the default of 3m.
os.environ.setdefault("NBOPS_WATCH", "0")
# `nbops test` keeps going after a failing test cell by default where CI is set (as CI services
# set it): the tests give --keep-going or --stop-at-first themselves where it matters.
os.environ.pop("CI", None)

# A code cell as (source, tags); a plain string is a markdown cell.
CellSpec = tuple[str, Sequence[str]] | str
NotebookJson = Callable[..., dict[str, Any]]
MakeNotebook = Callable[..., Path]

PYTHON_KERNEL = {"name": "python3", "display_name": "Python 3", "language": "python"}


def build_notebook(
    cells: Sequence[CellSpec],
    *,
    kernelspec: dict[str, Any] | None = PYTHON_KERNEL,
    minor: int = 5,
) -> dict[str, Any]:
    """An nbformat v4 notebook as plain JSON data; cell ids are `c0`, `c1`, ... (v4.5 only)."""
    nb = nbformat.v4.new_notebook()
    nb.nbformat_minor = minor
    if kernelspec is not None:
        nb.metadata["kernelspec"] = dict(kernelspec)
    for index, spec in enumerate(cells):
        if isinstance(spec, str):
            cell = nbformat.v4.new_markdown_cell(spec)
        else:
            source, tags = spec
            cell = nbformat.v4.new_code_cell(source)
            if tags:
                cell.metadata["tags"] = list(tags)
        if minor >= 5:
            cell.id = f"c{index}"
        else:
            del cell["id"]
        nb.cells.append(cell)
    data: dict[str, Any] = json.loads(json.dumps(nb))
    return data


@pytest.fixture
def notebook_json() -> NotebookJson:
    """Build notebook JSON data from a list of (source, tags); see `build_notebook`."""
    return build_notebook


@pytest.fixture
def make_notebook(tmp_path: Path) -> MakeNotebook:
    """Write a notebook built from (source, tags) pairs to tmp_path and return its path."""

    def make(cells: Sequence[CellSpec], *, name: str = "notebook.ipynb", **options: Any) -> Path:
        path = tmp_path / name
        path.write_text(json.dumps(build_notebook(cells, **options), indent=1), encoding="utf-8")
        return path

    return make


@pytest.fixture
def write_file(tmp_path: Path) -> Callable[[str, bytes], Path]:
    """Write raw bytes (a broken notebook, say) to tmp_path and return the path."""

    def write(name: str, content: bytes) -> Path:
        path = tmp_path / name
        path.write_bytes(content)
        return path

    return write


@pytest.fixture
def example_notebooks() -> dict[str, Path]:
    """The shipped example notebooks by stem: churn, kale_dialect, regression."""
    paths = {path.stem: path for path in sorted(EXAMPLES.glob("*.ipynb"))}
    assert paths, f"no example notebooks under {EXAMPLES}"
    return paths


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """A real S3 API (moto in server mode) on loopback for the session; its endpoint URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_store_url(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """`s3://<a fresh bucket>/store` on the moto server, with the environment a worker process
    needs to open it (endpoint and credentials), set here so child processes inherit it."""
    import s3fs

    for name, value in {
        "AWS_ENDPOINT_URL": moto_server,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    bucket = f"nbops-{uuid.uuid4().hex[:12]}"
    s3fs.S3FileSystem(endpoint_url=moto_server).mkdir(bucket)
    return f"s3://{bucket}/store"
