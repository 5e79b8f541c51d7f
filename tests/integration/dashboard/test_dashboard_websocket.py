"""The dashboard's WebSocket: pushes, the token, and clients that vanish mid-push."""

from __future__ import annotations

import asyncio
import json
import socket
import struct
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from otel_botmon.alerting.model import AlertSeverity
from otel_botmon.dashboard.models import DashboardResponse
from otel_botmon.dashboard.push import apply_message

from .conftest import TOKEN, Live

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
