"""Routes of the churn service: a POST route, and its batch form, per serve function.

POST /predict runs `predict` (cells 22 and 26 of churn.ipynb); POST /predict/batch runs it for each of a list.
POST /predict_batch runs `predict_many` (cells 28 and 29 of churn.ipynb) on its item, micro-batched with other requests' items; POST /predict_batch/batch runs it once on a list.

Generated from churn.ipynb by nbops 0.1.0; edit the notebook, not this file.
"""

import inspect
import math
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

from anyio import to_thread
from fastapi import APIRouter, Depends, Request, Response

from .artifacts import NotReady
from .batching import Batcher, batcher
from .errors import ClientGone, FunctionFailed, item_failed
from .schemas import (
    Arguments,
    PredictBatchOutput,
    PredictInput,
    PredictOutput,
    PredictManyBatchOutput,
    PredictManyInput,
    PredictManyOutput,
    Problem,
)
from .security import GuardedRoute, batch_within_limit

router = APIRouter(tags=["serve functions"], route_class=GuardedRoute)

# What a serve route may answer besides its result; FastAPI documents 422 (invalid input).
FAILURES: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "NBOPS_API_KEY is set and X-API-Key is not it"},
    413: {
        "model": Problem,
        "description": "The body is larger than NBOPS_MAX_BODY_BYTES, or a batch has more "
        "requests than NBOPS_MAX_BATCH_ITEMS",
    },
    500: {"model": Problem, "description": "The function raised; see the log for the id"},
    503: {"model": Problem, "description": "The artifacts are not loaded; /readyz says why"},
}
PARTLY = "The function raised on some requests: null results, and `errors` names them"


async def ready_functions(request: Request) -> ModuleType:
    """The serve functions, once the artifacts they read are loaded and checked; else 503."""
    startup = request.app.state.startup
    if startup.endpoints is None:
        raise NotReady(startup.reason)
    endpoints: ModuleType = startup.endpoints
    return endpoints


@router.post(
    "/predict",
    response_model=PredictOutput,
    summary="predict(features: dict) -> dict",
    operation_id="predict",
    responses=FAILURES,
)
async def route_predict(
    request: Request, body: PredictInput, endpoints: ModuleType = Depends(ready_functions)
) -> dict[str, Any]:
    """Return the churn probability of one customer.

    `features` holds tenure_months, monthly_charges, support_calls and
    contract ("monthly", "annual" or "two_year").
    """
    try:
        result = await result_of(endpoints.predict, body)
    except Exception as error:
        raise FunctionFailed("predict") from error
    # Its inputs and outputs are binned against the reference profile, for /monitoring.
    request.app.state.monitor.observe(request, "predict", body.features, result)
    return {"result": result}


@router.post(
    "/predict/batch",
    response_model=PredictBatchOutput,
    summary="predict, for each request of a list",
    operation_id="predict_batch",
    responses={**FAILURES, 207: {"model": PredictBatchOutput, "description": PARTLY}},
    dependencies=[Depends(batch_within_limit)],
)
async def route_predict_batch(
    request: Request,
    response: Response,
    body: list[PredictInput],
    endpoints: ModuleType = Depends(ready_functions),
) -> dict[str, Any]:
    """`predict` for each request of the list, in order: many inputs in one HTTP call.

    A request it raises on has a null result and an entry in `errors`, and the answer is 207.
    """
    answer = await each(request, response, endpoints.predict, "predict", body)
    given = [item.features for item in body]
    request.app.state.monitor.observe_batch(request, "predict", given, answer)
    return answer


@router.post(
    "/predict_batch",
    response_model=PredictManyOutput,
    summary="predict_many(features: list[dict]) -> list[dict]",
    operation_id="predict_many",
    responses=FAILURES,
)
async def route_predict_many(
    request: Request, body: PredictManyInput, endpoints: ModuleType = Depends(ready_functions)
) -> dict[str, Any]:
    """Return the churn probability of each customer, in one call of the forest.

    Each item of `features` is a customer as `predict` takes it. The service
    gathers the requests that arrive together into one list: the forest costs
    about as much for 64 rows as for one, so a busy service answers many more.
    """
    batcher = batched(request, "predict_batch", endpoints.predict_many)
    try:
        result = plain(await batcher.submit(body.item()))
    except Exception as error:
        raise FunctionFailed("predict_batch") from error
    # Its inputs and outputs are binned against the reference profile, for /monitoring.
    request.app.state.monitor.observe(request, "predict_batch", body.features, result)
    return {"result": result}


@router.post(
    "/predict_batch/batch",
    response_model=PredictManyBatchOutput,
    summary="predict_many, on a list of requests in one call",
    operation_id="predict_many_batch",
    responses={**FAILURES, 207: {"model": PredictManyBatchOutput, "description": PARTLY}},
    dependencies=[Depends(batch_within_limit)],
)
async def route_predict_many_batch(
    request: Request,
    response: Response,
    body: list[PredictManyInput],
    endpoints: ModuleType = Depends(ready_functions),
) -> dict[str, Any]:
    """`predict_many` on the list of the requests' items, in one call: many inputs in one HTTP call.

    A request it fails on has a null result and an entry in `errors`, and the answer is 207.
    """
    batcher = batched(request, "predict_batch", endpoints.predict_many)
    answer = await together(request, response, batcher, body)
    given = [item.features for item in body]
    request.app.state.monitor.observe_batch(request, "predict_batch", given, answer)
    return answer


def batched(request: Request, route: str, function: Callable[..., Any]) -> Batcher:
    """The route's batcher: its queue of requests waiting for the function."""
    settings = request.app.state.settings
    return batcher(
        request.app.state.batchers,
        route,
        function,
        max_batch_size=settings.max_batch_size,
        max_latency_ms=settings.max_latency_ms,
        metrics=request.app.state.metrics,
    )


async def together(
    http: Request, response: Response, batcher: Batcher, requests: Sequence[Arguments]
) -> dict[str, Any]:
    """A batch function's result for each request, from one call of their items, and an error
    for each it failed on (in its slot, or when run alone after the call raised)."""
    results: list[Any] = []
    errors: list[dict[str, Any]] = []
    outcomes = await batcher.run_all([request.item() for request in requests])
    for index, outcome in enumerate(outcomes):
        try:
            if isinstance(outcome, Exception):
                raise outcome
            results.append(plain(outcome))
        except Exception as error:
            item_failed(http, batcher.route, index, error)
            results.append(None)
            errors.append({"index": index, "detail": "internal error"})
    if errors:
        response.status_code = 207
    return {"results": results, "errors": errors}


async def result_of(function: Callable[..., Any], request: Arguments) -> Any:
    """The function's result for one request.

    A synchronous function runs in a worker thread: models are CPU-bound, and the event loop
    must go on answering meanwhile (/healthz, say). When the server stops (SIGTERM) and cancels
    what still runs, the thread is left to finish on its own, so that the process can exit.
    """
    if inspect.iscoroutinefunction(function):
        return plain(await request.call(function))
    return await to_thread.run_sync(_call, function, request, abandon_on_cancel=True)


def _call(function: Callable[..., Any], request: Arguments) -> Any:
    return plain(request.call(function))


async def each(
    http: Request,
    response: Response,
    function: Callable[..., Any],
    route: str,
    requests: Sequence[Arguments],
) -> dict[str, Any]:
    """The function's result for each request, in order, and an error for each it raised on.

    Between requests it checks the client is still there: when it has gone, nobody would read
    the rest, so they are not run.
    """
    results: list[Any] = []
    errors: list[dict[str, Any]] = []
    for index, request in enumerate(requests):
        if await http.is_disconnected():
            raise ClientGone(route, index, len(requests))
        try:
            results.append(await result_of(function, request))
        except Exception as error:
            item_failed(http, route, index, error)
            results.append(None)
            errors.append({"index": index, "detail": "internal error"})
    if errors:
        response.status_code = 207
    return {"results": results, "errors": errors}


def plain(value: Any) -> Any:
    """The value with NumPy's arrays and scalars made lists and Python numbers, which JSON has.

    Dicts, lists and tuples are walked; anything else is left to the response model. NaN and
    infinities are refused: JSON has no such numbers.
    """
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if type(value).__module__ == "numpy" and hasattr(value, "tolist"):
        return plain(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"the result holds {value}, which JSON cannot carry")
    return value
