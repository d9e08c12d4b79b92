"""Routes of the regression service: a POST route, and its batch form, per serve function.

POST /predict runs `predict` (cell 12 of regression.ipynb); POST /predict/batch runs it for each of a list.

Generated from regression.ipynb by nbops 0.1.0; edit the notebook, not this file.
"""

import inspect
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from .artifacts import NotReady
from .errors import FunctionFailed
from .schemas import (
    Arguments,
    PredictBatchOutput,
    PredictInput,
    PredictOutput,
    Problem,
)

router = APIRouter(tags=["serve functions"])

# What a serve route may answer besides its result; FastAPI documents 422 (invalid input).
FAILURES: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "NBOPS_API_KEY is set and X-API-Key is not it"},
    413: {"model": Problem, "description": "The body is larger than NBOPS_MAX_BODY_BYTES"},
    500: {"model": Problem, "description": "The function raised; see the log for the id"},
    503: {"model": Problem, "description": "The artifacts are not loaded; /readyz says why"},
}


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
    summary="predict(features: dict[str, float]) -> float",
    operation_id="predict",
    responses=FAILURES,
)
async def route_predict(
    body: PredictInput, endpoints: ModuleType = Depends(ready_functions)
) -> dict[str, Any]:
    """Predict the disease progression score of one patient.

    `features` maps the baseline variables (age, sex, bmi, bp, s1 to s6, scaled
    as in scikit-learn's dataset) to values; a missing variable counts as 0.
    """
    [result] = await run(endpoints.predict, "predict", [body])
    return {"result": result}


@router.post(
    "/predict/batch",
    response_model=PredictBatchOutput,
    summary="predict, for each request of a list",
    operation_id="predict_batch",
    responses=FAILURES,
)
async def route_predict_batch(
    body: list[PredictInput], endpoints: ModuleType = Depends(ready_functions)
) -> dict[str, Any]:
    """`predict` for each request of the list, in order: many inputs in one HTTP call."""
    return {"results": await run(endpoints.predict, "predict", body)}


async def run(function: Callable[..., Any], route: str, requests: Sequence[Arguments]) -> list[Any]:
    """The function's result for each request.

    A synchronous function runs in a worker thread: models are CPU-bound, and the event loop
    must go on answering meanwhile (/healthz, say).
    """
    try:
        if inspect.iscoroutinefunction(function):
            return [plain(await request.call(function)) for request in requests]
        return await run_in_threadpool(_call_each, function, requests)
    except Exception as error:
        raise FunctionFailed(route) from error


def _call_each(function: Callable[..., Any], requests: Sequence[Arguments]) -> list[Any]:
    return [plain(request.call(function)) for request in requests]


def plain(value: Any) -> Any:
    """The value with NumPy's arrays and scalars made lists and Python numbers, which JSON has.

    Dicts, lists and tuples are walked; anything else is left to the response model.
    """
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if type(value).__module__ == "numpy" and hasattr(value, "tolist"):
        return value.tolist()
    return value
