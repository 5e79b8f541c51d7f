"""with trade(...) as t / async with: fills, slippage, partials, rejections, errors."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from opentelemetry.trace import StatusCode

from otel_botmon import conventions as conv
from otel_botmon import telemetry as botmon_telemetry
from otel_botmon.instrument.trading import slippage_bp, trade

BTC_BUY = {conv.TRADING_SYMBOL: "BTCUSDT", conv.TRADING_SIDE: "BUY"}
BTC_SELL = {conv.TRADING_SYMBOL: "BTCUSDT", conv.TRADING_SIDE: "SELL"}
ADVERSE = {conv.TRADING_SLIPPAGE_DIRECTION: "adverse"}
FAVORABLE = {conv.TRADING_SLIPPAGE_DIRECTION: "favorable"}


def test_fill_above_requested_price_on_buy_is_positive_slippage(
    telemetry: Any, metrics: Any
) -> None:
    with trade(symbol="BTCUSDT", side="BUY", quantity=0.001, price=45000.0) as t:
        t.filled(price=45045.0, quantity=0.001)

    (span,) = telemetry.spans()
    assert span.name == "trade BTCUSDT"
    assert span.attributes[conv.TRADING_SLIPPAGE_BP] == pytest.approx(10.0)
    assert span.attributes[conv.TRADING_FILL_PRICE] == 45045.0
    slippage = metrics.metric_point("botmon.trade.slippage", {**BTC_BUY, **ADVERSE})
    assert (slippage.count, slippage.sum) == (1, pytest.approx(10.0))
    assert metrics.metric_point("botmon.trade.notional", BTC_BUY).value == pytest.approx(45.045)
    filled = {**BTC_BUY, conv.TRADING_OUTCOME: "filled"}
    assert metrics.metric_point("botmon.trades", filled).value == 1


def test_fill_below_requested_price_on_sell_is_positive_slippage(
    telemetry: Any, metrics: Any
) -> None:
    with trade(symbol="BTCUSDT", side="SELL", quantity=1, price=100.0) as t:
        t.filled(price=99.0)

    slippage = metrics.metric_point("botmon.trade.slippage", {**BTC_SELL, **ADVERSE})
    assert slippage.sum == pytest.approx(100.0)


def test_favorable_fill_is_recorded_as_magnitude_with_its_direction(
    telemetry: Any, metrics: Any
) -> None:
    with trade(symbol="BTCUSDT", side="BUY", quantity=1, price=100.0) as t:
        t.filled(price=99.0)
    with trade(symbol="BTCUSDT", side="BUY", quantity=1, price=100.0) as t:
        t.filled(price=100.0)

    assert metrics.metric_point("botmon.trade.slippage", {**BTC_BUY, **FAVORABLE}).sum == (
        pytest.approx(100.0)
    )
    none = {**BTC_BUY, conv.TRADING_SLIPPAGE_DIRECTION: "none"}
    assert metrics.metric_point("botmon.trade.slippage", none).count == 1
    first, _ = telemetry.spans()
    assert first.attributes[conv.TRADING_SLIPPAGE_BP] == pytest.approx(-100.0)


@pytest.mark.parametrize(
    ("side", "requested", "filled", "expected"),
    [
        ("BUY", 100.0, 101.0, 100.0),
        ("BUY", 100.0, 99.0, -100.0),
        ("SELL", 100.0, 101.0, -100.0),
        ("SELL", 100.0, 99.5, 50.0),
        ("BUY", 100.0, 100.0, 0.0),
        (None, 100.0, 101.0, None),
        ("BUY", 0.0, 1.0, None),
    ],
)
def test_slippage_sign_and_size(
    side: str | None, requested: float, filled: float, expected: float | None
) -> None:
    got = slippage_bp(side, requested, filled)
    assert got == (None if expected is None else pytest.approx(expected))


def test_fill_below_requested_quantity_is_partial(telemetry: Any, metrics: Any) -> None:
    with trade(symbol="BTCUSDT", side="BUY", quantity=2.0, price=10.0) as t:
        t.filled(quantity=0.5)
        t.filled(price=11.0, quantity=0.5)

    partial = {**BTC_BUY, conv.TRADING_OUTCOME: "partial"}
    assert metrics.metric_point("botmon.trades", partial).value == 1
    assert metrics.metric_point("botmon.trade.volume", BTC_BUY).value == pytest.approx(1.0)
    assert metrics.metric_point("botmon.trade.notional", BTC_BUY).value == pytest.approx(10.5)
    # one fill had no price of its own: no slippage claim from a mixed average
    assert metrics.metric_attribute_sets("botmon.trade.slippage") == []
    (span,) = telemetry.spans()
    assert span.attributes[conv.TRADING_FILL_PRICE] == pytest.approx(10.5)


def test_several_fills_adding_up_to_the_quantity_are_filled_at_their_average(
    telemetry: Any, metrics: Any
) -> None:
    with trade(symbol="BTCUSDT", side="BUY", quantity=2.0, price=100.0) as t:
        t.filled(price=100.0, quantity=1.0)
        t.filled(price=102.0, quantity=1.0)

    (span,) = telemetry.spans()
    assert span.attributes[conv.TRADING_OUTCOME] == "filled"
    assert span.attributes[conv.TRADING_FILL_PRICE] == pytest.approx(101.0)
    assert metrics.metric_point("botmon.trade.slippage", {**BTC_BUY, **ADVERSE}).sum == (
        pytest.approx(100.0)
    )


def test_rejection_counts_no_volume_and_keeps_the_reason_on_the_span(
    telemetry: Any, metrics: Any
) -> None:
    with trade(symbol="BTCUSDT", side="BUY", quantity=1.0, price=10.0) as t:
        t.rejected("insufficient balance")

    rejected = {**BTC_BUY, conv.TRADING_OUTCOME: "rejected"}
    assert metrics.metric_point("botmon.trades", rejected).value == 1
    assert metrics.metric_attribute_sets("botmon.trade.volume") == []
    (span,) = telemetry.spans()
    assert span.attributes[conv.TRADING_REJECT_REASON] == "insufficient balance"
    assert span.status.status_code is StatusCode.UNSET


def test_reject_reason_is_redacted(telemetry: Any) -> None:
    error = "HTTP 400 for https://api.binance.com/api/v3/order?symbol=X&signature=deadbeef99"
    with trade(symbol="BTCUSDT") as t:
        t.rejected(error)

    (span,) = telemetry.spans()
    assert "deadbeef99" not in span.attributes[conv.TRADING_REJECT_REASON]
    assert "signature=REDACTED" in span.attributes[conv.TRADING_REJECT_REASON]


def test_body_without_a_report_is_filled_at_the_requested_values(
    telemetry: Any, metrics: Any
) -> None:
    with trade(symbol="BTCUSDT", side="BUY", quantity=3, price=2.0):
        pass

    assert metrics.metric_point("botmon.trade.volume", BTC_BUY).value == 3.0
    assert metrics.metric_point("botmon.trade.notional", BTC_BUY).value == 6.0
    assert metrics.metric_attribute_sets("botmon.trade.slippage") == []


def test_exception_in_block_is_reraised_and_recorded(telemetry: Any, metrics: Any) -> None:
    with pytest.raises(RuntimeError, match="order refused"):
        with trade(symbol="BTCUSDT", side="BUY"):
            raise RuntimeError("order refused")

    (span,) = telemetry.spans()
    assert span.status.status_code is StatusCode.ERROR
    error = {**BTC_BUY, conv.TRADING_OUTCOME: "error", conv.ERROR_TYPE: "RuntimeError"}
    assert metrics.metric_point("botmon.trades", error).value == 1


async def test_async_with_records_the_trade(telemetry: Any, metrics: Any) -> None:
    async with trade(symbol="BTCUSDT", side="SELL", quantity=1.0, price=50.0) as t:
        await asyncio.sleep(0)
        t.filled(price=49.5)

    assert metrics.metric_point("botmon.trade.slippage", {**BTC_SELL, **ADVERSE}).sum == (
        pytest.approx(100.0)
    )


async def test_one_scope_entered_by_concurrent_tasks_keeps_calls_apart(
    telemetry: Any, metrics: Any
) -> None:
    scope = trade(symbol="BTCUSDT", side="BUY", quantity=1.0, price=100.0)
    gate = asyncio.Event()

    async def task(fill_price: float) -> None:
        async with scope as t:
            await gate.wait()
            t.filled(price=fill_price)

    tasks = [asyncio.create_task(task(p)) for p in (101.0, 99.0)]
    await asyncio.sleep(0)
    gate.set()
    await asyncio.gather(*tasks)

    spans = telemetry.spans()
    assert sorted(s.attributes[conv.TRADING_FILL_PRICE] for s in spans) == [99.0, 101.0]
    assert len({s.context.span_id for s in spans}) == 2
    adverse = metrics.metric_point("botmon.trade.slippage", {**BTC_BUY, **ADVERSE})
    favorable = metrics.metric_point("botmon.trade.slippage", {**BTC_BUY, **FAVORABLE})
    assert (adverse.sum, favorable.sum) == (pytest.approx(100.0), pytest.approx(100.0))


def test_one_scope_used_from_threads_records_each_call(telemetry: Any, metrics: Any) -> None:
    scope = trade(symbol="BTCUSDT", side="BUY")
    barrier = threading.Barrier(4)

    def work() -> None:
        barrier.wait()
        for _ in range(25):
            with scope:
                pass

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(telemetry.spans()) == 100
    filled = {**BTC_BUY, conv.TRADING_OUTCOME: "filled"}
    assert metrics.metric_point("botmon.trades", filled).value == 100


def test_trades_follow_a_reconfigured_pipeline(telemetry: Any) -> None:
    with trade(symbol="BTCUSDT"):
        pass
    telemetry.telemetry.shutdown()
    fresh = botmon_telemetry.configure("other-bot", set_global=False)

    with trade(symbol="ETHUSDT"):
        pass

    data = fresh.metric_reader.get_metrics_data()
    points = [
        dict(p.attributes)
        for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics
        if m.name == "botmon.trades" for p in m.data.data_points
    ]
    assert points == [{conv.TRADING_SYMBOL: "ETHUSDT", conv.TRADING_OUTCOME: "filled"}]
