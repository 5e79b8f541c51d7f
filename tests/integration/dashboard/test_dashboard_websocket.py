"""The dashboard's WebSocket: pushes, the token, and clients that vanish mid-push."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import struct
from typing import Any

import psutil
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from otel_botmon.alerting.model import AlertSeverity
from otel_botmon.dashboard.models import DashboardResponse
from otel_botmon.dashboard.push import apply_message
from otel_botmon.dashboard.server import MonitoringDashboard
from otel_botmon.monitor import SystemMonitor

from .conftest import TOKEN, Live, fast_config

SECTIONS = set(DashboardResponse.model_fields)


_VIEWS: dict[int, dict[str, Any]] = {}


async def _next(ws: ClientConnection, predicate: Any, timeout: float = 30.0) -> dict[str, Any]:
    """The client's view (snapshot plus deltas) once ``predicate`` holds."""
    async with asyncio.timeout(timeout):
        while True:
            message = json.loads(await ws.recv())
            assert message["type"] in ("dashboard", "delta")
            view = apply_message(_VIEWS.get(id(ws)), message)
            _VIEWS[id(ws)] = view
            if predicate(view):
                return view


async def test_a_new_client_gets_a_snapshot_then_pushed_changes(live: Live) -> None:
    async with connect(live.ws_url) as ws:
        first = await _next(ws, lambda d: True)
        assert set(first) == SECTIONS
        await live.monitor.create_custom_alert("pushed", "m", AlertSeverity.CRITICAL)
        data = await _next(ws, lambda d: d["status"]["alerts_by_severity"]["critical"] == 1)
        assert data["alerts"]["active"][0]["title"] == "pushed"


async def test_websocket_needs_the_token_when_one_is_set(live_token: Live) -> None:
    with pytest.raises(InvalidStatus) as info:
        async with connect(live_token.ws_url):
            pass
    assert info.value.response.status_code == 401
    with pytest.raises(InvalidStatus):
        async with connect(live_token.ws_url + "?token=wrong"):
            pass
    for twice in (f"?token={TOKEN}&token=wrong", f"?token=wrong&token={TOKEN}"):
        with pytest.raises(InvalidStatus) as info:  # the guard and the app read one each
            async with connect(live_token.ws_url + twice):
                pass
        assert info.value.response.status_code == 401, twice
    async with connect(live_token.ws_url + f"?token={TOKEN}") as ws:
        await _next(ws, lambda d: True)
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    async with connect(live_token.ws_url, additional_headers=bearer) as ws:
        await _next(ws, lambda d: True)


async def _raw_upgrade(port: int) -> asyncio.StreamWriter:
    """A WebSocket handshake on a plain stream that we can then drop without a close frame."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    async with asyncio.timeout(10):
        assert b"101" in await reader.readline()
    return writer


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset (SO_LINGER 0) and no WebSocket close frame."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def test_a_client_dropping_mid_push_changes_nothing_for_the_others(live: Live) -> None:
    hub = live.dashboard.app.state.push_hub
    async with connect(live.ws_url) as a, connect(live.ws_url) as b:
        await _next(a, lambda d: True)
        await _next(b, lambda d: True)
        droppers = [await _raw_upgrade(live.dashboard.port) for _ in range(3)]
        for i in range(5):
            await live.monitor.create_custom_alert(f"storm {i}", "m", AlertSeverity.WARNING)
            if i == 1:
                for writer in droppers:  # vanish mid-push, unread data pending
                    _reset(writer)
        for ws in (a, b):
            data = await _next(ws, lambda d: d["status"]["alerts_by_severity"]["warning"] == 5)
            assert len(data["alerts"]["active"]) == 5
        async with asyncio.timeout(10):
            while hub.client_count != 2:
                await asyncio.sleep(0.05)
    assert (await live.client.get("/api/status")).status_code == 200


# --- clients that stop reading, send binary, or ask for too much ----------------------------


def _server_sockets(port: int) -> int:
    """TCP connections the server side of ``port`` holds open in this process."""
    process = psutil.Process()
    # net_connections() arrived in psutil 6.0; connections() is its name in the 5.9 floor
    connections = getattr(process, "net_connections", None) or process.connections
    return sum(1 for c in connections(kind="tcp")
               if c.laddr and c.laddr.port == port and c.status != psutil.CONN_LISTEN)


async def _big_dashboard(live: Live, alerts: int = 200) -> None:
    """Make every snapshot large (about 1.5 KB per alert)."""
    for i in range(alerts):
        await live.monitor.create_custom_alert(f"a{i}", "x" * 1200, AlertSeverity.INFO)


async def _stuck_client(port: int) -> socket.socket:
    """A WebSocket client with a tiny receive buffer that never reads a byte again."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, ("127.0.0.1", port))
    await loop.sock_sendall(sock, (
        b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"))
    return sock


def _frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """One masked client frame (mask of zeros: the payload is sent as is)."""
    assert len(payload) < 126
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + b"\0\0\0\0" + payload


async def _fill_until_stuck(sock: socket.socket, hub: Any) -> None:
    """Ask for whole snapshots until the server's sends to ``sock`` stop going out."""
    loop = asyncio.get_running_loop()
    unchanged, last = 0, -1
    async with asyncio.timeout(60):
        while unchanged < 15:
            await loop.sock_sendall(sock, _frame(b"refresh"))
            await asyncio.sleep(0.1)
            unchanged = unchanged + 1 if hub.bytes_sent == last else 0
            last = hub.bytes_sent


async def test_a_client_that_stops_reading_is_dropped_and_its_socket_freed(live: Live) -> None:
    hub = live.dashboard.app.state.push_hub
    hub.send_timeout_s, hub.min_gap_s = 0.5, 0.0
    await _big_dashboard(live)
    port = live.dashboard.port
    sock = await _stuck_client(port)
    try:
        async with connect(live.ws_url) as reader:
            await _next(reader, lambda d: True)
            loop = asyncio.get_running_loop()
            async with asyncio.timeout(60):
                while hub.client_count == 2:  # the stuck one is dropped by the send timeout
                    await loop.sock_sendall(sock, _frame(b"refresh"))
                    await asyncio.sleep(0.05)
                assert hub.client_count == 1
                # ... and the server lets go of its socket (unsent data and all)
                while _server_sockets(port) > 1:
                    await asyncio.sleep(0.05)
            await live.monitor.create_custom_alert("after", "m", AlertSeverity.CRITICAL)
            await _next(reader, lambda d: d["status"]["alerts_by_severity"]["critical"] == 1)
    finally:
        sock.close()


async def test_stop_with_a_stuck_client_is_prompt_and_leaves_nothing_running() -> None:
    monitor = SystemMonitor(fast_config())
    dashboard = MonitoringDashboard(monitor, port=0, push_interval_s=0.2)
    await dashboard.start()
    hub = dashboard.app.state.push_hub
    hub.min_gap_s = 0.0
    sock = None
    try:
        live = Live(monitor, dashboard, None)  # type: ignore[arg-type]
        await _big_dashboard(live)
        sock = await _stuck_client(dashboard.port)
        await _fill_until_stuck(sock, hub)
        assert hub.client_count == 1
        started = asyncio.get_running_loop().time()
        await dashboard.stop(timeout_s=10)
        took = asyncio.get_running_loop().time() - started
        assert took < 5, took
        assert not hub.running
        assert hub.mark_changed not in monitor._listeners
        assert _server_sockets(dashboard.port) == 0
        assert not [t for t in asyncio.all_tasks() if t.get_name() == "botmon-dashboard-push"]
    finally:
        if sock is not None:
            sock.close()
        monitor.close()


async def test_a_binary_message_closes_with_1003_and_no_traceback(
    live: Live, caplog: pytest.LogCaptureFixture,
) -> None:
    async with connect(live.ws_url) as ws:
        await _next(ws, lambda d: True)
        await ws.send(b"\x00\x01 not text")
        async with asyncio.timeout(10):
            with pytest.raises(ConnectionClosed) as info:
                while True:
                    await ws.recv()
    assert info.value.rcvd is not None and info.value.rcvd.code == 1003
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    async with connect(live.ws_url) as ws:  # the others carry on
        await _next(ws, lambda d: True)


async def test_asking_for_refresh_in_a_loop_gets_a_bounded_number_of_snapshots(
    live: Live,
) -> None:
    hub = live.dashboard.app.state.push_hub
    async with connect(live.ws_url) as ws:
        await _next(ws, lambda d: True)
        loop = asyncio.get_running_loop()
        received = 0

        async def read() -> None:
            nonlocal received
            while True:
                await ws.recv()
                received += 1

        reading = asyncio.ensure_future(read())
        started = loop.time()
        for _ in range(400):
            await ws.send("refresh")
            await asyncio.sleep(0.005)
        elapsed = loop.time() - started
        reading.cancel()
        # one message per min_gap_s at most (plus the one in flight)
        assert received <= elapsed / hub.min_gap_s + 2, (received, elapsed)


async def test_a_reconnect_storm_sends_one_whole_snapshot_per_loop_turn(live: Live) -> None:
    """Each whole snapshot costs the bot's loop its copy, compression and write; many
    started in one turn of the loop (a hundred tabs reconnecting) held it for seconds."""
    hub = live.dashboard.app.state.push_hub
    await _big_dashboard(live, alerts=100)
    loop = asyncio.get_running_loop()
    turn = 0

    def tick() -> None:  # runs once per turn of the event loop
        nonlocal turn
        turn += 1
        ticking.append(loop.call_soon(tick))

    ticking = [loop.call_soon(tick)]
    turns: list[int] = []
    encode_for = hub.encode_for

    def recording(client: Any) -> str:
        message: str = encode_for(client)
        if message.startswith('{"type":"dashboard"'):
            turns.append(turn)
        return message

    hub.encode_for = recording
    try:
        clients = 60

        async def one() -> None:
            async with connect(live.ws_url, max_size=None) as ws:
                await ws.recv()

        async with asyncio.timeout(60):
            await asyncio.gather(*(one() for _ in range(clients)))
    finally:
        ticking[-1].cancel()
        hub.encode_for = encode_for
    assert len(turns) >= clients
    assert len(set(turns)) == len(turns), sorted(turns)
