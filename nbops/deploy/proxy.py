"""The stable address of a deployment: a small reverse proxy that forwards each request to the
version the state db calls current, so promotion and rollback swap versions behind one port.

Run as `python -m nbops.deploy.proxy NAME --port PORT --db STATE_DB`. The deploy manager promotes a
version in the db, then waits until `GET /_nbops/upstream` here names it before it stops the old
one: no request is ever sent to a version that is shutting down.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sqlite3
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

CONTROL_PATH = "/_nbops/upstream"
POLL_SECONDS = 0.1
# Headers that describe one connection, not the message: never forwarded (RFC 9110 7.6.1).
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)


def current_upstream(db: str, name: str) -> tuple[int, int] | None:
    """(version, port) of the deployment the db marks current and healthy, if any."""
    # Read-only: the proxy never creates or changes the db; while it cannot read it (damaged,
    # being restored) the watcher keeps the last upstream, so the service keeps answering.
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        row = conn.execute(
            "SELECT version, port FROM deployments WHERE name = ? AND current = 1 "
            "AND status = 'healthy'",
            (name,),
        ).fetchone()
    finally:
        conn.close()
    return (int(row[0]), int(row[1])) if row else None


class Proxy:
    """An ASGI app forwarding every request to the current upstream."""

    def __init__(self, db: str, name: str) -> None:
        import httpx

        self.db = db
        self.name = name
        self.upstream: tuple[int, int] | None = None
        self.client = httpx.AsyncClient(timeout=httpx.Timeout(60.0), trust_env=False)

    async def watch(self) -> None:
        while True:
            with contextlib.suppress(sqlite3.Error):
                self.upstream = await asyncio.to_thread(current_upstream, self.db, self.name)
            await asyncio.sleep(POLL_SECONDS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        watcher: asyncio.Task[None] | None = None
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.upstream = current_upstream(self.db, self.name)
                watcher = asyncio.create_task(self.watch())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if watcher:
                    watcher.cancel()
                await self.client.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await _body(receive)
        if scope["path"] == CONTROL_PATH:
            version, port = self.upstream or (None, None)
            await _answer(send, 200, {"name": self.name, "version": version, "port": port})
            return
        if self.upstream is None:
            await _answer(send, 503, {"detail": f"no healthy version of {self.name} is deployed"})
            return
        await self._forward(scope, body, send, self.upstream[1])

    async def _forward(self, scope: Scope, body: bytes, send: Send, port: int) -> None:
        import httpx

        query = scope.get("query_string", b"").decode()
        url = f"http://127.0.0.1:{port}{scope['path']}" + (f"?{query}" if query else "")
        headers = [
            (k.decode(), v.decode())
            for k, v in scope["headers"]
            if k.decode().lower() not in HOP_BY_HOP
        ]
        try:
            response = await self.client.request(
                scope["method"], url, headers=headers, content=body
            )
        except httpx.HTTPError as error:
            await _answer(send, 502, {"detail": f"upstream on port {port} failed: {error}"})
            return
        out = [
            (k.encode(), v.encode())
            for k, v in response.headers.multi_items()
            if k.lower() not in HOP_BY_HOP and k.lower() != "content-encoding"
        ]
        out.append((b"content-length", str(len(response.content)).encode()))
        await send({"type": "http.response.start", "status": response.status_code, "headers": out})
        await send({"type": "http.response.body", "body": response.content})


async def _body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _answer(send: Send, status: int, payload: dict[str, Any]) -> None:
    data = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m nbops.deploy.proxy")
    parser.add_argument("name")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--db", required=True)
    args = parser.parse_args(argv)
    uvicorn.run(Proxy(args.db, args.name), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
