"""A service with typed serve functions, checked over HTTP and against its own OpenAPI document.

The notebook's functions take what type hints can say: a pydantic model with bounds, a list of
TypedDicts, a dataclass, a bare dict, Literal and computed defaults, *args and **kwargs, an
async function and one reading a parameter. schemathesis then sends what the document allows,
and no answer may be a 5xx or break the document's own response schemas.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from builders import notebook_json
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance
from servers import Server, build, serving

pytestmark = pytest.mark.slow

SETUP = '''\
from dataclasses import dataclass
from enum import Enum
from typing import Literal, TypedDict

from pydantic import BaseModel, Field

DEFAULT_CUTOFF = 0.5


class Plan(str, Enum):
    monthly = "monthly"
    annual = "annual"


class Customer(BaseModel):
    """A customer as `score` reads one."""

    tenure_months: int = Field(ge=0, le=600)
    plan: Plan


class Point(TypedDict):
    x: int
    y: int


@dataclass
class Box:
    width: int
    height: int
'''
SERVE = [
    '''\
def score(customer: Customer) -> float:
    """The churn score of one customer: higher churns sooner."""
    return round(weights[customer.plan.value] * (1 - min(customer.tenure_months, 120) / 120), 6)''',
    '''\
def centroid(points: list[Point]) -> Point | None:
    """The centroid of the points, rounded down; null for no points."""
    if not points:
        return None
    n = len(points)
    return {"x": sum(p["x"] for p in points) // n, "y": sum(p["y"] for p in points) // n}''',
    """\
def area(box: Box, scale: int = 1) -> int:
    return box.width * box.height * scale""",
    '''\
def echo(payload: dict, *, tags: list[str] = []) -> dict:
    """Any JSON object back, with the tags it came with."""
    return {"payload": payload, "tags": sorted(set(tags))}''',
    """\
def above(value: float, cutoff: float = DEFAULT_CUTOFF) -> bool:
    return value > cutoff""",
    """\
def total(*values: int, **weights_by_name: int) -> int:
    return sum(values) + sum(weights_by_name.values())""",
    '''\
async def greet(name: str = "world", mark: Literal["!", "."] = "!") -> str:
    return f"hello {name}{mark}"''',
    """\
def scaled(x: int) -> int:
    return x * factor""",
]
CELLS = [
    ("factor = 2  # what scaled multiplies by", ["parameters"]),
    (SETUP, ["setup"]),
    ('weights = {"monthly": 0.3, "annual": 0.1}', ["step:weights"]),
    *[(source, ["serve"]) for source in SERVE],
]


@pytest.fixture(scope="module")
def typed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("typed")
    notebook = root / "typed.ipynb"
    notebook.write_text(json.dumps(notebook_json(CELLS)))
    return build(notebook, root / "build" / "typed", root / ".nbops", "factor=3")


@pytest.fixture(scope="module")
def server(typed: Path) -> Iterator[Server]:
    with serving(typed, typed.parent / "logs") as running:
        yield running


def test_the_generated_service_passes_ruff(typed: Path) -> None:
    config = ["--config", str(typed / "ruff.toml"), "--no-cache", "service", "tests"]
    for command in (["check"], ["format", "--check"]):
        done = subprocess.run(
            [sys.executable, "-m", "ruff", *command, *config],
            cwd=typed,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stdout


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


def test_typed_arguments_arrive_as_their_types(client: httpx.Client) -> None:
    customer = {"tenure_months": 12, "plan": "monthly"}
    assert client.post("/score", json={"customer": customer}).json() == {"result": 0.27}
    points = [{"x": 0, "y": 0}, {"x": 4, "y": 3}]
    assert client.post("/centroid", json={"points": points}).json() == {"result": {"x": 2, "y": 1}}
    box = {"width": 2, "height": 3}
    assert client.post("/area", json={"box": box, "scale": 2}).json() == {"result": 12}
    assert client.post("/total", json={"values": [1, 2], "weights_by_name": {"a": 3}}).json() == {
        "result": 6
    }
    assert client.post("/greet", json={}).json() == {"result": "hello world!"}
    assert client.post("/scaled", json={"x": 5}).json() == {"result": 15}  # the run's factor


def test_defaults_computed_in_the_notebook_apply_when_left_out(client: httpx.Client) -> None:
    assert client.post("/above", json={"value": 0.6}).json() == {"result": True}
    assert client.post("/above", json={"value": 0.6, "cutoff": 0.7}).json() == {"result": False}


def test_type_hints_are_checked_and_the_field_at_fault_named(client: httpx.Client) -> None:
    bounded = client.post("/score", json={"customer": {"tenure_months": -1, "plan": "monthly"}})
    assert bounded.status_code == 422
    assert bounded.json()["detail"][0]["loc"] == ["body", "customer", "tenure_months"]
    literal = client.post("/greet", json={"mark": "?"})
    assert [e["loc"] for e in literal.json()["detail"]] == [["body", "mark"]]
    typed_dict = client.post("/centroid", json={"points": [{"x": 1}]})
    assert [e["loc"] for e in typed_dict.json()["detail"]] == [["body", "points", 0, "y"]]


def test_the_openapi_document_is_typed_and_carries_the_docstrings(client: httpx.Client) -> None:
    document = client.get("/openapi.json").json()
    score = document["paths"]["/score"]["post"]
    assert score["summary"] == "score(customer: Customer) -> float"
    assert score["description"] == "The churn score of one customer: higher churns sooner."
    schemas = document["components"]["schemas"]
    customer = schemas["ScoreInput"]["properties"]["customer"]
    assert customer == {"$ref": "#/components/schemas/Customer"}
    assert schemas["Customer"]["properties"]["tenure_months"]["maximum"] == 600
    assert schemas["ScoreOutput"]["properties"]["result"] == {"type": "number", "title": "Result"}
    assert schemas["EchoInput"]["properties"]["payload"]["type"] == "object"
    assert "/score/batch" in document["paths"]


@pytest.fixture(scope="module")
def api_schema(server: Server) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{server.url}/openapi.json")


FUNCTIONS = ["score", "centroid", "area", "echo", "above", "total", "greet", "scaled"]
OPERATIONS = [("POST", f"/{f}{batch}") for f in FUNCTIONS for batch in ("", "/batch")]
OPERATIONS += [
    ("GET", path) for path in ("/healthz", "/readyz", "/metrics", "/monitoring", "/version")
]


def test_the_document_has_the_operations_checked_below(api_schema: schemathesis.BaseSchema) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert sorted((o.method.upper(), o.path) for o in operations) == sorted(OPERATIONS)


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_no_request_the_document_allows_gets_a_5xx_or_an_undocumented_answer(
    api_schema: schemathesis.BaseSchema, method: str, path: str
) -> None:
    # schemathesis's pytest plugin (schema.parametrize) does not run on pytest 9.2 yet, so its
    # Hypothesis strategy is driven here, a bounded number of examples per operation.
    @given(case=api_schema[path][method].as_strategy())
    @settings(
        max_examples=25,
        deadline=None,
        database=None,
        derandomize=True,  # the same examples on every run: a CI failure reproduces
        suppress_health_check=list(HealthCheck),
    )
    def check(case: schemathesis.Case) -> None:
        case.call_and_validate(checks=[not_a_server_error, response_schema_conformance])

    check()
