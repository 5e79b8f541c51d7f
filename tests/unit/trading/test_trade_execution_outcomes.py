"""record_trade_execution's requested_price, order_type and outcome."""

from __future__ import annotations

import pytest

from otel_botmon import conventions as conv
from otel_botmon.instrument.trading import record_trade_execution
from otel_botmon.testing import TelemetryCapture

BTC_SELL = {conv.TRADING_SYMBOL: "BTCUSDT", conv.TRADING_SIDE: "SELL"}


def test_requested_price_gives_slippage_and_order_type_is_a_label(
    capture_telemetry: TelemetryCapture,
) -> None:
    record_trade_execution(
        "BTCUSDT", "sell", 0.5, 44955.0, 120.0, requested_price=45000.0, order_type="market"
    )

    span = capture_telemetry.span("trade BTCUSDT")
    attrs = span.attributes or {}
    assert attrs[conv.TRADING_PRICE] == 45000.0 and attrs[conv.TRADING_FILL_PRICE] == 44955.0
    assert attrs[conv.TRADING_SLIPPAGE_BP] == pytest.approx(10.0)  # SELL below: adverse
    filled = {**BTC_SELL, conv.TRADING_ORDER_TYPE: "MARKET", conv.TRADING_OUTCOME: "filled"}
    assert capture_telemetry.metric_point("botmon.trades", filled).value == 1
    assert capture_telemetry.metric_point(
        "botmon.trade.slippage", {**BTC_SELL, conv.TRADING_SLIPPAGE_DIRECTION: "adverse"}
    ).sum == pytest.approx(10.0)
    assert capture_telemetry.metric_value("botmon.trade.notional") == pytest.approx(
        0.5 * 44955.0
    )


def test_without_requested_price_there_is_no_slippage(
    capture_telemetry: TelemetryCapture,
) -> None:
    record_trade_execution("BTCUSDT", "SELL", 0.5, 44955.0, 120.0)
    assert capture_telemetry.metric_points("botmon.trade.slippage") == []


@pytest.mark.parametrize("outcome", ["rejected", "canceled", "expired", "error"])
def test_an_unfilled_outcome_records_no_volume(
    capture_telemetry: TelemetryCapture, outcome: str
) -> None:
    record_trade_execution("BTCUSDT", "SELL", 0.5, 45000.0, 10.0, outcome=outcome.upper())
    assert capture_telemetry.metric_value("botmon.trades", trading_outcome=outcome) == 1
    assert capture_telemetry.metric_value("botmon.trade.volume") == 0
    assert capture_telemetry.metric_count("botmon.trade.duration") == 1


def test_a_partial_outcome_records_the_quantity_as_filled(
    capture_telemetry: TelemetryCapture,
) -> None:
    record_trade_execution("BTCUSDT", "SELL", 0.2, 45000.0, 10.0, outcome="partial")
    assert capture_telemetry.metric_value("botmon.trades", trading_outcome="partial") == 1
    assert capture_telemetry.metric_value("botmon.trade.volume") == pytest.approx(0.2)


def test_an_unknown_outcome_is_warned_once_and_recorded_as_filled(
    capture_telemetry: TelemetryCapture, caplog: pytest.LogCaptureFixture
) -> None:
    for _ in range(3):
        record_trade_execution("BTCUSDT", "SELL", 0.2, 45000.0, 10.0, outcome="moon")
    assert capture_telemetry.metric_value("botmon.trades", trading_outcome="filled") == 3
    assert len([r for r in caplog.records if "outcome='moon'" in r.getMessage()]) == 1
