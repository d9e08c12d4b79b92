"""Batch serve functions (`serve batch`): the tag, the static and build-time checks, and the
generated service's adaptive micro-batching over real HTTP."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from builders import messages, pipeline
from servers import Server, build, metric, serving
from test_examples import nbops, write

from nbops.build.batchable import judge, same
from nbops.build.service import render_service
from nbops.deploy.serve import BatchSettings
from nbops.model.examples import smoke_example
from nbops.model.notebook import Cell
from nbops.model.options import TagOption
from nbops.model.tags import CellTags, Role, read_cell_tags

COST_S = 0.02  # what one call of the notebook's function sleeps, whatever the batch
SETUP = (
    "import time\nfrom typing import TypedDict\n\n\n"
    "class Row(TypedDict):\n    a: int\n    b: float",
    ["setup"],
)
TRAIN = (f"weights = {{'a': 2.0, 'b': 3.0}}\ncost_s = {COST_S}", ["step:train"])
PREDICT = '''def predict(rows: list[Row]) -> list[dict]:
    """Score each row; a row with a negative b fails alone, in its slot."""
    time.sleep(cost_s)
    if any(row["a"] == -1 for row in rows):
        raise ValueError("a = -1 is not a row")
    return [
        ValueError("b is negative")
        if row["b"] < 0
        else {"a": row["a"], "score": row["a"] * weights["a"] + row["b"] * weights["b"]}
        for row in rows
    ]'''
EXAMPLE = ("predict([{'a': 1, 'b': 2.0}, {'a': 3, 'b': 4.0}, {'a': 5, 'b': 6.0}])", ["example"])
CELLS: list[Any] = [SETUP, TRAIN, (PREDICT, ["serve", "batch"]), EXAMPLE]
MAX_LATENCY_MS = 250.0  # large, so that a lone request delayed by it would show


def expected(a: int, b: float) -> dict[str, Any]:
    """What the notebook's function gives for the row alone."""
    return {"a": a, "score": a * 2.0 + b * 3.0}


def read(tags: list[str], source: str = "x = 1") -> CellTags:
    return read_cell_tags(Cell(index=2, id="c2", cell_type="code", source=source, tags=tuple(tags)))


# the tag


def test_batch_is_a_bare_option_word_of_a_serve_cell() -> None:
    flag = TagOption("batch", "true", bare=True)
    assert read(["serve:predict", "batch"]) == CellTags(
        role=Role.SERVE, name="predict", tag="serve:predict", options=(flag,)
    )
    written = read([], "#| nbops: serve:predict batch\ndef predict(rows): ...")
    assert written.options == (TagOption("batch", "true", line=1, bare=True),)
    assert read(["serve", "batch=true"]).options == (TagOption("batch", "true"),)
    assert read(["serve", "batch=false"]).options == (TagOption("batch", "false"),)


def test_batch_on_another_role_or_with_a_bad_value_is_an_error() -> None:
    [on_step] = read(["step:train", "batch"]).diagnostics
    assert (on_step.severity.value, on_step.message, on_step.fix, on_step.tag) == (
        "error",
        "'batch' is on a step cell, but only serve cells take 'batch', so nbops ignores it.",
        "Put it on the serve cell, beside its tag: 'serve:<name> batch'.",
        "batch",
    )
    [bad] = read(["serve", "batch=maybe"]).diagnostics
    assert (bad.message, bad.fix) == (
        "'batch=maybe': 'maybe' is not true or false.",
        "Write it like 'batch'.",
    )
    [typo] = read(["serve", "bacth"]).diagnostics
    assert typo.fix == "Did you mean 'batch'?"


def test_an_endpoint_is_batch_only_when_the_flag_is_on() -> None:
    assert pipeline(CELLS).endpoints[0].batch
    assert pipeline(CELLS).endpoints[0].item == "Row"
    assert pipeline(CELLS).endpoints[0].item_returns == "dict"
    off = [SETUP, TRAIN, (PREDICT, ["serve", "batch=false"])]
    assert not pipeline(off).endpoints[0].batch


# the static check


@pytest.mark.parametrize(
    ("source", "expected_message"),
    [
        (
            "def predict(rows: dict) -> list[dict]:\n    return [rows]",
            "error cell 2 line 1: serve function 'predict' is tagged 'batch', so its first "
            "argument 'rows' is a list with one item per request, but it is hinted 'dict'. | "
            "Hint it 'list[dict]' (Write it like 'def predict(rows: list[dict]) -> list[dict]:', "
            "one result per row); or remove the 'batch' tag to serve the function one request "
            "at a time.",
        ),
        (
            "def predict(rows: list[dict]) -> float:\n    return 1.0",
            "error cell 2 line 1: serve function 'predict' is tagged 'batch', so its result is "
            "a list with one item per request, but it is hinted 'float'. | Hint it 'list[float]' "
            "(Write it like 'def predict(rows: list[dict]) -> list[dict]:', one result per "
            "row); or remove the 'batch' tag to serve the function one request at a time.",
        ),
        (
            "def predict(rows, threshold: float) -> list:\n    return rows",
            "error cell 2 line 1: serve function 'predict' is tagged 'batch', so it is called "
            "with the list of inputs alone, but its argument 'threshold' has no default. | Give "
            "'threshold' a default, or make it part of each item of the list.",
        ),
        (
            "def predict(*, rows: list) -> list:\n    return rows",
            "error cell 2 line 1: serve function 'predict' is tagged 'batch', so its first "
            "argument is the list of the requests' inputs, but it takes no positional "
            "argument. | Write it like 'def predict(rows: list[dict]) -> list[dict]:', one "
            "result per row; or remove the 'batch' tag.",
        ),
    ],
)
def test_hints_that_are_not_lists_are_errors_naming_cell_line_and_fix(
    source: str, expected_message: str
) -> None:
    found = messages(pipeline([SETUP, TRAIN, (source, ["serve", "batch"])]))
    assert expected_message in found


def test_missing_hints_are_warnings() -> None:
    source = "def predict(rows):\n    return rows"
    found = messages(pipeline([SETUP, TRAIN, (source, ["serve", "batch"])]))
    assert [m for m in found if "'batch'" in m] == [
        "warning cell 2 line 1: serve function 'predict' is tagged 'batch', but its first "
        "argument 'rows' has no type hint, so nbops cannot check it is a list, nor type each "
        "request's part of it. | Write it like 'def predict(rows: list[dict]) -> "
        "list[dict]:', one result per row.",
        "warning cell 2 line 1: serve function 'predict' is tagged 'batch', but its result has "
        "no type hint, so nbops cannot check it is a list, nor type each request's part of "
        "it. | Write it like 'def predict(rows: list[dict]) -> list[dict]:', one result per row.",
    ]


def test_a_function_named_after_anothers_batch_route_is_an_error_with_a_new_name() -> None:
    one = ("def predict(row: dict) -> dict:\n    return row", ["serve"])
    many = (PREDICT.replace("def predict(", "def predict_batch("), ["serve", "batch"])
    found = messages(pipeline([SETUP, TRAIN, one, many]))
    assert [m for m in found if m.startswith("error")] == [
        "error cell 3 line 1: serve function 'predict_batch' cannot be served beside 'predict' "
        "(route /predict, cell 2): the service names schemas and routes after their functions, "
        "and both would have one named 'PredictBatchOutput', in the one module of serve "
        "functions. | Rename 'predict_batch' (e.g. 'predict_many'); to keep its route "
        "/predict_batch, tag the cell 'serve:predict_batch'."
    ]
    renamed = (
        PREDICT.replace("def predict(", "def predict_many("),
        ["serve:predict_batch", "batch"],
    )
    served = pipeline([SETUP, TRAIN, one, renamed]).endpoints
    assert [(e.name, e.route) for e in served] == [
        ("predict", "predict"),
        ("predict_many", "predict_batch"),
    ]


def test_two_serve_functions_of_one_name_are_an_error_at_check() -> None:
    first = ("def predict(row: dict) -> dict:\n    return row", ["serve:a"])
    second = ("def predict(row: dict) -> dict:\n    return row", ["serve:b"])
    found = [m for m in messages(pipeline([SETUP, TRAIN, first, second])) if "beside" in m]
    assert found == [
        "error cell 3 line 1: serve function 'predict' cannot be served beside 'predict' (route "
        "/a, cell 2): they share a name, in the one module of serve functions. | Rename "
        "'predict' (e.g. 'predict_one'); its route /b stays."
    ]


# the request model and the example


def test_the_request_model_describes_one_item() -> None:
    schemas = render_service(pipeline(CELLS))["service/schemas.py"]
    assert 'class PredictInput(Arguments):\n    """One item of the list `predict` takes' in schemas
    assert "    rows: typed_dict(shared.Row)\n" in schemas
    assert "class PredictOutput(BaseModel):" in schemas
    assert "    result: dict\n" in schemas
    floats = "def double(xs: list[float]) -> list[float]:\n    return [2 * x for x in xs]"
    typed = render_service(pipeline([SETUP, TRAIN, (floats, ["serve", "batch"])]))
    assert "    xs: float\n" in typed["service/schemas.py"]
    assert "    result: float\n" in typed["service/schemas.py"]


def test_the_example_request_is_the_first_item_of_the_example_call() -> None:
    p = pipeline(CELLS)
    example = smoke_example(p, p.endpoints[0])
    assert example is not None
    assert example.body == {"rows": {"a": 1, "b": 2.0}}
    assert len(example.items) == 3


def test_a_batch_function_without_an_example_call_gets_a_hint() -> None:
    found = messages(pipeline([SETUP, TRAIN, (PREDICT, ["serve", "batch"])]))
    assert found == [
        "info cell 2 line 1: batch function 'predict' has no example call, so the build cannot "
        "check that it answers each item of a list as it answers the item alone. | Call it "
        "with a literal list of inputs in a cell tagged 'example', e.g. 'predict([{...}, "
        "{...}])'; the build calls it with them, alone and together."
    ]
    assert not [m for m in messages(pipeline(CELLS)) if "example" in m]


def test_a_service_without_batch_functions_has_no_batching_module() -> None:
    plain = [SETUP, TRAIN, ("def predict(row: dict) -> dict:\n    return row", ["serve"])]
    assert "service/batching.py" not in render_service(pipeline(plain))
    assert "service/batching.py" in render_service(pipeline(CELLS))


def test_serve_flags_become_the_services_env_vars() -> None:
    assert BatchSettings().environment() == {}
    assert BatchSettings(8, 2.5).environment() == {
        "NBOPS_MAX_BATCH_SIZE": "8",
        "NBOPS_MAX_LATENCY_MS": "2.5",
    }


# the build-time check


def test_judge_finds_wrong_lengths_and_items_that_depend_on_their_neighbours() -> None:
    def good(rows: list[int]) -> list[int]:
        return [2 * r for r in rows]

    assert judge(good, [1, 2, 3], lambda v: v) == ""
    assert judge(lambda rows: rows[:1], [1, 2], lambda v: v) == (
        "called with a list of 3 items it returned 1 result"
    )
    assert judge(lambda rows: 5, [1], lambda v: v) == (
        "called with a list of 1 item it returned an object of type int, not a list"
    )
    assert judge(lambda rows: [r + len(rows) for r in rows], [1, 2, 3], lambda v: v) == (
        "item 0 of a list of 3 got 4 but 2 alone"
    )
    assert same({"p": 0.1 + 0.2}, {"p": 0.3}) and not same({"p": 0.3}, {"p": 0.31})


@pytest.mark.slow
@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("    return [{'a': rows[0]['a']}]", "called with a list of 3 items it returned 1 result"),
        (
            "    return [{'a': row['a'] + len(rows)} for row in rows]",
            'item 0 of a list of 3 got {"a": 4} but {"a": 2} alone',
        ),
    ],
)
def test_a_batch_function_that_breaks_the_rules_fails_the_build(
    tmp_path: Path, body: str, reason: str
) -> None:
    source = f"def predict(rows: list[dict]) -> list[dict]:\n{body}"
    cells = [SETUP, TRAIN, (source, ["serve", "batch"]), EXAMPLE]
    done = nbops(tmp_path, "build", str(write(tmp_path, cells)), "-o", "out")
    assert done.exit_code == 1
    lines = done.stderr.splitlines()
    assert (lines[0], lines[-1]) == (
        f"error: small.ipynb cell 2 [serve]: serve function 'predict' is tagged 'batch', but "
        f"{reason}, so the build was not replaced.",
        "  fix: Return a list with one result per item of the list, in its order, each "
        "computed from its item alone; or remove the 'batch' tag.",
    )
    assert not (tmp_path / "out").exists()


# the service, over HTTP


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("batching")
    return build(write(root, CELLS), root / "build" / "small", root / ".nbops")


@pytest.fixture(scope="module")
def server(built: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    logs = tmp_path_factory.mktemp("logs")
    latency = str(MAX_LATENCY_MS)
    with serving(
        built, logs, NBOPS_MAX_LATENCY_MS=latency, NBOPS_MONITOR_INTERVAL_SECONDS="0"
    ) as s:
        yield s


async def send_all(url: str, bodies: list[Any], concurrency: int) -> list[httpx.Response]:
    """Each body POSTed to /predict, `concurrency` at a time, the answers in order."""
    limit = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:

        async def one(body: Any) -> httpx.Response:
            async with limit:
                return await client.post("/predict", json=body)

        return list(await asyncio.gather(*(one(body) for body in bodies)))


@pytest.mark.slow
def test_concurrent_requests_are_each_answered_their_own_result(server: Server) -> None:
    rows = [{"a": i, "b": (i % 7) / 4} for i in range(500)]
    before = metric(httpx.get(f"{server.url}/metrics").text, "nbops_batch_size_count")
    window = httpx.get(f"{server.url}/monitoring").json()["routes"][0]["requests"]
    answers = asyncio.run(send_all(server.url, [{"rows": row} for row in rows], 32))
    assert [a.status_code for a in answers] == [200] * 500
    assert [a.json()["result"] for a in answers] == [expected(r["a"], r["b"]) for r in rows]
    text = httpx.get(f"{server.url}/metrics").text
    calls = metric(text, "nbops_batch_size_count", route="/predict") - before
    alone = metric(text, "nbops_batch_size_bucket", route="/predict", le="1.0")
    assert calls < 500 and alone < calls  # batches of more than one under concurrency
    assert metric(text, "nbops_batch_queue_wait_seconds_count", route="/predict") >= 500
    # Each request is one in its route's monitoring window, whichever call answered it.
    assert httpx.get(f"{server.url}/monitoring").json()["routes"][0]["requests"] == window + 500


@pytest.mark.slow
def test_a_bad_item_fails_alone_among_good_ones(server: Server) -> None:
    good = [{"rows": {"a": i, "b": 1.0}} for i in range(40)]
    bodies: list[Any] = [*good]
    bodies[5] = {"rows": {"a": "five", "b": 1.0}}  # not a Row: 422 before any call
    bodies[10] = {"rows": {"a": -1, "b": 1.0}}  # the call raises: each item runs alone
    bodies[20] = {"rows": {"a": 20, "b": -1.0}}  # an Exception in its slot
    answers = asyncio.run(send_all(server.url, bodies, 40))
    statuses = [a.status_code for a in answers]
    assert (statuses[5], statuses[10], statuses[20]) == (422, 500, 500)
    assert answers[5].json()["detail"][0]["loc"] == ["body", "rows", "a"]
    assert answers[10].json()["detail"] == "internal error"
    for index, answer in enumerate(answers):
        if index not in (5, 10, 20):
            assert (answer.status_code, answer.json()) == (200, {"result": expected(index, 1.0)})


@pytest.mark.slow
def test_a_lone_request_is_not_held_back(server: Server) -> None:
    started = time.perf_counter()
    [answer] = asyncio.run(send_all(server.url, [{"rows": {"a": 1, "b": 1.0}}], 1))
    assert answer.status_code == 200
    probes = []
    for _ in range(5):
        started = time.perf_counter()
        httpx.get(f"{server.url}/healthz")
        probes.append(time.perf_counter() - started)
    overhead = statistics.median(probes)
    took = []
    for i in range(5):
        started = time.perf_counter()
        answer = httpx.post(f"{server.url}/predict", json={"rows": {"a": i, "b": 1.0}})
        took.append(time.perf_counter() - started)
        assert answer.json() == {"result": expected(i, 1.0)}
        time.sleep(0.05)
    cost = call_cost()
    # A request that finds the function idle does not wait for the window of MAX_LATENCY_MS.
    assert statistics.median(took) <= cost + 2 * overhead + 0.05
    assert max(took) <= MAX_LATENCY_MS / 1000 + cost + overhead


def call_cost() -> float:
    """Seconds one call of the notebook's function takes here, with one row: the median of 3."""
    namespace: dict[str, Any] = {"weights": {"a": 2.0, "b": 3.0}, "cost_s": COST_S}
    exec(SETUP[0], namespace)
    exec(PREDICT, namespace)
    took = []
    for _ in range(3):
        started = time.perf_counter()
        namespace["predict"]([{"a": 1, "b": 1.0}])
        took.append(time.perf_counter() - started)
    return statistics.median(took)


@pytest.mark.slow
def test_the_batch_route_calls_the_function_once_with_the_list(server: Server) -> None:
    text = httpx.get(f"{server.url}/metrics").text
    before = metric(text, "nbops_batch_size_count", route="/predict")
    bodies = [{"rows": {"a": i, "b": 0.5}} for i in range(10)]
    answer = httpx.post(f"{server.url}/predict/batch", json=bodies)
    assert (answer.status_code, answer.json()) == (
        200,
        {"results": [expected(i, 0.5) for i in range(10)], "errors": []},
    )
    bodies[3] = {"rows": {"a": 3, "b": -0.5}}
    partly = httpx.post(f"{server.url}/predict/batch", json=bodies)
    assert partly.status_code == 207
    assert partly.json()["errors"] == [{"index": 3, "detail": "internal error"}]
    assert partly.json()["results"][3] is None and partly.json()["results"][4] == expected(4, 0.5)
    # Not through the queue: the lone requests' histogram did not move.
    after = metric(httpx.get(f"{server.url}/metrics").text, "nbops_batch_size_count")
    assert after == before
