"""Limits of the churn service: the optional API key, checked before the body is read; JSON
without NaN or Infinity; the size of a request body and of a batch.

Generated from churn.ipynb by nbops 0.1.0; edit the notebook, not this file.
"""

import json
import secrets
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import HTTPException, Request, Response, Security
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .settings import Settings

API_KEY = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    description="The key the service was started with, in NBOPS_API_KEY.",
)


async def require_api_key(request: Request, key: str | None = Security(API_KEY)) -> None:
    """401 unless the request carries the key; compared in constant time.

    GuardedRoute has checked it already, before the body was read; as a dependency it puts the
    key in the OpenAPI document.
    """
    check_api_key(request)


def check_api_key(request: Request) -> None:
    expected = request.app.state.settings.api_key
    if expected is None:
        return
    key = request.headers.get("X-API-Key")
    if key is None or not secrets.compare_digest(
        key.encode(), expected.get_secret_value().encode()
    ):
        raise HTTPException(
            401,
            "a valid X-API-Key header is required",
            headers={"WWW-Authenticate": "X-API-Key"},
        )


class StrictJsonRequest(Request):
    """A request whose JSON body may not hold NaN, Infinity or -Infinity: Python's json reads
    them, but they are not JSON, and a serve function given one answers nonsense or raises."""

    parsed: Any = None

    async def json(self) -> Any:
        if self.parsed is None:
            self.parsed = json.loads(await self.body(), parse_constant=_refuse_constant)
        return self.parsed


def _refuse_constant(name: str) -> Any:
    # FastAPI answers a JSONDecodeError with its 422 for a body that is not JSON.
    raise json.JSONDecodeError(f"{name} is not a JSON number; send a finite number", name, 0)


class GuardedRoute(APIRoute):
    """A route that checks the API key before its body is read, so that a request without the
    key is 401 whatever its body, and reads the body as strict JSON."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            check_api_key(request)
            return await handler(StrictJsonRequest(request.scope, request.receive))

        return guarded


async def batch_within_limit(request: Request) -> None:
    """413 for a batch of more requests than NBOPS_MAX_BATCH_ITEMS, before any is checked.

    FastAPI reads the body as JSON before it solves dependencies and checks the body after
    them, so the list is here already parsed, not yet validated.
    """
    limit = request.app.state.settings.max_batch_items
    try:
        body = await request.json()
    except ValueError:  # not JSON: FastAPI's check of the body says so
        return
    if isinstance(body, list) and len(body) > limit:
        raise HTTPException(
            413,
            f"the batch has {len(body)} requests, more than {limit} (NBOPS_MAX_BATCH_ITEMS); "
            "send it in parts",
        )


def api_key_dependencies(settings: Settings) -> list[Any]:
    """The check for protected routes; none without NBOPS_API_KEY, so that the OpenAPI
    document asks for a key exactly when one is needed."""
    return [Security(require_api_key)] if settings.api_key is not None else []


class BodySizeLimit:
    """413 for a request body larger than `max_bytes`.

    At once when its Content-Length says so; otherwise as soon as the streamed body grows past
    the limit, before it is read whole.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            # Connection: close, since the body the client may still be sending is not read.
            headers = {"Connection": "close"}
            answer = JSONResponse({"detail": self._detail()}, status_code=413, headers=headers)
            await answer(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # Raised inside FastAPI's reading of the body, which answers it as it is.
                    raise HTTPException(413, self._detail())
            return message

        await self.app(scope, counted, send)

    def _detail(self) -> str:
        return f"the request body is larger than {self.max_bytes} bytes (NBOPS_MAX_BODY_BYTES)"
