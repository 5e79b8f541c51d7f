"""Clients that pipeline requests, or stop reading, cannot take the bot's process.

The dashboard shares the bot's event loop. A client may send thousands of requests in
one write before any response (HTTP/1.1 pipelining), with no token: they must be parsed
one at a time as responses go out, not all at once into an unbounded queue (which held
the loop for seconds and grew the process by gigabytes). A client that sends requests
and never reads the responses must lose its connection once it has taken nothing for a
header timeout, so that a few of them cannot hold the connection cap for good.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from otel_botmon.dashboard.embedded import EmbeddedServer
from otel_botmon.dashboard.security import ServerLimits
from otel_botmon.monitor import MonitoringConfig
from tests.integration.dashboard.live_server import LiveDashboard

pytestmark = pytest.mark.integration

CONFIG = MonitoringConfig(metrics_collection_interval=0.5, alert_check_interval=0.5,
                          health_check_interval=60.0, default_alert_rules=False)


def _request(port: int, path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()


def _open_connections(live: LiveDashboard) -> int:
    return len(live.dashboard._server._server.server_state.connections)  # type: ignore[union-attr]


def _never_reading(port: int, data: bytes, receive_buffer: int) -> socket.socket:
    """A connection that sends what its buffers take of ``data`` at once, then nothing,
    and reads nothing (a small receive buffer: the server's answers back up soon)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.connect(("127.0.0.1", port))
    sock.setblocking(False)
    try:
        sock.send(data)
    except BlockingIOError:
        pass
    return sock


@pytest.fixture
def sockets() -> Iterator[list[socket.socket]]:
    opened: list[socket.socket] = []
    yield opened
    for sock in opened:
        sock.close()


def test_pipelined_requests_do_not_hold_the_event_loop(sockets: list[socket.socket]) -> None:
    with LiveDashboard(CONFIG, access_token="a-token-the-flood-does-not-have") as live:
        port = live.dashboard.port
        flood = _request(port, "/api/status") * 3000  # 150 KB: one read on the server
        stalls: list[float] = []
        probing = asyncio.run_coroutine_threadsafe(_probe(stalls, 3.0), live.loop)
        for _ in range(40):
            sockets.append(_never_reading(port, flood, receive_buffer=2048))
        probing.result(30)
    # 40 x 3,000 requests parsed at once held the loop for seconds; one at a time, the
    # loop turns between any two of them
    assert max(stalls) < 0.5, f"the event loop stalled for {max(stalls):.2f} s"


async def _probe(stalls: list[float], seconds: float) -> None:
    """How late each 20 ms sleep on the loop woke, for ``seconds``."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        began = time.monotonic()
        await asyncio.sleep(0.02)
        stalls.append(time.monotonic() - began - 0.02)


def test_a_client_that_stops_reading_loses_its_connection(
    sockets: list[socket.socket],
) -> None:
    # (under the cap with room: pipelining past it answers 503 and closes, another path)
    limits = ServerLimits(max_connections=8, header_timeout_s=1.0, keep_alive_s=1)
    with LiveDashboard(CONFIG, limits=limits) as live:
        port = live.dashboard.port
        for _ in range(2):
            sockets.append(_never_reading(port, _request(port, "/api/dashboard") * 2000,
                                          receive_buffer=1024))
        deadline = time.monotonic() + 20
        while _open_connections(live) < 2:  # both are served (their responses wait)
            assert time.monotonic() < deadline, "the clients were not served"
            time.sleep(0.02)
        # held while nothing is read ... until a whole period passes without it
        while _open_connections(live):
            assert time.monotonic() < deadline, \
                "connections whose client never reads were kept"
            time.sleep(0.1)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
            client.sendall(f"GET /api/status HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                           "Connection: close\r\n\r\n".encode())
            assert client.recv(12) == b"HTTP/1.1 200"


# --- a response the client takes slowly, or not at all (any app the server runs) -----

BIG = 8 * 1024 * 1024


async def _big_app(scope: Any, receive: Any, send: Any) -> None:
    """``/one``: one body of BIG bytes; ``/stream``: the same in 256 KiB parts."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(BIG).encode())]})
    if scope["path"] == "/one":
        await send({"type": "http.response.body", "body": b"x" * BIG})
        return
    part = b"y" * (256 * 1024)
    for _ in range(BIG // len(part)):
        await send({"type": "http.response.body", "body": part, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


def _connect(port: int, path: str) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    return sock


async def test_a_slow_but_steady_reader_keeps_its_streamed_download() -> None:
    limits = ServerLimits(header_timeout_s=0.3, keep_alive_s=1)
    server = EmbeddedServer(_big_app, limits=limits)
    await server.start()
    # a small kernel send buffer (accepted sockets inherit it): the response waits in the
    # server's own buffer at once, as it does once a real client's kernel buffers are full
    server._sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)  # type: ignore[union-attr]
    try:
        def read_slowly() -> int:
            with _connect(server.port, "/stream") as sock:
                sock.settimeout(5)
                # ~200 KB/s for 4 s: each 256 KiB part takes several head timeouts to
                # read, and a new part refills the buffer between two of them
                got, end = 0, time.monotonic() + 4.0
                while time.monotonic() < end:
                    data = sock.recv(4096)
                    assert data, f"the server closed the download after {got} bytes"
                    got += len(data)
                    time.sleep(0.02)
                return got

        got = await asyncio.to_thread(read_slowly)
        assert 0 < got < BIG  # it was still downloading, and was not cut
    finally:
        await server.stop()


async def test_a_client_that_never_reads_a_whole_response_loses_its_connection() -> None:
    limits = ServerLimits(header_timeout_s=0.3, keep_alive_s=1)
    server = EmbeddedServer(_big_app, limits=limits)
    await server.start()
    sock = await asyncio.to_thread(_connect, server.port, "/one")  # and never read
    try:
        state = server._server.server_state  # type: ignore[attr-defined]
        deadline = time.monotonic() + 20
        while not state.connections:
            assert time.monotonic() < deadline, "the client was not served"
            await asyncio.sleep(0.02)
        while state.connections:
            assert time.monotonic() < deadline, "a response nobody reads kept its connection"
            await asyncio.sleep(0.05)
    finally:
        sock.close()
        await server.stop()
