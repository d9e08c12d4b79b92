"""Limits of the churn service: the optional API key, and the size of a request body.

Generated from churn.ipynb by nbops 0.1.0; edit the notebook, not this file.
"""

import secrets
from typing import Any

from fastapi import HTTPException, Request, Security
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
    """401 unless the request carries the key; compared in constant time."""
    expected = request.app.state.settings.api_key
    if expected is None:
        return
    if key is None or not secrets.compare_digest(
        key.encode(), expected.get_secret_value().encode()
    ):
        raise HTTPException(
            401,
            "a valid X-API-Key header is required",
            headers={"WWW-Authenticate": "X-API-Key"},
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
