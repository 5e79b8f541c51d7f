"""Edges of the dashboard's guard a well-behaved HTTP client never shows: a header the
guard decides on sent twice, an HTTP/1.1 request without ``Host``, a browser-made
state change that carries no ``Origin`` (only ``Sec-Fetch-Site`` or ``Referer`` tell
where it came from), and names typed into a request body that hold a registered secret.
A real uvicorn server on loopback; raw sockets where httpx would tidy the request up."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator, MutableMapping
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.routing import Route, WebSocketRoute
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from otel_botmon.alerting.model import AlertSeverity, AlertType
from otel_botmon.dashboard.security import DashboardGuard, GuardPolicy
from otel_botmon.redaction import forget_secrets, register_secret
from tests.integration.dashboard.conftest import TOKEN, Live


async def _alert(live: Live) -> str:
    return await live.monitor.create_custom_alert(
        title="t", message="m", severity=AlertSeverity.WARNING, alert_type=AlertType.TRADING,
    )


async def _exchange(port: int, head: str, body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    """Send one raw request; the status, headers (lower-case) and body of the answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 60)
        headers: dict[str, str] = {}
        while (line := await asyncio.wait_for(reader.readline(), 60)) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        data = await asyncio.wait_for(reader.readexactly(length), 60) if length else b""
    finally:
        writer.close()
    return int(status_line.split()[1]), headers, data


def _bad_request(status: int, headers: dict[str, str], body: bytes) -> bool:
    """A 400 from the guard (its JSON ``invalid_request``) or from the HTTP parser, which
    refuses some malformed heads (no Host, two Hosts) before any app sees them."""
    if status != 400:
        return False
    if headers.get("content-type", "").startswith("text/plain"):
        return True  # uvicorn's own "Invalid HTTP request received."
    return bool(json.loads(body)["error"] == "invalid_request")


# --- a deciding header sent twice ------------------------------------------------------


async def test_two_host_headers_are_refused_not_redirected_to_the_first(live: Live) -> None:
    # the guard used to check the last Host while Starlette built URLs from the first:
    # GET /api/status/ answered 307 Location: http://evil.test/api/status
    port = live.dashboard.port
    for order in (("evil.test", f"127.0.0.1:{port}"), (f"127.0.0.1:{port}", "evil.test")):
        status, headers, body = await _exchange(
            port, f"GET /api/status/ HTTP/1.1\nHost: {order[0]}\nHost: {order[1]}\n")
        assert _bad_request(status, headers, body), (order, status, body)
        assert "location" not in headers


async def test_a_state_change_with_a_doubled_origin_or_content_type_is_refused(
    live: Live,
) -> None:
    port = live.dashboard.port
    alert_id = await _alert(live)
    own = f"http://127.0.0.1:{port}"
    body = b'{"user": "evil"}'
    for extra in (f"Origin: http://evil.test\nOrigin: {own}\nContent-Type: application/json",
                  f"Origin: {own}\nOrigin: http://evil.test\nContent-Type: application/json",
                  "Content-Type: text/plain\nContent-Type: application/json",
                  f"Authorization: Bearer x\nAuthorization: Bearer {TOKEN}\n"
                  "Content-Type: application/json",
                  # no Origin: the browser's one Sec-Fetch-Site (or Referer) decides
                  "Sec-Fetch-Site: cross-site\nSec-Fetch-Site: same-origin\n"
                  "Content-Type: application/json",
                  f"Referer: http://evil.test/\nReferer: {own}/\n"
                  "Content-Type: application/json"):
        status, _, answer = await _exchange(
            port, f"POST /api/alerts/{alert_id}/acknowledge HTTP/1.1\nHost: 127.0.0.1:{port}\n"
                  f"{extra}\nContent-Length: {len(body)}\n", body)
        assert status == 400 and json.loads(answer)["error"] == "invalid_request", extra
    alert = live.monitor.get_alert(alert_id)
    assert alert is not None and not alert["acknowledged"]


_DECIDING = ("host", "origin", "content-type", "content-length", "authorization",
             "sec-fetch-site", "referer")


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(st.sampled_from((*_DECIDING, "x-other", "accept")), min_size=1, max_size=8),
       st.sampled_from(("GET", "POST")))
def test_guard_refuses_exactly_the_requests_repeating_a_deciding_header(
    names: list[str], method: str,
) -> None:
    values = {"host": b"localhost:8001", "origin": b"http://localhost:8001",
              "content-type": b"application/json", "content-length": b"0",
              "authorization": b"Bearer t", "sec-fetch-site": b"same-origin",
              "referer": b"http://localhost:8001/"}
    headers = [(n.encode(), values.get(n, b"v")) for n in names]
    if "host" not in names:
        headers.append((b"host", b"localhost:8001"))
    scope = {"type": "http", "method": method, "path": "/api/status", "headers": headers,
             "http_version": "1.1", "query_string": b""}
    sent: list[MutableMapping[str, Any]] = []
    reached: list[bool] = []

    async def app(_scope: Any, _receive: Any, _send: Any) -> None:
        reached.append(True)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    guard = DashboardGuard(app, GuardPolicy())
    asyncio.run(guard(scope, receive, send))
    repeated = any(names.count(n) > 1 for n in _DECIDING)
    assert bool(reached) is not repeated
    if repeated:
        assert sent[0]["status"] == 400


# --- Host missing -------------------------------------------------------------------------


async def test_an_http11_request_without_host_is_refused(live: Live) -> None:
    port = live.dashboard.port
    status, headers, body = await _exchange(port, "GET /api/status HTTP/1.1\n")
    assert _bad_request(status, headers, body), (status, body)
    # HTTP/1.0 has no Host to require: a minimal script is still served
    status, _, _ = await _exchange(port, "GET /api/status HTTP/1.0\n")
    assert status == 200


# --- state changes from a browser that sent no Origin ------------------------------------


def _state_changing_paths(live: Live, alert_id: str) -> list[tuple[str, str]]:
    """Every (method, path) of the app that is not a plain read, WebSockets included:
    a route added later is covered without touching this test."""
    found: list[tuple[str, str]] = []
    for route in live.dashboard.app.routes:
        path = re.sub(r"\{[^}]+\}", alert_id, getattr(route, "path", ""))
        if isinstance(route, WebSocketRoute):
            found.append(("WS", path))
        elif isinstance(route, Route):
            found += [(m, path) for m in sorted(route.methods or ()) if m not in ("GET", "HEAD")]
    assert ("POST", f"/api/alerts/{alert_id}/resolve") in found and ("WS", "/ws") in found
    return found


async def _attempt(live: Live, method: str, path: str, headers: dict[str, str]) -> int:
    if method == "WS":
        try:
            async with connect(f"ws://127.0.0.1:{live.dashboard.port}{path}",
                               additional_headers=headers, open_timeout=30):
                return 101
        except InvalidStatus as refused:
            return refused.response.status_code
    return (await live.client.request(method, path, headers=headers)).status_code


async def test_cross_site_state_changes_without_origin_are_refused(live: Live) -> None:
    # Sec-Fetch-Site and Referer are set by the browser, never by a page's script: when a
    # browser left Origin out (older engines on form posts), they still say "another site"
    port = live.dashboard.port
    alert_id = await _alert(live)
    foreign = ({"sec-fetch-site": "cross-site"}, {"sec-fetch-site": "same-site"},
               {"referer": "http://evil.test/page"},
               {"referer": f"http://localhost:{port + 1}/"},
               {"sec-fetch-site": "same-origin", "referer": "http://evil.test/"})
    for method, path in _state_changing_paths(live, alert_id):
        for headers in foreign:
            status = await _attempt(live, method, path, headers)
            assert status == 403, (method, path, headers, status)
    alert = live.monitor.get_alert(alert_id)
    assert alert is not None and alert["state"] == "firing" and not alert["acknowledged"]
    # the dashboard's own page, a typed URL, and scripts (no Sec-Fetch-*) still act
    for headers in ({"sec-fetch-site": "same-origin"}, {"sec-fetch-site": "none"},
                    {"referer": f"http://127.0.0.1:{port}/"}, {}):
        assert await _attempt(live, "WS", "/ws", headers) == 101, headers
    ack = f"/api/alerts/{alert_id}/acknowledge"
    assert (await live.client.post(ack, headers={"sec-fetch-site": "same-origin"})
            ).status_code == 200
    # a link from another site to the page or a read is a navigation, not a state change
    for path in ("/", "/api/status"):
        r = await live.client.get(path, headers={"sec-fetch-site": "cross-site",
                                                 "referer": "http://evil.test/"})
        assert r.status_code == 200, path


# --- secrets typed into names -----------------------------------------------------------


@pytest.fixture
def secret() -> Iterator[str]:
    value = "Zq9RegisteredApiSecret77"
    register_secret(value)
    try:
        yield value
    finally:
        forget_secrets()


async def test_secrets_in_user_names_never_reach_the_dashboard(
    live: Live, secret: str,
) -> None:
    first, second = await _alert(live), await _alert(live)
    client = live.client
    assert (await client.post(f"/api/alerts/{first}/acknowledge",
                              json={"user": f"ops-{secret}", "note": secret})).status_code == 200
    assert (await client.post(f"/api/alerts/{second}/resolve",
                              json={"user": secret})).status_code == 200
    r = await client.post("/api/silences", json={
        "matchers": ['alertname="t"'], "duration_s": 60,
        "comment": secret, "created_by": f"{secret}@desk"})
    assert r.status_code == 201, r.text
    answers = [r.text]
    for path in ("/api/status", "/api/alerts", "/api/alerts?state=all",
                 f"/api/alerts/{first}", f"/api/alerts/{second}", "/api/silences",
                 "/api/dashboard", f"/api/alerts/{secret}"):
        answers.append((await client.get(path)).text)
    answers.append((await client.post(f"/api/silences/{secret}/expire")).text)
    async with connect(live.ws_url) as ws:
        answers.append(str(await asyncio.wait_for(ws.recv(), 30)))
    leaked = [a[:200] for a in answers if secret in a]
    assert not leaked, leaked
    assert "ops-" in (await client.get(f"/api/alerts/{first}")).text  # the name is kept

