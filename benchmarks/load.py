"""A closed-loop HTTP load generator: N workers, each on its own keep-alive connection, for a
bounded time, recording every request's latency.

.venv/bin/python benchmarks/load.py URL --body '{"features": {...}}' -c 8 -d 3 [--cpu 1]
.venv/bin/python benchmarks/load.py --self-test   # the ceiling against a trivial server
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

STRAGGLERS = 60.0  # seconds a request in flight at the deadline may still take
# The answer of the trivial server that the self-test drives: as little work as a server can do.
TRIVIAL_RESPONSE = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"
)


@dataclass(frozen=True)
class LoadResult:
    """What one bounded run of the generator saw."""

    concurrency: int
    elapsed: float
    latencies: tuple[float, ...]
    errors: int
    first_error: str | None = None

    @property
    def completed(self) -> int:
        return len(self.latencies)

    @property
    def requests_per_second(self) -> float:
        return self.completed / self.elapsed if self.elapsed else 0.0

    def percentile(self, q: float) -> float:
        """Nearest-rank percentile of the successful requests' latencies, in seconds."""
        if not self.latencies:
            return math.nan
        ordered = sorted(self.latencies)
        rank = max(1, math.ceil(q / 100 * len(ordered)))
        return ordered[rank - 1]

    def summary(self) -> dict[str, float | int | str | None]:
        return {
            "concurrency": self.concurrency,
            "requests": self.completed,
            "errors": self.errors,
            "first_error": self.first_error,
            "elapsed_s": round(self.elapsed, 3),
            "requests_per_second": round(self.requests_per_second, 1),
            "p50_ms": round(self.percentile(50) * 1000, 2),
            "p99_ms": round(self.percentile(99) * 1000, 2),
        }


class _Tally:
    """Shared by a run's workers: latencies, errors, and how many requests may still start."""

    def __init__(self, limit: int | None) -> None:
        self.latencies: list[float] = []
        self.errors = 0
        self.first_error: str | None = None
        self.remaining = limit

    def take(self) -> bool:
        if self.remaining is None:
            return True
        self.remaining -= 1
        return self.remaining >= 0

    def error(self, message: str) -> None:
        self.errors += 1
        self.first_error = self.first_error or message


class ProtocolError(Exception):
    """The server answered in a way this small client does not read."""


class _Connection:
    """One kept-alive HTTP/1.1 connection that sends the same prepared request again and again.

    A client this small costs ~0.1 ms a request; httpx costs ~1 ms, which at c=1 is a tenth of
    a model request's latency, and its shared pool caps it near 200 req/s at c=32.
    """

    def __init__(self, host: str, port: int, request: bytes) -> None:
        self.host, self.port, self.request = host, port, request
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self) -> tuple[int, bytes]:
        if self.writer is None or self.reader is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(self.request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status, length, close = _parse_head(head)
        body = await self.reader.readexactly(length)
        if close:
            await self.close()
        return status, body

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.reader = self.writer = None


def _parse_head(head: bytes) -> tuple[int, int, bool]:
    """The status, the body's length and whether the server will close the connection."""
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip().lower()
    if "content-length" not in headers:
        raise ProtocolError(f"no content-length in the answer: {status_line}")
    close = headers.get("connection") == "close"
    return int(status_line.split()[1]), int(headers["content-length"]), close


def prepared_request(url: str, body: bytes) -> tuple[str, int, bytes]:
    """Host, port and the bytes of a POST of `body` as JSON to `url` (plain http only)."""
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname is None:
        raise ValueError(f"only http://host:port/path URLs: {url}")
    port = parts.port or 80
    head = (
        f"POST {parts.path or '/'} HTTP/1.1\r\nHost: {parts.hostname}:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return parts.hostname, port, head.encode() + body


def drive(
    url: str,
    body: bytes,
    *,
    concurrency: int,
    duration: float,
    max_requests: int | None = None,
) -> LoadResult:
    """POST `body` to `url` from `concurrency` workers until `duration` seconds have passed (or
    `max_requests` have started); requests in flight at the deadline finish and count."""
    return asyncio.run(_drive(url, body, concurrency, duration, max_requests))


async def _drive(
    url: str, body: bytes, concurrency: int, duration: float, max_requests: int | None
) -> LoadResult:
    host, port, request = prepared_request(url, body)
    connections = [_Connection(host, port, request) for _ in range(concurrency)]
    tally = _Tally(max_requests)
    start = time.perf_counter()
    workers = asyncio.gather(*(_worker(c, start + duration, tally) for c in connections))
    try:
        # Bounded even if a server stops answering: the deadline plus a minute for stragglers.
        await asyncio.wait_for(workers, duration + STRAGGLERS)
    except asyncio.TimeoutError:
        tally.error(f"requests still unanswered {STRAGGLERS:.0f} s after the window closed")
    finally:
        elapsed = time.perf_counter() - start
        for connection in connections:
            await connection.close()
    return LoadResult(concurrency, elapsed, tuple(tally.latencies), tally.errors, tally.first_error)


async def _worker(connection: _Connection, deadline: float, tally: _Tally) -> None:
    while time.perf_counter() < deadline and tally.take():
        start = time.perf_counter()
        try:
            status, body = await connection.post()
        except (OSError, asyncio.IncompleteReadError, ProtocolError) as error:
            tally.error(f"{type(error).__name__}: {error}")
            await connection.close()
            # A refused connection fails in microseconds; without a pause one worker would
            # spin through the whole window and starve the others.
            await asyncio.sleep(0.01)
            continue
        if status == 200:
            tally.latencies.append(time.perf_counter() - start)
        else:
            tally.error(f"HTTP {status}: {body[:200].decode(errors='replace')}")


def server_and_client_cpus() -> tuple[int | None, int | None]:
    """One CPU for the server under test and another for the generator, so neither steals
    from the other; (None, None) with a single CPU or where affinity cannot be set (macOS)."""
    if not hasattr(os, "sched_getaffinity"):
        return None, None
    cpus = sorted(os.sched_getaffinity(0))
    return (cpus[0], cpus[1]) if len(cpus) > 1 else (None, None)


@contextmanager
def pinned(cpu: int | None) -> Iterator[None]:
    """Run the block on one CPU only, then give the process back the CPUs it had."""
    if cpu is None:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def trivial_server_command(port: int) -> list[str]:
    """The command that serves TRIVIAL_RESPONSE on 127.0.0.1:`port` until it is terminated."""
    return [sys.executable, os.path.abspath(__file__), "--trivial-server", str(port)]


def _serve_trivial(port: int) -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                await reader.readexactly(_content_length(head))
                writer.write(TRIVIAL_RESPONSE)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def serve() -> None:
        server = await asyncio.start_server(answer, "127.0.0.1", port)
        async with server:
            await server.serve_forever()

    asyncio.run(serve())


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


def free_port() -> int:
    """A loopback port nobody listens on now (the OS picks it; a race is possible but rare)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def ceiling(
    *,
    concurrency: int,
    duration: float,
    server_cpu: int | None = None,
    client_cpu: int | None = None,
) -> LoadResult:
    """The generator driving a server that does almost nothing: the most it can measure."""
    port = free_port()
    affinity = None if server_cpu is None else (lambda: os.sched_setaffinity(0, {server_cpu}))
    with subprocess.Popen(trivial_server_command(port), preexec_fn=affinity) as server:
        try:
            url = f"http://127.0.0.1:{port}/"
            _wait_until_listening(port)
            with pinned(client_cpu):
                return drive(url, b"{}", concurrency=concurrency, duration=duration)
        finally:
            server.terminate()


def _wait_until_listening(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    if args.trivial_server is not None:
        _serve_trivial(args.trivial_server)
        return 0
    if args.self_test:
        server_cpu, client_cpu = server_and_client_cpus()
        for concurrency in (1, 8, 32):
            result = ceiling(
                concurrency=concurrency,
                duration=args.duration,
                server_cpu=server_cpu,
                client_cpu=client_cpu,
            )
            print(json.dumps(result.summary()))
        return 0
    if not args.url:
        raise SystemExit("give a URL, or --self-test")
    with pinned(args.cpu):
        result = drive(
            args.url,
            args.body.encode(),
            concurrency=args.concurrency,
            duration=args.duration,
            max_requests=args.requests,
        )
    print(json.dumps(result.summary()))
    return 0


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Closed-loop HTTP load on a loopback server.")
    parser.add_argument("url", nargs="?", help="the URL to POST to")
    parser.add_argument("--body", default="{}", help="the JSON body of every request")
    parser.add_argument("-c", "--concurrency", type=int, default=8)
    parser.add_argument("-d", "--duration", type=float, default=3.0, help="seconds")
    parser.add_argument("--requests", type=int, help="stop after this many requests")
    parser.add_argument("--cpu", type=int, help="run the generator on this CPU only")
    parser.add_argument("--self-test", action="store_true", help="drive a trivial server")
    parser.add_argument("--trivial-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main())
