"""The dashboard refuses foreign hosts, foreign origins, non-JSON and oversized bodies,
unauthenticated reads, idle sockets and connections over the cap (a real uvicorn server
on loopback, raw sockets where the HTTP client would be too polite)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from otel_botmon.alerting.model import AlertSeverity, AlertType
from otel_botmon.dashboard.security import GuardPolicy, ServerLimits
from otel_botmon.dashboard.server import MonitoringDashboard
from otel_botmon.monitor import SystemMonitor
from tests.integration.dashboard.conftest import TOKEN, Live, fast_config


async def _alert(live: Live | SystemMonitor) -> str:
    monitor = live if isinstance(live, SystemMonitor) else live.monitor
    return await monitor.create_custom_alert(
        title="t", message="m", severity=AlertSeverity.WARNING, alert_type=AlertType.TRADING,
    )


@contextlib.asynccontextmanager
async def _dashboard(token: str | None = None, **options: Any) -> AsyncIterator[
        tuple[SystemMonitor, MonitoringDashboard]]:
    monitor = SystemMonitor(fast_config())
    dashboard = MonitoringDashboard(monitor, port=0, access_token=token, **options)
    await dashboard.start()
    try:
        yield monitor, dashboard
    finally:
        await dashboard.stop()
        monitor.close()


async def _raw(port: int, data: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    return reader, writer


async def _status_line(reader: asyncio.StreamReader) -> int:
    line = await asyncio.wait_for(reader.readline(), 60)
    return int(line.split()[1])


# --- Host (DNS rebinding) ----------------------------------------------------------------


async def test_foreign_host_names_are_refused(live: Live) -> None:
    port = live.dashboard.port
    for host in (f"evil.test:{port}", "evil.test", f"127.0.0.1.evil.test:{port}",
                 f"localhost.:{port}x", "attacker.example"):
        r = await live.client.get("/api/dashboard", headers={"host": host})
        assert r.status_code == 403 and r.json()["error"] == "forbidden_host", host
    r = await live.client.get("/", headers={"host": f"evil.test:{port}"})
    assert r.status_code == 403  # the page too: a rebound page must not load at all
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}", "LOCALHOST"):
        assert (await live.client.get("/api/status", headers={"host": host})).status_code == 200


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.from_regex(r"[a-z][a-z0-9-]{0,20}(\.[a-z][a-z0-9-]{0,10}){0,3}", fullmatch=True),
       st.integers(1, 65535))
def test_policy_allows_no_name_but_loopback_and_configured(name: str, port: int) -> None:
    policy = GuardPolicy(allowed_hosts=["dash.internal"])
    allowed = name in ("localhost", "dash.internal")
    assert policy.host_allowed(f"{name}:{port}") is allowed
    assert policy.host_allowed(name) is allowed
    # a rebinding page's own origin is never the dashboard's
    assert not policy.origin_allowed(f"http://{name}.evil:{port}", f"localhost:{port}")


def test_policy_bind_names_and_wildcards() -> None:
    assert GuardPolicy(bind_host="box.lan").host_allowed("box.lan:8001")
    assert not GuardPolicy().host_allowed("box.lan:8001")
    wildcard = GuardPolicy(bind_host="0.0.0.0", access_token="t")
    assert wildcard.host_allowed("192.168.1.7:8001")  # an IP literal is no rebinding name
    assert not wildcard.host_allowed("evil.test:8001")
    assert GuardPolicy().host_allowed("127.0.0.2")
    assert not GuardPolicy().host_allowed("10.0.0.1")
    assert GuardPolicy(allowed_origins=["https://proxy.example"]).origin_allowed(
        "https://proxy.example:443", "localhost:8001")
    assert not GuardPolicy().origin_allowed("null", "localhost:8001")


# --- Origin, content type ----------------------------------------------------------------


async def test_cross_origin_posts_change_nothing(live: Live) -> None:
    alert_id = await _alert(live)
    port = live.dashboard.port
    for origin in ("http://evil.test", f"http://localhost:{port + 1}", "null",
                   f"https://127.0.0.1:{port}.evil.test"):
        headers = {"origin": origin}
        for path, body in [(f"/api/alerts/{alert_id}/resolve", None),
                           (f"/api/alerts/{alert_id}/acknowledge", {"user": "evil"}),
                           ("/api/health/check", None)]:
            r = await live.client.post(path, json=body, headers=headers)
            assert r.status_code == 403 and r.json()["error"] == "forbidden_origin"
    alert = live.monitor.get_alert(alert_id)
    assert alert is not None and alert["state"] == "firing" and not alert["acknowledged"]
    same = {"origin": f"http://127.0.0.1:{port}"}
    r = await live.client.post(f"/api/alerts/{alert_id}/acknowledge", json={"user": "me"},
                               headers=same)
    assert r.status_code == 200


async def test_bodies_must_be_json_but_bodyless_curl_posts_pass(live: Live) -> None:
    alert_id = await _alert(live)
    path = f"/api/alerts/{alert_id}/acknowledge"
    for content_type in ("text/plain", "application/x-www-form-urlencoded",
                         "multipart/form-data; boundary=x", None):
        headers = {"content-type": content_type} if content_type else {}
        r = await live.client.post(path, content=b'{"user": "x"}', headers=headers)
        assert r.status_code == 415 and r.json()["error"] == "unsupported_media_type"
    alert = live.monitor.get_alert(alert_id)
    assert alert is not None and not alert["acknowledged"]
    # `curl -X POST .../resolve`: no body, no Origin
    assert (await live.client.post(f"/api/alerts/{alert_id}/resolve")).status_code == 200


async def test_websocket_from_a_foreign_origin_is_refused(live: Live) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(live.ws_url, origin="http://evil.test"):  # type: ignore[arg-type]
            pass
    assert refused.value.response.status_code == 403
    async with connect(live.ws_url, origin=f"http://127.0.0.1:{live.dashboard.port}") as ws:  # type: ignore[arg-type]
        assert '"dashboard"' in str(await asyncio.wait_for(ws.recv(), 30))
    async with connect(live.ws_url) as ws:  # no Origin: a script, not a page
        assert await asyncio.wait_for(ws.recv(), 30)


# --- token, body size ---------------------------------------------------------------------


async def test_oversized_body_is_refused_unread_without_a_token(live_token: Live) -> None:
    port = live_token.dashboard.port
    head = (f"POST /api/health/check HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Content-Type: application/json\r\nContent-Length: 268435456\r\n\r\n").encode()
    reader, writer = await _raw(port, head)  # 256 MiB announced, not one byte sent
    assert await _status_line(reader) == 413
    writer.close()


async def test_streamed_body_is_cut_at_the_limit(live: Live) -> None:
    port = live.dashboard.port
    alert_id = await _alert(live)
    head = (f"POST /api/alerts/{alert_id}/acknowledge HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n").encode()
    reader, writer = await _raw(port, head)
    chunk = b"x" * 4096
    sent = 0
    status = asyncio.ensure_future(_status_line(reader))
    with contextlib.suppress(ConnectionError):
        while not status.done() and sent < 64 * 1024 * 1024:
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            await writer.drain()
            sent += len(chunk)
            await asyncio.sleep(0)
    assert await status == 413
    assert sent < 64 * 1024 * 1024  # refused long before the client ran out of body
    writer.close()


async def test_slow_body_times_out() -> None:
    from otel_botmon.dashboard.app import create_app
    from otel_botmon.dashboard.embedded import EmbeddedServer

    monitor = SystemMonitor(fast_config())
    server = EmbeddedServer(create_app(monitor, guard=GuardPolicy(body_timeout_s=0.3)),
                            limits=ServerLimits())
    await server.start()
    try:
        head = (f"POST /api/health/check HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
                "Content-Type: application/json\r\nContent-Length: 10\r\n\r\n{").encode()
        reader, writer = await _raw(server.port, head)
        assert await _status_line(reader) == 408
        writer.close()
    finally:
        await server.stop()
        monitor.close()


# --- connections --------------------------------------------------------------------------


async def _closed_by_server(reader: asyncio.StreamReader) -> bool:
    with contextlib.suppress(ConnectionError):
        return await asyncio.wait_for(reader.read(1), 60) == b""
    return True


async def test_idle_and_dribbling_sockets_are_closed() -> None:
    async with _dashboard(limits=ServerLimits(header_timeout_s=0.3)) as (_, dashboard):
        idle, idle_w = await _raw(dashboard.port, b"")
        drip, drip_w = await _raw(dashboard.port, b"GET /api/status HTTP/1.1\r\n")
        done = asyncio.ensure_future(_closed_by_server(drip))
        while not done.done():  # one header line every 50 ms: never a complete head
            with contextlib.suppress(ConnectionError):
                drip_w.write(b"X-A: b\r\n")
                await drip_w.drain()
            await asyncio.sleep(0.05)
        assert await done
        assert await _closed_by_server(idle)
        idle_w.close()
        drip_w.close()


async def test_connections_over_the_cap_are_closed_and_room_comes_back() -> None:
    limits = ServerLimits(max_connections=8, header_timeout_s=300)
    async with _dashboard(limits=limits) as (_, dashboard):
        port = dashboard.port
        held = [await _raw(port, b"") for _ in range(8)]
        extra_reader, extra_writer = await _raw(port, b"")
        assert await _closed_by_server(extra_reader)
        extra_writer.close()
        for _, writer in held[:2]:
            writer.close()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            while True:  # the server notices the closed sockets on its next loop turn
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get("/api/status")).status_code == 200:
                        break
                await asyncio.sleep(0.05)
        for _, writer in held[2:]:
            writer.close()


def test_default_cap_is_well_under_the_descriptor_limit() -> None:
    import resource

    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    assert ServerLimits().max_connections <= soft // 4


async def test_near_miss_tokens_are_refused(live_token: Live) -> None:
    for wrong in (TOKEN[:-1], TOKEN + "x", TOKEN.upper(), "x"):
        r = await live_token.client.get("/api/status", headers={"authorization": f"Bearer {wrong}"})
        assert r.status_code == 401


async def test_an_oversized_request_head_is_refused(live: Live) -> None:
    # more than max_header_bytes without a complete head: the connection is closed, so a
    # 1 MiB head is never buffered whole (httptools alone would)
    port = live.dashboard.port
    head = (f"GET /api/status HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"X-Pad: {'a' * 1024 * 1024}\r\n\r\n").encode()
    reader, writer = await _raw(port, b"")
    with contextlib.suppress(ConnectionError):
        writer.write(head)
        await writer.drain()
    line = b""
    with contextlib.suppress(ConnectionError):
        line = await asyncio.wait_for(reader.readline(), 60)
    assert line == b"" or int(line.split()[1]) == 400  # refused or cut, never served
    writer.close()
