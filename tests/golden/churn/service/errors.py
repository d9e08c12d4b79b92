"""How the churn service answers when something goes wrong: the one place errors become HTTP.

Invalid input is FastAPI's own 422, which names each field at fault; a missing or altered
artifact is 503 with the reason; a serve function that raises, or returns what its return type
hint does not describe, is 500 with a request id, its traceback logged and never sent. In a
batch, a request the function raises on fails alone (see routes.each); a batch whose client went
away is stopped and logged as 499, nginx's "client closed request".

Generated from churn.ipynb by nbops 0.1.0; edit the notebook, not this file.
"""

import logging

from fastapi import FastAPI, Request, Response
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


class ClientGone(Exception):
    """The client of a batch disconnected before its answer; the requests left were not run."""

    def __init__(self, route: str, done: int, total: int) -> None:
        super().__init__(
            f"/{route}/batch: the client went away after {done} of {total} requests; "
            "the rest were not run"
        )


# Not sent (the client has gone), but logged and counted with the request.
CLIENT_CLOSED_REQUEST = 499


def install(app: FastAPI) -> None:
    app.add_exception_handler(NotReady, _not_ready)
    app.add_exception_handler(FunctionFailed, _function_failed)
    app.add_exception_handler(ClientGone, _client_gone)
    app.add_exception_handler(ResponseValidationError, _result_not_as_hinted)


async def _not_ready(request: Request, error: Exception) -> JSONResponse:
    return JSONResponse({"detail": f"the service is not ready: {error}"}, status_code=503)


async def _function_failed(request: Request, error: Exception) -> JSONResponse:
    route = getattr(error, "route", "")
    request.app.state.metrics.errors.labels(route=f"/{route}").inc()
    cause = error.__cause__ or error
    return _logged(request, f"{error}: {type(cause).__name__}: {cause}", cause)


def item_failed(request: Request, route: str, index: int, error: Exception) -> None:
    """A serve function raised on one request of a batch: counted and logged with its index;
    the other requests go on."""
    request.app.state.metrics.errors.labels(route=f"/{route}").inc()
    message = f"the serve function of /{route} raised on request {index} of the batch"
    fields = {"request_id": getattr(request.state, "request_id", ""), "index": index}
    log.error(
        f"{message}: {type(error).__name__}: {error}", exc_info=error, extra={"fields": fields}
    )


async def _client_gone(request: Request, error: Exception) -> Response:
    log.info(str(error), extra={"fields": {"request_id": getattr(request.state, "request_id", "")}})
    return Response(status_code=CLIENT_CLOSED_REQUEST)


async def _result_not_as_hinted(request: Request, error: Exception) -> JSONResponse:
    problems = error.errors() if isinstance(error, ResponseValidationError) else []
    message = f"{request.url.path}: the serve function returned what its type hint does not allow"
    return _logged(request, f"{message}: {problems}", None)


def _logged(request: Request, message: str, cause: BaseException | None) -> JSONResponse:
    request_id = getattr(request.state, "request_id", "")
    log.error(message, exc_info=cause, extra={"fields": {"request_id": request_id}})
    return internal_error(request_id)
