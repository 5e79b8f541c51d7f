"""The dashboard's trading views: rate-limit rows, P&L by symbol, recent trades."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otel_botmon import conventions as conv
from otel_botmon import telemetry as botmon_telemetry
from otel_botmon.instrument.ratelimit import record_ratelimit_headers
from otel_botmon.instrument.trading import record_position_closed, trade
from otel_botmon.observe.trading_view import read_trading_view, recent_trades_for

LEGACY_USED = conv.MetricSpec(  # the single gauge split by ratelimit.kind of earlier releases
    "botmon.exchange.ratelimit.used", conv.InstrumentKind.GAUGE, "{weight}", "used",
    (conv.EXCHANGE_NAME, conv.RATELIMIT_INTERVAL, "ratelimit.kind"),
)


def test_rate_limits_from_the_exchange_headers(telemetry: Any) -> None:
    record_ratelimit_headers({"x-mbx-used-weight-1m": "5700", "x-mbx-order-count-10s": "3"},
                             exchange="binance")
    view = read_trading_view(telemetry.metric_reader.get_metrics_data())
    rows = {(r["budget"], r["interval"]): r for r in view["rate_limits"]}
    weight, orders = rows[("spot", "1m")], rows[("spot", "10s")]
    assert weight["used"] == 5700 and weight["utilization"] == pytest.approx(0.95)
    assert orders["orders"] == 3 and orders["utilization"] is not None
    assert view["rate_limits"][0] is weight  # the most used first
    assert weight["retry_after"] is None and len(view["rate_limits"]) == 2
    record_ratelimit_headers({"retry-after": "30", "x-mbx-used-weight-1m": "6000"},
                             exchange="binance", status_code=429)
    view = read_trading_view(telemetry.metric_reader.get_metrics_data())
    assert len(view["rate_limits"]) == 2  # Retry-After shows on the budget's rows
    assert {r["retry_after"] for r in view["rate_limits"]} == {30.0}


def test_rate_limits_from_the_earlier_single_gauge(telemetry: Any) -> None:
    used = botmon_telemetry.instrument(LEGACY_USED)
    used.set(600, {conv.EXCHANGE_NAME: "binance", conv.RATELIMIT_INTERVAL: "1m",
                   "ratelimit.kind": "weight"})
    used.set(3, {conv.EXCHANGE_NAME: "binance", conv.RATELIMIT_INTERVAL: "10s",
                 "ratelimit.kind": "orders"})
    view = read_trading_view(telemetry.metric_reader.get_metrics_data())
    rows = {r["interval"]: r for r in view["rate_limits"]}
    assert rows["1m"]["used"] == 600 and rows["1m"]["utilization"] is None
    assert rows["10s"]["orders"] == 3


def test_nothing_recorded_gives_empty_views(telemetry: Any) -> None:
    assert read_trading_view(None) == {"rate_limits": [], "pnl_by_symbol": []}
    view = read_trading_view(telemetry.metric_reader.get_metrics_data())
    assert view["rate_limits"] == []


@settings(max_examples=20, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["BTCUSDT", "ETHUSDT", "SOLUSDT"]),
                          st.floats(-1000, 1000, allow_nan=False)), max_size=15))
def test_pnl_by_symbol_sums_to_the_total(closes: list[tuple[str, float]]) -> None:
    tel = botmon_telemetry.configure("pnl-test", set_global=False)
    try:
        for symbol, pnl in closes:
            record_position_closed(symbol, pnl)
        view = read_trading_view(tel.metric_reader.get_metrics_data())
        by_symbol = {row["symbol"]: row["pnl"] for row in view["pnl_by_symbol"]}
        for symbol in {s for s, _ in closes}:
            expected = sum(p for s, p in closes if s == symbol)
            assert abs(by_symbol[symbol] - expected) <= 1e-6 * max(1.0, abs(expected))
        assert [r["pnl"] for r in view["pnl_by_symbol"]] == sorted(by_symbol.values())
    finally:
        tel.shutdown()


def test_recent_trades_keep_the_newest_first_with_fill_and_outcome(telemetry: Any) -> None:
    recent = recent_trades_for(telemetry.telemetry.tracer_provider)
    assert recent_trades_for(telemetry.telemetry.tracer_provider) is recent  # one per provider
    for n in range(3):
        with trade(symbol="BTCUSDT", side="BUY", quantity=0.5, price=100.0) as t:
            t.filled(price=100.0 + n, quantity=0.5)
    rows = recent.snapshot(2)
    assert [r["price"] for r in rows] == [102.0, 101.0]
    assert rows[0]["symbol"] == "BTCUSDT" and rows[0]["side"] == "BUY"
    assert rows[0]["quantity"] == 0.5 and rows[0]["outcome"] == "filled"
    assert rows[0]["slippage_bp"] > 0  # bought above the requested price: adverse
    assert rows[0]["latency_ms"] is not None and rows[0]["latency_ms"] >= 0


def test_a_remaining_only_rate_limit_has_its_row(telemetry: Any) -> None:
    """HTX sends only what is left of an endpoint: the dashboard had no row for it (the
    remaining gauge was not read), so a budget about to run out was not shown at all."""
    record_ratelimit_headers({"X-HB-RateLimit-Requests-Remain": "3"}, exchange="htx",
                             path="/v1/order/orders/place")
    view = read_trading_view(telemetry.metric_reader.get_metrics_data())
    assert [(r["exchange"], r["remaining"], r["used"]) for r in view["rate_limits"]] == [
        ("htx", 3.0, None)]
