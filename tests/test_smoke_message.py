"""A deploy's smoke request says what happened, never "answered None: "."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from nbops.deploy.processes import NotHealthy, free_port, smoke


class EmptyAnswer(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.send_response(500)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def empty_500() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), EmptyAnswer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_no_answer_at_all_says_why_not_answered_none() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(NotHealthy) as raised:
        smoke(url, "predict", {"x": 1}, None)
    assert str(raised.value) == (
        'smoke request POST /predict {"x": 1} got no answer ([Errno 111] Connection refused)'
    )


def test_an_answer_without_a_body_ends_with_its_status(empty_500: str) -> None:
    with pytest.raises(NotHealthy) as raised:
        smoke(empty_500, "predict", {"x": 1}, None, why="the example request")
    assert str(raised.value) == (
        'smoke request POST /predict {"x": 1} answered 500 (the example request)'
    )
