"""The dashboard's REST API: the guide's endpoints, errors, tokens and secrets."""

from __future__ import annotations

import asyncio
import ipaddress

import httpx
import psutil
import pytest

from otel_botmon.alerting.model import AlertSeverity, AlertType
from otel_botmon.dashboard.models import DashboardResponse
from otel_botmon.dashboard.server import MonitoringDashboard
from otel_botmon.monitor import SystemMonitor
from otel_botmon.redaction import forget_secrets, register_secret

from .conftest import TOKEN, Live, fast_config

GUIDE_PATHS = {
    ("get", "/api/status"), ("get", "/api/health"), ("get", "/api/performance"),
    ("get", "/api/alerts"), ("get", "/api/dashboard"),
    ("post", "/api/alerts/{alert_id}/acknowledge"), ("post", "/api/alerts/{alert_id}/resolve"),
    ("post", "/api/health/check"),
}

SECTIONS = set(DashboardResponse.model_fields)


async def _alert(live: Live, title: str = "Custom Trading Alert", message: str = "m") -> str:
    return await live.monitor.create_custom_alert(
        title=title, message=message, severity=AlertSeverity.WARNING,
        alert_type=AlertType.TRADING,
    )


async def test_openapi_schema_lists_every_endpoint_of_the_guide(live: Live) -> None:
    schema = (await live.client.get("/openapi.json")).json()
    found = {(method, path) for path, ops in schema["paths"].items() for method in ops}
    assert found >= GUIDE_PATHS


async def test_status_reports_health_uptime_and_alert_counts(live: Live) -> None:
    await _alert(live)
    body = (await live.client.get("/api/status")).json()
    assert body["running"] is True
    assert 0 <= body["uptime_seconds"] < 60
    later = body
    async with asyncio.timeout(5):  # uptime counts up between two requests
        while later["uptime_seconds"] <= body["uptime_seconds"]:
            later = (await live.client.get("/api/status")).json()
    assert body["alerts_by_severity"] == {"info": 0, "warning": 1, "critical": 0, "emergency": 0}
    assert body["active_alerts"] == 1
    assert "system_resources" in body["components"]
    assert body["overall_health"] in ("degraded", "critical")


async def test_health_performance_and_dashboard_answer(live: Live) -> None:
    for _ in range(2):  # a windowed KPI needs two points in its window
        live.monitor.record_trade_execution("BTCUSDT", "BUY", 0.001, 45000.0, 250.0)
        live.monitor.performance_monitor.sample()
    health = (await live.client.get("/api/health")).json()
    assert "system_resources" in health["components"]
    perf = (await live.client.get("/api/performance")).json()
    assert perf["current"]["total_trades"] == 2
    assert 0.1 <= perf["current"]["trade_latency_p50"] <= 0.5  # seconds, as the rules read it
    assert perf["kpis"]["trade_latency_p50"]["window"] == "5m"
    dash = (await live.client.get("/api/dashboard")).json()
    assert set(dash) == SECTIONS


async def test_acknowledge_and_resolve_change_the_alert(live: Live) -> None:
    alert_id = await _alert(live)
    r = await live.client.post(f"/api/alerts/{alert_id}/acknowledge", json={"user": "trader_john"})
    assert r.status_code == 200
    assert r.json()["alert"]["acknowledged_by"] == "trader_john"
    r = await live.client.post(f"/api/alerts/{alert_id}/resolve")
    assert r.status_code == 200 and r.json()["alert"]["state"] == "resolved"
    active = (await live.client.get("/api/alerts")).json()
    assert active["count"] == 0
    history = (await live.client.get("/api/alerts", params={"state": "all"})).json()
    assert [a["id"] for a in history["alerts"]] == [alert_id]


@pytest.mark.parametrize("action", ["acknowledge", "resolve"])
async def test_unknown_alert_is_404_with_a_json_error(live: Live, action: str) -> None:
    r = await live.client.post(f"/api/alerts/no-such-id/{action}", json={"user": "x"})
    assert r.status_code == 404
    assert r.json()["error"] == "not_found"
    assert "no-such-id" in r.json()["detail"]


@pytest.mark.parametrize(
    "body", [b"{not json", b'{"user": 5}', b'{"user": ""}', b"[]", b"\xff\xfe_",
             b'{"note": "' + b"x" * 501 + b'"}', b'{"user": "a", "extra": 1}'],
)
async def test_malformed_acknowledge_body_is_422(live: Live, body: bytes) -> None:
    alert_id = await _alert(live)
    r = await live.client.post(
        f"/api/alerts/{alert_id}/acknowledge", content=body,
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 422
    assert r.json()["error"] == "invalid_request"


@pytest.mark.parametrize("action", ["acknowledge", "resolve"])
async def test_body_less_post_acts_as_dashboard_as_in_the_guide(live: Live, action: str) -> None:
    alert_id = await _alert(live)
    r = await live.client.post(f"/api/alerts/{alert_id}/{action}")  # curl -X POST, no body
    assert r.status_code == 200, r.text
    events = (await live.client.get(f"/api/alerts/{alert_id}")).json()["events"]
    (event,) = [e for e in events if e["kind"] == {"acknowledge": "acknowledged",
                                                    "resolve": "resolved"}[action]]
    assert event["detail"]["by"] == "dashboard"


async def test_acknowledge_with_a_note_keeps_it_in_the_event(live: Live) -> None:
    alert_id = await _alert(live)
    r = await live.client.post(f"/api/alerts/{alert_id}/acknowledge",
                               json={"user": "ann", "note": "restarting the feed"})
    assert r.status_code == 200 and r.json()["alert"]["acknowledged_by"] == "ann"
    events = (await live.client.get(f"/api/alerts/{alert_id}")).json()["events"]
    assert {"by": "ann", "note": "restarting the feed"} in [e["detail"] for e in events]


@pytest.mark.parametrize("action", ["acknowledge", "resolve"])
@pytest.mark.parametrize(
    "body", [None, b"", b"{not json", b'{"user": 5}', b"[]", b'{"user": "x"}'],
)
async def test_unknown_alert_is_404_whatever_the_body(
    live: Live, action: str, body: bytes | None,
) -> None:
    r = await live.client.post(
        f"/api/alerts/0123456789abcdef/{action}", content=body,
        headers={"content-type": "application/json"} if body is not None else {},
    )
    assert r.status_code == 404 and r.json()["error"] == "not_found"


async def test_body_less_action_with_a_named_token_is_recorded_under_its_name() -> None:
    monitor = SystemMonitor(fast_config())
    dashboard = MonitoringDashboard(
        monitor, port=0, access_token={"ann": "token-of-ann", "bob": "token-of-bob"},
    )
    await dashboard.start()
    try:
        alert_id = await monitor.create_custom_alert("Named", "m")
        async with httpx.AsyncClient(base_url=dashboard.url) as client:
            denied = await client.post(f"/api/alerts/{alert_id}/acknowledge",
                                       headers={"authorization": "Bearer nope"})
            assert denied.status_code == 401
            r = await client.post(f"/api/alerts/{alert_id}/acknowledge",
                                  headers={"authorization": "Bearer token-of-bob"})
            assert r.status_code == 200 and r.json()["alert"]["acknowledged_by"] == "bob"
    finally:
        await dashboard.stop()
        monitor.close()


async def test_bad_query_parameter_is_422(live: Live) -> None:
    r = await live.client.get("/api/alerts", params={"state": "bogus"})
    assert r.status_code == 422


async def test_force_health_check_returns_fresh_results(live: Live) -> None:
    before = (await live.client.get("/api/health")).json()["components"]["system_resources"]
    r = await live.client.post("/api/health/check")
    assert r.status_code == 200
    after = r.json()["components"]["system_resources"]
    assert after["checked_at"] > before["checked_at"]


async def test_every_api_request_needs_the_token_when_one_is_set(live_token: Live) -> None:
    client = live_token.client
    alert_id = await _alert(live_token)
    for path, body in [
        (f"/api/alerts/{alert_id}/acknowledge", {"user": "u"}),
        (f"/api/alerts/{alert_id}/resolve", None), ("/api/health/check", None),
    ]:
        assert (await client.post(path, json=body)).status_code == 401
        wrong = {"authorization": "Bearer nope"}
        r = await client.post(path, json=body, headers=wrong)
        assert r.status_code == 401 and r.json()["error"] == "unauthorized"
    assert live_token.monitor.get_alert(alert_id)["acknowledged"] is False
    good = {"authorization": f"Bearer {TOKEN}"}
    r = await client.post(f"/api/alerts/{alert_id}/acknowledge", json={"user": "u"}, headers=good)
    assert r.status_code == 200
    # reads too: the status, alerts and P&L are the bot's business
    for path in ("/api/status", "/api/dashboard", "/api/alerts", "/openapi.json"):
        assert (await client.get(path)).status_code == 401
        assert (await client.get(path, headers=good)).status_code == 200
    assert (await client.get("/")).status_code == 200  # the page reads #token=... itself


def test_non_loopback_bind_needs_a_token(live: Live) -> None:
    with pytest.raises(ValueError, match="access_token"):
        MonitoringDashboard(live.monitor, host="0.0.0.0")
    with pytest.raises(ValueError, match="access_token"):
        MonitoringDashboard(live.monitor, host="192.168.1.10")
    assert MonitoringDashboard(live.monitor, host="0.0.0.0", access_token="t").host == "0.0.0.0"
    assert MonitoringDashboard(live.monitor, host="::1").host == "::1"
    assert MonitoringDashboard(live.monitor).host == "127.0.0.1"


async def test_default_dashboard_listens_on_loopback_only(live: Live) -> None:
    # the sockets really listening, not the host attribute: a server that ignored the
    # configured host and bound 0.0.0.0 would expose the dashboard to the network
    process = psutil.Process()
    # net_connections() arrived in psutil 6.0; connections() is its name in the 5.9 floor
    connections = getattr(process, "net_connections", None) or process.connections
    listening = [
        c.laddr for c in connections(kind="inet")
        if c.status == psutil.CONN_LISTEN and c.laddr.port == live.dashboard.port
    ]
    assert listening, "the dashboard's port is not listening"
    assert all(ipaddress.ip_address(addr.ip).is_loopback for addr in listening), listening


async def test_secrets_in_alert_text_never_reach_the_api(live: Live) -> None:
    secret = "demoSecretKey1234567890"
    register_secret(secret)
    try:
        message = (
            f"order failed: GET http://127.0.0.1/api/v3/order?symbol=BTCUSDT&signature=abcdef0123"
            f"456789 key {secret}"
        )
        await _alert(live, message=message)
        text = (await live.client.get("/api/dashboard")).text
        assert secret not in text
        assert "abcdef0123456789" not in text
        assert "order failed" in text
    finally:
        forget_secrets()


async def test_html_in_alert_titles_is_returned_as_plain_data(live: Live) -> None:
    title = "<img src=x onerror=alert(1)>"
    await _alert(live, title=title)
    alerts = (await live.client.get("/api/alerts")).json()["alerts"]
    assert alerts[0]["title"] == title


async def test_page_and_assets_are_served_with_a_strict_csp(live: Live) -> None:
    r = await live.client.get("/")
    assert r.status_code == 200 and "otel_botmon" in r.text
    assert "script-src 'self'" in r.headers["content-security-policy"]
    for asset in ("/static/app.js", "/static/dom.js", "/static/charts.js", "/static/app.css"):
        assert (await live.client.get(asset)).status_code == 200
    assert "http://" not in r.text and "https://" not in r.text  # nothing from a CDN
    for page in ("/docs", "/redoc"):  # FastAPI's UIs would load from a CDN
        assert (await live.client.get(page)).status_code == 404


async def test_schema_declares_the_token_only_when_one_is_set(
    live: Live, live_token: Live,
) -> None:
    open_schema = (await live.client.get("/openapi.json")).json()
    guarded_schema = (await live_token.client.get(
        "/openapi.json", headers={"authorization": f"Bearer {TOKEN}"})).json()
    ack = "/api/alerts/{alert_id}/acknowledge"
    assert "security" not in open_schema["paths"][ack]["post"]
    for path, method in [(ack, "post"), ("/api/status", "get"), ("/api/dashboard", "get")]:
        assert guarded_schema["paths"][path][method]["security"]
        assert "401" in guarded_schema["paths"][path][method]["responses"]


async def test_unsupported_method_is_405_with_allow(live: Live) -> None:
    r = await live.client.delete("/api/status")
    assert r.status_code == 405 and r.json()["error"] == "method_not_allowed"
    assert "GET" in r.headers["allow"]


async def test_alert_detail_lists_its_events(live: Live) -> None:
    alert_id = await _alert(live)
    await live.client.post(f"/api/alerts/{alert_id}/acknowledge", json={"user": "ann"})
    body = (await live.client.get(f"/api/alerts/{alert_id}")).json()
    assert body["alert"]["id"] == alert_id
    kinds = [e["kind"] for e in body["events"]]
    assert "fired" in kinds and "acknowledged" in kinds
    missing = await live.client.get("/api/alerts/nope")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"


async def test_client_gone_mid_body_logs_no_traceback(live: Live) -> None:
    import logging

    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.ERROR)
    handler.emit = records.append  # type: ignore[method-assign]
    logging.getLogger("uvicorn.error").addHandler(handler)  # uvicorn's loggers do not propagate
    try:
        await _send_half_requests(live)
    finally:
        logging.getLogger("uvicorn.error").removeHandler(handler)
    assert not records, [r.getMessage() for r in records]


async def _send_half_requests(live: Live) -> None:
    alert_id = await _alert(live)
    for _ in range(3):
        _reader, writer = await asyncio.open_connection("127.0.0.1", live.dashboard.port)
        writer.write(
            f"POST /api/alerts/{alert_id}/acknowledge HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"user\"".encode()
        )
        await writer.drain()
        writer.close()
        await writer.wait_closed()
    # the server is still fine, and said nothing about the clients that left
    assert (await live.client.get("/api/status")).status_code == 200
    assert live.monitor.get_alert(alert_id)["acknowledged"] is False


async def test_silences_are_created_listed_and_expired(live: Live) -> None:
    r = await live.client.post("/api/silences", json={
        "matchers": ['alertname="Custom Trading Alert"'], "duration_s": 600, "comment": "c"})
    assert r.status_code == 201, r.text
    silence = r.json()["silence"]
    assert silence["created_by"] == "dashboard" and silence["state"] == "active"
    listed = (await live.client.get("/api/silences")).json()
    assert [s["id"] for s in listed["silences"]] == [silence["id"]]
    for bad in ({"matchers": ["no operator"], "duration_s": 60},
                {"matchers": [], "duration_s": 60}, {"matchers": ["a=b"], "duration_s": 0}):
        assert (await live.client.post("/api/silences", json=bad)).status_code == 422
    r = await live.client.post(f"/api/silences/{silence['id']}/expire")
    assert r.status_code == 200 and r.json()["silence"]["state"] == "expired"
    assert (await live.client.get("/api/silences")).json()["count"] == 0
    r = await live.client.post(f"/api/silences/{silence['id']}/expire")
    assert r.status_code == 404 and r.json()["error"] == "not_found"


async def test_a_taken_port_is_a_clear_error_and_the_bot_carries_on(live: Live) -> None:
    port = live.dashboard.port  # taken by the running dashboard
    second = MonitoringDashboard(live.monitor, port=port)
    with pytest.raises(OSError, match=rf"127\.0\.0\.1:{port}.*in use.*port=0") as info:
        await second.start()
    assert info.value.errno is not None
    assert not second.running
    await _alert(live, title="still monitored")
    assert (await live.client.get("/api/status")).json()["active_alerts"] == 1
    await second.stop()  # stopping one that never started is fine


_GOOD_SILENCE: dict[str, object] = {"matchers": ['alertname="x"'], "duration_s": 60}
_WRONG_TYPES: list[tuple[str, str]] = [
    ("duration_s", "true"), ("duration_s", '"60"'), ("duration_s", "NaN"),
    ("duration_s", "Infinity"), ("duration_s", "-Infinity"), ("duration_s", "[60]"),
    ("starts_at", "false"), ("starts_at", '"1700000000"'), ("starts_at", "NaN"),
    ("comment", "5"), ("created_by", "true"), ("matchers", '["a=\\"b\\"", 5]'),
    ("matchers", '{"a": "b"}'),
]


@pytest.mark.parametrize(("field", "raw"), _WRONG_TYPES)
async def test_a_silence_field_of_the_wrong_type_is_refused_by_name(
    live: Live, field: str, raw: str,
) -> None:
    import json

    fields = {k: json.dumps(v) for k, v in _GOOD_SILENCE.items()} | {field: raw}
    body = "{" + ",".join(f'"{k}":{v}' for k, v in fields.items()) + "}"
    r = await live.client.post("/api/silences", content=body,
                               headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert any(e["loc"][:2] == ["body", field] for e in detail), detail
    assert "less than" not in r.text  # NaN is not "too big": it is not a number
    assert (await live.client.get("/api/silences")).json()["count"] == 0


@pytest.mark.parametrize("raw", ["true", "5", "NaN"])
async def test_an_acknowledgement_with_a_wrong_type_changes_nothing(live: Live, raw: str) -> None:
    alert_id = await _alert(live)
    for path in ("acknowledge", "resolve"):
        r = await live.client.post(f"/api/alerts/{alert_id}/{path}", content='{"user":' + raw + "}",
                                   headers={"content-type": "application/json"})
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "user"]
    alert = live.monitor.get_alert(alert_id)
    assert alert is not None and alert["state"] == "firing" and not alert["acknowledged"]
