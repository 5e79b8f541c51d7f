"""What the bot reports, as the dashboard serves it: numbers JSON has no words for
(NaN, Infinity), values JSON has no type for, and secrets in health-check metrics.

Every response and every push must be JSON that a browser's ``JSON.parse`` reads (no
``NaN``/``Infinity`` tokens), never a 500, and never carry a secret.
"""

from __future__ import annotations

import datetime
import decimal
import json
import math
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.sync.client import connect

from otel_botmon.custom_metrics import Metric
from otel_botmon.monitor import MonitoringConfig
from otel_botmon.observe.health import HealthStatus
from otel_botmon.redaction import forget_secrets, is_sensitive_key, redact_text, register_secret
from tests.integration.dashboard.live_server import LiveDashboard

SECRET = "Sx9-live-key-7f3a2b1c9d"


def strict_json(text: str) -> Any:
    """Parse as a browser does: NaN, Infinity and -Infinity are not JSON."""

    def refuse(token: str) -> Any:
        raise ValueError(f"{token} is not JSON")

    return json.loads(text, parse_constant=refuse)


class Holder:
    """What the registered health check returns next."""

    metrics: Any = {}
    message = ""


@pytest.fixture(scope="module")
def live() -> Iterator[LiveDashboard]:
    config = MonitoringConfig(
        metrics_collection_interval=0.5, alert_check_interval=0.5, health_check_interval=60.0,
        default_alert_rules=False,
    )
    with LiveDashboard(config, start_monitor=False) as server:
        async def check(_: Any) -> dict[str, Any]:
            return {"status": HealthStatus.DEGRADED, "message": Holder.message,
                    "metrics": Holder.metrics}

        async def register() -> None:
            server.monitor.register_health_check("reported", check)

        server.call(register())
        yield server


def _all_views(live: LiveDashboard) -> dict[str, str]:
    """Every view that shows health: the REST answers and the WebSocket's snapshot."""
    texts: dict[str, str] = {}
    forced = httpx.post(f"{live.url}/api/health/check", timeout=30)
    assert forced.status_code == 200, forced.text
    texts["POST /api/health/check"] = forced.text
    for path in ("/api/health", "/api/dashboard", "/api/performance", "/api/status"):
        response = httpx.get(live.url + path, timeout=30)
        assert response.status_code == 200, (path, response.text)
        texts[path] = response.text
    with connect(f"ws://127.0.0.1:{live.dashboard.port}/ws", open_timeout=30) as ws:
        texts["ws"] = str(ws.recv(timeout=30))
    for where, text in texts.items():
        strict_json(text)  # raises on NaN/Infinity
        assert where  # every view answered
    return texts


_leaf = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.integers(), st.booleans(), st.none(),
    st.text(max_size=20), st.datetimes().map(lambda d: d),
    st.decimals(allow_nan=True, allow_infinity=True), st.just(object()),
)
_values = st.recursive(
    _leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.tuples(inner, inner),
        st.dictionaries(st.one_of(st.text(max_size=8), st.integers(), st.tuples(st.integers())),
                        inner, max_size=4),
    ),
    max_leaves=12,
)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.text(min_size=1, max_size=10), _values, max_size=5))
def test_any_health_metrics_give_parseable_json_everywhere(
    live: LiveDashboard, metrics: dict[str, Any],
) -> None:
    Holder.metrics, Holder.message = metrics, "ok"
    texts = _all_views(live)
    shown = strict_json(texts["/api/health"])["components"]["reported"]["metrics"]
    for key, value in metrics.items():
        if isinstance(value, float) and math.isfinite(value) and not is_sensitive_key(key):
            assert shown[redact_text(key)] == value  # numbers are shown as they are


def test_an_overflowing_custom_counter_is_served_as_null(live: LiveDashboard) -> None:
    collector = live.monitor.performance_monitor.metrics_collector
    collector.register_metric(Metric(name="huge_total", metric_type="counter"))
    for _ in range(2):
        collector.record_metric("huge_total", 1e308)  # the running sum becomes inf
    Holder.metrics, Holder.message = {"ratio": float("nan")}, "ok"
    texts = _all_views(live)
    summary = strict_json(texts["/api/performance"])["custom_metrics"]["huge_total"]
    assert summary["sum"] is None and summary["last"] == 1e308
    assert strict_json(texts["/api/dashboard"])["health"]["components"]["reported"][
        "metrics"] == {"ratio": None}


def test_secrets_in_health_metrics_are_redacted_everywhere(live: LiveDashboard) -> None:
    register_secret(SECRET)
    try:
        Holder.message = f"exchange said: key {SECRET}"
        Holder.metrics = {
            "api_key": "rawkey-0123456789",
            "endpoint": "https://api.exchange.test/api/v3/order?symbol=BTCUSDT&signature=abcdef0123456789",
            "last_error": f"401 for key {SECRET}",
            "nested": {"passphrase": "pp-0123456789", "items": [f"token={SECRET}"]},
            "when": datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC),
            "amount": decimal.Decimal("1.5"),
            "latency_ms": 12.5,
        }
        texts = _all_views(live)
        for where, text in texts.items():
            for leaked in (SECRET, "rawkey-0123456789", "abcdef0123456789", "pp-0123456789"):
                assert leaked not in text, (where, leaked)
        shown = strict_json(texts["/api/health"])["components"]["reported"]["metrics"]
        assert shown["api_key"] == "REDACTED"
        assert shown["nested"]["passphrase"] == "REDACTED"
        assert shown["latency_ms"] == 12.5
        assert shown["endpoint"].startswith("https://api.exchange.test/api/v3/order")
        assert shown["when"].startswith("2024-01-01")
    finally:
        forget_secrets()
