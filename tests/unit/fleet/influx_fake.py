"""A local HTTP server speaking the InfluxDB v2 write API, for exporter unit tests.

It records every write (query, headers, body) and can answer the next writes with an
error status or hold them for a while, to exercise retries and timeouts.
"""

from __future__ import annotations

import gzip
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.services import LOOPBACK


@dataclass
class Write:
    query: dict[str, list[str]]
    headers: dict[str, str]
    lines: list[str]


class FakeInfluxDB:
    def __init__(self) -> None:
        self.writes: list[Write] = []
        self.failures: list[int] = []  # statuses for the next writes, in order
        self.delay_s = 0.0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((LOOPBACK, 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self._server.server_address[1]}"

    def __enter__(self) -> FakeInfluxDB:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def lines(self) -> list[str]:
        with self._lock:
            return [line for write in self.writes for line in write.lines]

    def wait_for_lines(self, predicate: Any, timeout: float = 10.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while True:
            lines = self.lines()
            if predicate(lines):
                return lines
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met within {timeout}s; lines: {lines}")
            time.sleep(0.02)

    def _accept(self, path: str, headers: dict[str, str], body: bytes) -> int:
        if self.delay_s:
            time.sleep(self.delay_s)
        with self._lock:
            if self.failures:
                return self.failures.pop(0)
            parts = urlsplit(path)
            if parts.path != "/api/v2/write":
                return 404
            if headers.get("content-encoding") == "gzip":
                body = gzip.decompress(body)
            lines = [line for line in body.decode().split("\n") if line]
            self.writes.append(Write(parse_qs(parts.query), headers, lines))
        return 204

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                status = fake._accept(self.path, headers, body)
                payload = b"" if status == 204 else b'{"code":"error","message":"fake"}'
                self.send_response(status)
                if status == 429:
                    self.send_header("Retry-After", "1")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                return

        return Handler
