"""Inputs that used to give 500: overlong paths and deeply nested bodies are plain refusals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from builders import notebook_json
from jupyter_server.auth import Authorizer  # noqa: F401  (the fixtures need jupyter_server)
from tornado.httpclient import HTTPClientError
from traitlets.config import Config

CELLS = [("values = [1, 2]", ["step:load"]), ("total = sum(values)", ["metrics"])]


@pytest.fixture
def jp_server_config() -> Config:
    return Config({"ServerApp": {"jpserver_extensions": {"nbops": True}}})


@pytest.fixture
def root(jp_root_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("NBOPS_HOME", raising=False)
    monkeypatch.chdir(jp_root_dir)
    (jp_root_dir / "model.ipynb").write_text(json.dumps(notebook_json(CELLS)))
    return jp_root_dir


async def refused(fetch: Any, *path: str, **options: Any) -> tuple[int, str]:
    with pytest.raises(HTTPClientError) as caught:
        await fetch(*path, **options)
    response = caught.value.response
    assert response is not None
    return caught.value.code, json.loads(response.body)["message"]


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("a" * 5000 + ".ipynb", "a path of 5,006 characters is longer than any file's (4,096"),
        ("d" * 300 + "/model.ipynb", "ddd"),
    ],
)
async def test_an_overlong_path_is_refused_not_a_server_error(
    jp_fetch: Any, root: Path, path: str, message: str
) -> None:
    code, text = await refused(jp_fetch, "nbops", "api", "lineage", params={"path": path})
    assert code == 403  # refused, as every path the API will not serve
    assert text.startswith(message)


async def test_a_deeply_nested_body_is_refused_not_a_server_error(
    jp_fetch: Any, root: Path
) -> None:
    body = '{"notebook": ' + "[" * 100_000 + "]" * 100_000 + "}"
    code, text = await refused(
        jp_fetch, "nbops", "api", "lineage", method="POST", body=body.encode()
    )
    assert code == 400
    assert text == "the body is nested too deeply. Send the notebook's JSON as saved."


async def test_posted_content_of_a_notebook_not_saved_yet_still_has_a_lineage(
    jp_fetch: Any, root: Path
) -> None:
    body = json.dumps({"notebook": notebook_json(CELLS), "path": "Untitled3.ipynb"})
    response = await jp_fetch("nbops", "api", "lineage", method="POST", body=body)
    assert [s["name"] for s in json.loads(response.body)["steps"]] == ["load"]
