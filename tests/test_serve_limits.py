"""Limits of a served batch, for real: `nbops serve` on a loopback port, a serve function that
notes each request it runs in a file, and clients that send too much, go away, or are cut off
by SIGTERM."""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from builders import notebook_json
from servers import Server, build, metric, serving

pytestmark = pytest.mark.slow

MAX_ITEMS = 50
# Each request of a slow batch takes this long, so a batch of SLOW_ITEMS takes seconds.
SECONDS_EACH = 0.02
SLOW_ITEMS = 500
WORK: list[tuple[str, list[str]] | str] = [
    ("import time", ["setup"]),
    ("base = 2.0", ["step:load"]),
    (
        "def work(path: str, value: float = 1.0, seconds: float = 0.0) -> float:\n"
        '    """Note the request in `path`, take `seconds`, then double `value`; a negative one\n'
        '    raises."""\n'
        '    with open(path, "a") as notes:\n'
        '        notes.write(f"{value}\\n")\n'
        "    time.sleep(seconds)\n"
        "    if value < 0:\n"
        '        raise ValueError("a negative value")\n'
        "    return base * value",
        ["serve"],
    ),
]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("work")
    notebook = root / "work.ipynb"
    notebook.write_text(json.dumps(notebook_json(WORK)))
    return build(notebook, root / "build" / "work", root / ".nbops")


@pytest.fixture
def server(built: Path, tmp_path: Path) -> Iterator[Server]:
    with serving(built, tmp_path / "logs", NBOPS_MAX_BATCH_ITEMS=str(MAX_ITEMS)) as s:
        yield s


def lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def wait_until(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def slow_batch(notes: Path, items: int = SLOW_ITEMS, seconds: float = SECONDS_EACH) -> bytes:
    """A raw HTTP request for a batch that takes seconds to run: `items` requests of `seconds`."""
    body = json.dumps(
        [{"path": str(notes), "value": i, "seconds": seconds} for i in range(items)]
    ).encode()
    head = (
        "POST /work/batch HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def connect(server: Server) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def test_a_batch_over_the_item_limit_is_413_naming_the_limit(
    server: Server, tmp_path: Path
) -> None:
    notes = tmp_path / "notes.txt"
    over = [{"path": str(notes), "value": 1} for _ in range(MAX_ITEMS + 1)]
    response = httpx.post(f"{server.url}/work/batch", json=over, timeout=30)
    assert response.status_code == 413
    assert response.json() == {
        "detail": f"the batch has {MAX_ITEMS + 1} requests, more than {MAX_ITEMS} "
        "(NBOPS_MAX_BATCH_ITEMS); send it in parts"
    }
    assert not notes.exists()  # refused before any request ran
    # Refused before the requests are checked: an invalid one does not make it a 422.
    invalid = httpx.post(f"{server.url}/work/batch", json=[{"value": 1}] * 60, timeout=30)
    assert invalid.status_code == 413
    at_limit = httpx.post(f"{server.url}/work/batch", json=over[:MAX_ITEMS], timeout=30)
    assert at_limit.status_code == 200
    assert at_limit.json() == {"results": [2.0] * MAX_ITEMS, "errors": []}


def test_one_bad_request_fails_alone_and_a_nan_result_is_an_error_not_a_crash(
    server: Server, tmp_path: Path
) -> None:
    notes = tmp_path / "notes.txt"
    values = [1, -1, 1e308, 3]  # -1 raises; 2 * 1e308 is infinite, which JSON cannot carry
    requests = [{"path": str(notes), "value": v} for v in values]
    response = httpx.post(f"{server.url}/work/batch", json=requests, timeout=30)
    assert response.status_code == 207, response.text
    assert response.json() == {
        "results": [2.0, None, None, 6.0],
        "errors": [
            {"index": 1, "detail": "internal error"},
            {"index": 2, "detail": "internal error"},
        ],
    }
    single = httpx.post(f"{server.url}/work", json=requests[2], timeout=30)
    assert single.status_code == 500
    [logged] = server.logged(request_id=single.headers["X-Request-ID"], level="ERROR")
    assert logged["message"] == (
        "the serve function of /work raised: ValueError: the result holds inf, which JSON "
        "cannot carry"
    )
    text = httpx.get(f"{server.url}/metrics").text
    assert metric(text, "nbops_function_errors_total", route="/work") == 3
    assert metric(text, "nbops_http_requests_total", route="/work/batch", status="207") == 1


def test_a_batch_stops_when_its_client_goes_away(built: Path, tmp_path: Path) -> None:
    with serving(built, tmp_path / "logs") as server:  # the default limit, 1,000 requests
        check_stops_when_client_goes(server, tmp_path / "notes.txt")


def check_stops_when_client_goes(server: Server, notes: Path) -> None:
    with connect(server) as client:
        client.sendall(slow_batch(notes))
        assert wait_until(lambda: lines(notes) >= 5, 10), "the batch did not start"
    gone = lines(notes)
    time.sleep(1.0)  # long enough for 50 more requests, were the batch still running
    stopped = lines(notes)
    assert stopped <= gone + 2, (gone, stopped)
    time.sleep(0.5)
    assert lines(notes) == stopped
    [logged] = server.logged(status=499)
    assert logged["route"] == "/work/batch"
    [reason] = [e for e in server.log() if "the client went away" in e["message"]]
    assert reason["message"] == (
        f"/work/batch: the client went away after {stopped} of {SLOW_ITEMS} requests; "
        "the rest were not run"
    )
    assert httpx.get(f"{server.url}/healthz").status_code == 200


@pytest.mark.parametrize(
    ("items", "seconds"),
    [(SLOW_ITEMS, SECONDS_EACH), (2, 60.0)],
    ids=["many-short-requests", "one-request-of-a-minute"],
)
def test_sigterm_during_a_long_batch_exits_within_5_seconds(
    built: Path, tmp_path: Path, items: int, seconds: float
) -> None:
    notes = tmp_path / "notes.txt"
    with serving(built, tmp_path / "logs") as server, connect(server) as client:
        answer: list[bytes] = []

        def read() -> None:  # until the server closes the connection
            received = b""
            with contextlib.suppress(OSError):
                while chunk := client.recv(65536):
                    received += chunk
            answer.append(received)

        client.sendall(slow_batch(notes, items, seconds))
        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        assert wait_until(lambda: lines(notes) >= min(items - 1, 5), 10), "no start"
        sent = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        code = server.process.wait(timeout=10)
        took = time.monotonic() - sent
        assert took < 5, f"exited {took:.1f} s after SIGTERM"
        assert code in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once it has stopped
        assert lines(notes) < items  # cut short, not run to its end
        reader.join(timeout=5)
        [head] = answer
        assert head.startswith(b"HTTP/1.1 503 "), head
        assert head.endswith(
            b'{"detail":"the service stopped before this request was done; send it again"}'
        )
        assert server.logged(message="cut off: the server is stopping")
