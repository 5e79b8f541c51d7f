"""Real servers for the health-check tests: InfluxDB 1.x and a scriptable HTTP server."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.services import LOOPBACK, ManagedProcess, free_port, require_binary

# --- InfluxDB -------------------------------------------------------------------------


@dataclass
class InfluxServer:
    """``influxd`` on 127.0.0.1:``port``; ``stop()`` and ``start()`` keep the port."""

    process: ManagedProcess
    port: int

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> None:
        self.process.start_ready(f"{self.url}/ping", ok_statuses=(204,))

    def stop(self) -> None:
        self.process.stop()


def _influx_config(root: Path, http_port: int, rpc_port: int) -> str:
    return f"""
reporting-disabled = true
bind-address = "{LOOPBACK}:{rpc_port}"

[meta]
  dir = "{root / 'meta'}"

[data]
  dir = "{root / 'data'}"
  wal-dir = "{root / 'wal'}"
  query-log-enabled = false

[http]
  enabled = true
  bind-address = "{LOOPBACK}:{http_port}"
  log-enabled = false

[monitor]
  store-enabled = false

[subscriber]
  enabled = false

[continuous_queries]
  enabled = false
"""


@pytest.fixture
def influxdb(tmp_path: Path) -> Iterator[InfluxServer]:
    """A running InfluxDB 1.x (Debian ``influxdb``), data in ``tmp_path``."""
    binary = require_binary("influxd", "/usr/bin/influxd")
    port = free_port()
    config = tmp_path / "influxdb.conf"
    config.write_text(_influx_config(tmp_path, port, free_port()))
    server = InfluxServer(
        ManagedProcess([binary, "run", "-config", str(config)], tmp_path / "influxd.log"),
        port,
    )
    server.start()
    yield server
    server.stop()


# --- scriptable HTTP server -----------------------------------------------------------


@dataclass
class Route:
    """How the server answers one path: status, JSON body, and a delay before answering."""

    status: int = 200
    body: object = field(default_factory=dict)
    delay_s: float = 0.0


@dataclass
class HttpServer:
    """A threaded HTTP/1.1 server on 127.0.0.1 whose answers a test can change."""

    port: int
    routes: dict[str, Route] = field(default_factory=dict)
    hits: dict[str, int] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"


def _handler(server: HttpServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            route = server.routes.get(self.path.split("?")[0], Route(404, {"error": "nope"}))
            server.hits[self.path] = server.hits.get(self.path, 0) + 1
            if route.delay_s:
                time.sleep(route.delay_s)
            body = route.body() if callable(route.body) else route.body
            payload = json.dumps(body).encode()
            try:
                self.send_response(route.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def http_server() -> Iterator[HttpServer]:
    """An HTTP server with no routes (404 everywhere) until the test adds some."""
    state = HttpServer(port=0)
    httpd = ThreadingHTTPServer((LOOPBACK, 0), _handler(state))
    httpd.daemon_threads = True
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), name="test-http",
                              daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)
