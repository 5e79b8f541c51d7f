"""A loopback HTTP server that answers like a Binance-style REST API.

Every request is recorded (so a test can prove the secret really went over the wire and
was only redacted from telemetry). Responses are set per path with ``respond()``; the
default answer is ``200 {"ok": true}`` with Binance's rate-limit headers.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.services import LOOPBACK

DEFAULT_HEADERS = {"X-MBX-USED-WEIGHT-1M": "7", "X-MBX-ORDER-COUNT-10S": "1"}


@dataclass
class Answer:
    status: int = 200
    # a list of (name, value) pairs sends a name more than once
    headers: dict[str, str] | list[tuple[str, str]] = field(
        default_factory=lambda: dict(DEFAULT_HEADERS))
    body: bytes = b'{"ok": true}'
    content_type: str = "application/json"


@dataclass
class Received:
    method: str
    path: str  # with the query string
    headers: dict[str, str]


class FakeExchange:
    """``with FakeExchange() as ex: httpx.get(ex.url("/api/v3/order?..."))``."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self._answers: dict[tuple[str | None, str], Answer] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((LOOPBACK, 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self._server.server_address[1]}"

    def url(self, path_and_query: str) -> str:
        return self.base_url + path_and_query

    def respond(self, path: str, answer: Answer, method: str | None = None) -> None:
        """Answer requests to ``path`` (without query) with ``answer`` from now on; with
        ``method``, only requests with that method (the others get the path's answer)."""
        with self._lock:
            self._answers[(method, path)] = answer

    def __enter__(self) -> FakeExchange:
        # A short poll interval makes shutdown() (teardown) take milliseconds, not 0.5 s.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def _answer(self, method: str, path: str, headers: dict[str, str]) -> Answer:
        with self._lock:
            self.requests.append(Received(method, path, headers))
            plain = path.split("?", 1)[0]
            return self._answers.get((method, plain)) or self._answers.get(
                (None, plain), Answer())

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        exchange = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                answer = exchange._answer(
                    self.command, self.path, {k.lower(): v for k, v in self.headers.items()}
                )
                self.send_response(answer.status)
                pairs = answer.headers.items() if isinstance(answer.headers, dict) \
                    else answer.headers
                for name, value in pairs:
                    self.send_header(name, value)
                self.send_header("Content-Type", answer.content_type)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _serve

            def log_message(self, format: str, *args: Any) -> None:
                return

        return Handler
