"""The dashboard's trading views: rate-limit rows, P&L by symbol, recent trades."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from otel_botmon import conventions as conv
from otel_botmon import telemetry as botmon_telemetry
from otel_botmon.instrument.trading import record_position_closed, trade
from otel_botmon.observe.trading_view import read_trading_view, recent_trades_for

UTILIZATION = conv.MetricSpec(
    "botmon.exchange.ratelimit.utilization", conv.InstrumentKind.GAUGE, "1", "share used",
    (conv.EXCHANGE_NAME, "ratelimit.budget", conv.RATELIMIT_INTERVAL),
)


def test_rate_limits_from_todays_used_gauge_and_the_utilization_gauge(telemetry: Any) -> None:
    used = botmon_telemetry.instrument(conv.EXCHANGE_RATELIMIT_USED)
    used.set(600, {conv.EXCHANGE_NAME: "binance", conv.RATELIMIT_INTERVAL: "1m",
                   conv.RATELIMIT_KIND: "weight"})
    used.set(3, {conv.EXCHANGE_NAME: "binance", conv.RATELIMIT_INTERVAL: "10s",
                 conv.RATELIMIT_KIND: "orders"})
    view = read_trading_view(telemetry.metric_reader.get_metrics_data())
    rows = {(r["interval"]): r for r in view["rate_limits"]}
    assert rows["1m"]["used"] == 600 and rows["1m"]["utilization"] is None
    assert rows["10s"]["orders"] == 3
    util = botmon_telemetry.instrument(UTILIZATION)
    util.set(0.93, {conv.EXCHANGE_NAME: "binance", "ratelimit.budget": "usdm",
                    conv.RATELIMIT_INTERVAL: "1m"})
    view = read_trading_view(telemetry.metric_reader.get_metrics_data())
    first = view["rate_limits"][0]  # the most used first
    assert (first["exchange"], first["budget"], first["utilization"]) == ("binance", "usdm", 0.93)


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
    recent = recent_trades_for(telemetry.tel.tracer_provider)
    assert recent_trades_for(telemetry.tel.tracer_provider) is recent  # one per provider
    for n in range(3):
        with trade(symbol="BTCUSDT", side="BUY", quantity=0.5, price=100.0) as t:
            t.filled(price=100.0 + n, quantity=0.5)
    rows = recent.snapshot(2)
    assert [r["price"] for r in rows] == [102.0, 101.0]
    assert rows[0]["symbol"] == "BTCUSDT" and rows[0]["side"] == "BUY"
    assert rows[0]["quantity"] == 0.5 and rows[0]["outcome"] == "filled"
    assert rows[0]["slippage_bp"] > 0  # bought above the requested price: adverse
    assert rows[0]["latency_ms"] is not None and rows[0]["latency_ms"] >= 0
