"""A deploy's smoke request is the build's: the example request, else the route check, with
real uvicorn processes on loopback."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from builders import notebook_json
from servers import NBOPS

from nbops.deploy.processes import free_port

pytestmark = pytest.mark.slow

BASE: list[Any] = [
    ("factor = 3  # multiplier", ["parameters"]),
    ("values = [1.0, 2.0, 4.0]", ["step:load"]),
    ("scaled = [v * factor for v in values]", ["step:scale"]),
    # A bare dict: the schema says nothing of 'x', so a body made from it would be a 500.
    (
        "def predict(measurements: dict) -> float:\n    return measurements['x'] * max(scaled)",
        ["serve"],
    ),
]
NO_LITERAL_CALL = [*BASE, "sample = {'x': 2.0}\npredict(sample)"]
TAGGED = [
    *BASE,
    "predict({'y': 1.0})  # not a request the function takes",
    ("predict({'x': 2.0})", ["example"]),
]


class Project:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.env = {**os.environ, "NBOPS_HOME": str(root / ".nbops")}
        self.env.pop("NBOPS_API_KEY", None)
        self.names: list[str] = []

    def nbops(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [NBOPS, *args], cwd=self.root, env=self.env, capture_output=True, text=True, timeout=300
        )

    def notebook(self, name: str, cells: list[Any]) -> Path:
        path = self.root / f"{name}.ipynb"
        path.write_text(json.dumps(notebook_json(cells)))
        return path

    def deploy(self, target: str, name: str) -> subprocess.CompletedProcess[str]:
        self.names.append(name)
        return self.nbops("deploy", target, "--name", name, "--port", str(free_port()))


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    project = Project(tmp_path_factory.mktemp("examples"))
    yield project
    for name in project.names:
        project.nbops("stop", name)


def test_without_a_literal_example_call_deploy_does_what_the_build_did(project: Project) -> None:
    done = project.deploy(str(project.notebook("plain", NO_LITERAL_CALL)), "plain")
    assert done.returncode == 0, done.stdout + done.stderr
    assert (
        "smoke: /predict has no example request, so only its schema is checked. To send a real "
        "request, tag a cell 'example' that calls predict(...) with literal arguments, then "
        "build and deploy again.\n"
    ) in done.stdout
    assert "healthy plain v1: http://127.0.0.1:" in done.stdout


def test_deploy_sends_the_example_the_tagged_cell_makes(project: Project) -> None:
    done = project.deploy(str(project.notebook("tagged", TAGGED)), "tagged")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "smoke: POST /predict with its example request (cell 5)\n" in done.stdout
    snapshot = project.root / ".nbops" / "deployments" / "tagged" / "v1"
    log = [json.loads(line) for line in (snapshot / "service.log").read_text().splitlines()]
    posts = [entry for entry in log if entry.get("route") == "/predict"]
    assert [entry["status"] for entry in posts] == [200]


def test_a_route_without_an_example_that_fails_its_check_says_how_to_add_one(
    project: Project,
) -> None:
    """A build whose request models were edited to let any field through: the check the build's
    smoke tests made fails now, and the reason says how to send a real request instead."""
    assert (
        project.nbops(
            "build", str(project.notebook("open", NO_LITERAL_CALL)), "-o", "open"
        ).returncode
        == 0
    )
    schemas = project.root / "open" / "service" / "schemas.py"
    text = schemas.read_text()
    assert text.count('extra="forbid"') == 1
    assert text.count("    measurements: dict\n") == 1
    loose = text.replace('extra="forbid"', 'extra="ignore"')
    schemas.write_text(loose.replace("    measurements: dict\n", "    measurements: dict = {}\n"))
    done = project.nbops("deploy", "open", "--name", "open", "--format", "json")
    project.names.append("open")
    assert done.returncode == 1
    deployment = json.loads(done.stdout)
    assert deployment["status"] == "failed"
    assert deployment["reason"].startswith(
        'smoke request POST /predict {"no such argument": 1} answered 500 (not 422, for a '
        "field its function does not take): "
    )
    assert deployment["reason"].endswith(
        ". To send a real request, tag a cell 'example' that calls predict(...) with literal "
        "arguments, then build and deploy again."
    )
