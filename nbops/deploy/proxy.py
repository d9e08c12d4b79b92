"""The stable address of a deployment: a small reverse proxy that forwards each request to the
version the state db calls current, so promotion and rollback swap versions behind one port.

Run as `python -m nbops.deploy.proxy NAME --port PORT --db STATE_DB` (its supervisor does).
Bodies are streamed both ways, never held whole; a request body larger than the service's
limit (NBOPS_MAX_BODY_BYTES, as the service reads it) is answered 413 here.

The deploy manager promotes a version in the db, then waits until `GET /_nbops/upstream` here
names it before it stops the old one: no request is ever sent to a version that is shutting down.

While a new version is watched with a canary share, the previous one (kept running as
`standby`) gets the rest of the requests: each request is sent one way or the other at random,
or by a hash of its client's `X-Client-ID` header when it has one, so a client sticks to one
version. Every answer carries `X-Nbops-Version`. The proxy counts each version's requests,
5xx answers and latency over a sliding window, which `GET /_nbops/stats` reports to the
supervisor that judges the watch.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import random
import sqlite3
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

CONTROL_PATH = "/_nbops/upstream"
STATS_PATH = "/_nbops/stats"
VERSION_HEADER = b"x-nbops-version"
STICKY_HEADER = b"x-client-id"
# Each version's requests are judged over the last minute, at most this many of them.
WINDOW_S = 60.0
WINDOW_REQUESTS = 5000
POLL_SECONDS = 0.1
RETRY_S = 10.0
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
HOP_BY_HOP_BYTES = frozenset(h.encode() for h in HOP_BY_HOP)
# The service's own default (NBOPS_MAX_BODY_BYTES); both read the same variable.
DEFAULT_MAX_BODY_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Upstream:
    """Where requests go: the current version, and during a canary the standby that gets the
    share the canary does not."""

    version: int
    port: int
    canary: int | None = None
    standby: tuple[int, int] | None = None

    def pick(self, client: bytes | None) -> tuple[int, int]:
        """(version, port) for one request: by the client's hash when it names itself."""
        if self.canary is None or self.standby is None:
            return self.version, self.port
        if client:
            slot = int.from_bytes(hashlib.sha256(client).digest()[:4], "big") % 100
        else:
            slot = random.randrange(100)
        return (self.version, self.port) if slot < self.canary else self.standby


def current_upstream(db: str, name: str) -> Upstream | None:
    """The deployment the db marks current and healthy, if any, and its canary split."""
    # Read-only: the proxy never creates or changes the db; while it cannot read it (damaged,
    # being restored) the watcher keeps the last upstream, so the service keeps answering.
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        row = conn.execute(
            "SELECT version, port, canary, watch FROM deployments WHERE name = ? "
            "AND current = 1 AND status = 'healthy'",
            (name,),
        ).fetchone()
        standby = conn.execute(
            "SELECT version, port FROM deployments WHERE name = ? AND status = 'standby' "
            "AND port IS NOT NULL ORDER BY version DESC",
            (name,),
        ).fetchone()
    finally:
        conn.close()
    if row is None:
        return None
    split = row[2] is not None and row[3] == "watching" and standby is not None
    return Upstream(
        int(row[0]),
        int(row[1]),
        canary=int(row[2]) if split else None,
        standby=(int(standby[0]), int(standby[1])) if split else None,
    )


class Window:
    """One version's recent requests: (time, failed, milliseconds), by age and by count."""

    def __init__(self) -> None:
        self.entries: deque[tuple[float, bool, float]] = deque(maxlen=WINDOW_REQUESTS)

    def add(self, status: int, milliseconds: float) -> None:
        self.entries.append((time.monotonic(), status >= 500, milliseconds))

    def figures(self) -> dict[str, Any]:
        horizon = time.monotonic() - WINDOW_S
        while self.entries and self.entries[0][0] < horizon:
            self.entries.popleft()
        latencies = sorted(entry[2] for entry in self.entries)
        return {
            "requests": len(latencies),
            "errors": sum(1 for entry in self.entries if entry[1]),
            "p50_ms": _quantile(latencies, 0.5),
            "p99_ms": _quantile(latencies, 0.99),
        }


def _quantile(ordered: list[float], q: float) -> float | None:
    if not ordered:
        return None
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)


class Proxy:
    """An ASGI app forwarding every request to the current upstream."""

    def __init__(self, db: str, name: str, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        import httpx

        self.db = db
        self.name = name
        self.max_body_bytes = max_body_bytes
        self.upstream: Upstream | None = None
        self.windows: dict[int, Window] = {}
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
        if scope["path"] == CONTROL_PATH:
            await _answer(send, 200, self._describe())
            return
        if scope["path"] == STATS_PATH:
            await _answer(send, 200, self._stats())
            return
        if self.upstream is None:
            await _answer(send, 503, {"detail": f"no healthy version of {self.name} is deployed"})
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            await _too_large(send, self.max_body_bytes)
            return
        version, port = self.upstream.pick(_header(scope, STICKY_HEADER))
        started = time.perf_counter()
        status = await self._forward(scope, receive, send, version, port)
        if status is not None:
            window = self.windows.setdefault(version, Window())
            window.add(status, (time.perf_counter() - started) * 1000)

    def _describe(self) -> dict[str, Any]:
        upstream = self.upstream
        return {
            "name": self.name,
            "version": upstream.version if upstream else None,
            "port": upstream.port if upstream else None,
            "canary": upstream.canary if upstream else None,
            "standby": upstream.standby[0] if upstream and upstream.standby else None,
        }

    def _stats(self) -> dict[str, Any]:
        versions = {str(v): window.figures() for v, window in sorted(self.windows.items())}
        return {**self._describe(), "window_s": WINDOW_S, "versions": versions}

    async def _forward(
        self, scope: Scope, receive: Receive, send: Send, version: int, port: int
    ) -> int | None:
        """Stream the request body up and the response down; neither is held whole here.
        The status the client got, or None when it was refused here (413)."""
        import httpx

        # Header bytes pass as they came: a value that is not ASCII (Latin-1, say) is the
        # service's to judge, and decoding it here is what used to crash the proxy.
        headers = [(k, v) for k, v in scope["headers"] if k.lower() not in HOP_BY_HOP_BYTES]
        body = _Body(receive, self.max_body_bytes)
        try:
            response = await self._send(scope, headers, body, version, port)
        except (httpx.HTTPError, BodyTooLarge) as error:
            if body.too_large:
                await _too_large(send, self.max_body_bytes)
                return None
            await _answer(send, 502, {"detail": f"upstream on port {port} failed: {error}"})
            return 502
        try:
            await self._relay(response, send, version)
        finally:
            await response.aclose()
        return int(response.status_code)

    async def _send(
        self, scope: Scope, headers: list[Any], body: _Body, version: int, port: int
    ) -> Any:
        """The upstream's response. Refused connections (a version being restarted by its
        supervisor, or just replaced) are tried again, with the port the db gives that version
        by then (or the current one's, once it is gone), for up to RETRY_S: nothing of the
        request has reached any version yet."""
        import httpx

        deadline = time.monotonic() + RETRY_S
        while True:
            query = scope.get("query_string", b"").decode("latin-1")
            url = f"http://127.0.0.1:{port}{scope['path']}" + (f"?{query}" if query else "")
            request = self.client.build_request(
                scope["method"], url, headers=headers, content=body.chunks()
            )
            try:
                return await self.client.send(request, stream=True)
            except httpx.ConnectError:
                if body.received or time.monotonic() > deadline:
                    raise
            await asyncio.sleep(POLL_SECONDS)
            port = self._port_of(version) or port

    def _port_of(self, version: int) -> int | None:
        upstream = self.upstream
        if upstream is None:
            return None
        if upstream.standby and upstream.standby[0] == version:
            return upstream.standby[1]
        return upstream.port

    async def _relay(self, response: Any, send: Send, version: int) -> None:
        out = [
            (k, v)
            for k, v in response.headers.raw
            if k.lower() not in HOP_BY_HOP_BYTES or k.lower() == b"content-length"
        ]
        out.append((VERSION_HEADER, str(version).encode()))
        await send({"type": "http.response.start", "status": response.status_code, "headers": out})
        async for chunk in response.aiter_raw():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})


class BodyTooLarge(Exception):
    """The request body grew past the limit while it was being streamed up."""


class _Body:
    """The request body as it arrives, counted: past the limit, the upload is abandoned."""

    def __init__(self, receive: Receive, limit: int) -> None:
        self.receive = receive
        self.limit = limit
        self.received = 0
        self.too_large = False

    async def chunks(self) -> AsyncIterator[bytes]:
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            self.received += len(chunk)
            if self.received > self.limit:
                self.too_large = True
                raise BodyTooLarge(f"more than {self.limit} bytes")
            if chunk:
                yield chunk
            if not message.get("more_body"):
                return


def _content_length(scope: Scope) -> int | None:
    value = _header(scope, b"content-length")
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return bytes(value)
    return None


async def _too_large(send: Send, limit: int) -> None:
    detail = f"the request body is larger than {limit} bytes (NBOPS_MAX_BODY_BYTES)"
    data = json.dumps({"detail": detail}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(data)).encode()),
        # The rest of what the client is sending is not read.
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": data})


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
    parser.add_argument(
        "--max-body-bytes",
        type=int,
        default=int(os.environ.get("NBOPS_MAX_BODY_BYTES") or DEFAULT_MAX_BODY_BYTES),
        help="larger request bodies get 413, as the service would answer  [NBOPS_MAX_BODY_BYTES]",
    )
    args = parser.parse_args(argv)
    proxy = Proxy(args.db, args.name, args.max_body_bytes)
    uvicorn.run(proxy, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
