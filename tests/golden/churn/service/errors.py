"""How the churn service answers when something goes wrong: the one place errors become HTTP.

Invalid input is FastAPI's own 422, which names each field at fault; a missing or altered
artifact is 503 with the reason; a serve function that raises, or returns what its return type
hint does not describe, is 500 with a request id, its traceback logged and never sent.

Generated from churn.ipynb by nbops 0.1.0; edit the notebook, not this file.
"""

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import ResponseValidationError
from fastapi.responses import JSONResponse

from .artifacts import NotReady
from .observability import internal_error

log = logging.getLogger("service")


class FunctionFailed(Exception):
    """A serve function raised; that exception is this one's cause."""

    def __init__(self, route: str) -> None:
        super().__init__(f"the serve function of /{route} raised")
        self.route = route


def install(app: FastAPI) -> None:
    app.add_exception_handler(NotReady, _not_ready)
    app.add_exception_handler(FunctionFailed, _function_failed)
    app.add_exception_handler(ResponseValidationError, _result_not_as_hinted)


async def _not_ready(request: Request, error: Exception) -> JSONResponse:
    return JSONResponse({"detail": f"the service is not ready: {error}"}, status_code=503)


async def _function_failed(request: Request, error: Exception) -> JSONResponse:
    route = getattr(error, "route", "")
    request.app.state.metrics.errors.labels(route=f"/{route}").inc()
    cause = error.__cause__ or error
    return _logged(request, f"{error}: {type(cause).__name__}: {cause}", cause)


async def _result_not_as_hinted(request: Request, error: Exception) -> JSONResponse:
    problems = error.errors() if isinstance(error, ResponseValidationError) else []
    message = f"{request.url.path}: the serve function returned what its type hint does not allow"
    return _logged(request, f"{message}: {problems}", None)


def _logged(request: Request, message: str, cause: BaseException | None) -> JSONResponse:
    request_id = getattr(request.state, "request_id", "")
    log.error(message, exc_info=cause, extra={"fields": {"request_id": request_id}})
    return internal_error(request_id)
