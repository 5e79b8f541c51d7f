"""The seed's record_trade_execution and record_position_closed; record_realized_pnl."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otel_botmon import conventions as conv
from otel_botmon.instrument.trading import (
    record_position_closed,
    record_realized_pnl,
    record_trade_execution,
)
from otel_botmon.testing import capture

BTC_BUY = {conv.TRADING_SYMBOL: "BTCUSDT", conv.TRADING_SIDE: "BUY"}


def test_record_trade_execution_takes_the_guides_keywords_and_milliseconds(
    telemetry: Any, metrics: Any
) -> None:
    record_trade_execution(
        symbol="BTCUSDT", side="BUY", quantity=0.001, price=45000.0, execution_time=250.0
    )

    filled = {**BTC_BUY, conv.TRADING_OUTCOME: "filled"}
    duration = metrics.metric_point("botmon.trade.duration", filled)
    assert (duration.count, duration.sum) == (1, pytest.approx(0.25, abs=0.001))
    assert metrics.metric_point("botmon.trades", filled).value == 1
    assert metrics.metric_point("botmon.trade.volume", BTC_BUY).value == pytest.approx(0.001)
    assert metrics.metric_point("botmon.trade.notional", BTC_BUY).value == pytest.approx(45.0)


def test_record_trade_execution_span_lasts_the_execution_time(telemetry: Any) -> None:
    record_trade_execution("BTCUSDT", "BUY", 0.001, 45000.0, 1500.0)  # positional, as the guide

    (span,) = telemetry.spans()
    assert span.name == "trade BTCUSDT"
    assert (span.end_time - span.start_time) / 1e9 == pytest.approx(1.5, abs=0.01)
    assert span.attributes[conv.TRADING_OUTCOME] == "filled"


@settings(max_examples=60, deadline=None)
@given(millis=st.floats(min_value=0.0, max_value=1e7, allow_nan=False, allow_infinity=False)
       | st.sampled_from([250.0, 1000.0, 2000.0, 5000.0]))
def test_record_trade_execution_records_the_given_time_exactly(millis: float) -> None:
    # The guide's `execution_time` is the duration: recording it must not add the time
    # spent recording (a 2000 ms trade landed in the (2 s, 5 s] bucket and fired the
    # seed's "Trading Execution Slow: > 2000ms" rule).
    with capture() as cap:
        record_trade_execution("BTCUSDT", "BUY", 0.001, 45000.0, millis)
        point = cap.metric_point(
            "botmon.trade.duration", {**BTC_BUY, conv.TRADING_OUTCOME: "filled"})
        assert (point.count, point.sum) == (1, millis / 1000.0)
        bucket = next(i for i, b in enumerate(point.explicit_bounds) if millis / 1000.0 <= b) \
            if millis / 1000.0 <= point.explicit_bounds[-1] else len(point.explicit_bounds)
        assert point.bucket_counts[bucket] == 1
        (span,) = cap.spans()
        assert span.end_time - span.start_time == int(millis * 1_000_000)


def test_record_trade_execution_with_bad_time_counts_the_trade_without_duration(
    telemetry: Any, metrics: Any, caplog: pytest.LogCaptureFixture
) -> None:
    record_trade_execution("BTCUSDT", "BUY", 1.0, 10.0, execution_time="slow")
    record_trade_execution("BTCUSDT", "BUY", 1.0, 10.0, execution_time=-5.0)

    filled = {**BTC_BUY, conv.TRADING_OUTCOME: "filled"}
    assert metrics.metric_point("botmon.trades", filled).value == 2
    assert metrics.metric_attribute_sets("botmon.trade.duration") == []
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert "execution_time" in warnings[0].getMessage()


def test_positions_feed_realized_pnl_and_win_rate(telemetry: Any, metrics: Any) -> None:
    for pnl in (12.5, -4.0, 7.5, 0.0):
        record_position_closed(symbol="BTCUSDT", pnl=pnl)

    btc = {conv.TRADING_SYMBOL: "BTCUSDT"}
    assert metrics.metric_point("botmon.pnl.realized", btc).value == pytest.approx(16.0)

    def closed(result: str) -> float:
        attrs = {**btc, conv.TRADING_RESULT: result}
        return float(metrics.metric_point("botmon.positions.closed", attrs).value)

    wins, losses, even = closed("win"), closed("loss"), closed("breakeven")
    assert (wins, losses, even) == (2, 1, 1)
    assert wins / (wins + losses + even) == 0.5


def test_non_numeric_pnl_records_nothing_and_warns(
    telemetry: Any, metrics: Any, caplog: pytest.LogCaptureFixture
) -> None:
    record_position_closed("BTCUSDT", pnl=None)

    assert metrics.metric_attribute_sets("botmon.positions.closed") == []
    assert [r.levelno for r in caplog.records] == [logging.WARNING]


_MONEY = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


@settings(max_examples=80, deadline=None)
@given(partials=st.lists(_MONEY, max_size=5), last=_MONEY)
def test_partial_exits_show_pnl_at_once_and_the_close_counts_once(
    partials: list[float], last: float,
) -> None:
    # A position sold in parts: each part's P&L is visible when it is realized, the
    # position is counted once at the close, with its result from the whole P&L.
    btc = {conv.TRADING_SYMBOL: "BTCUSDT"}
    with capture() as cap:
        for n, part in enumerate(partials, 1):
            record_realized_pnl("BTCUSDT", part)
            assert cap.metric_point("botmon.pnl.realized", btc).value == pytest.approx(
                sum(partials[:n]), abs=1e-6)
            assert cap.metric_attribute_sets("botmon.positions.closed") == []
        total = sum(partials) + last
        record_position_closed("BTCUSDT", total, already_recorded=sum(partials))

        assert cap.metric_point("botmon.pnl.realized", btc).value == pytest.approx(total, abs=1e-6)
        result = "win" if total > 0 else "loss" if total < 0 else "breakeven"
        (closed,) = cap.metric_attribute_sets("botmon.positions.closed")
        assert closed == {**btc, conv.TRADING_RESULT: result}
        assert cap.metric_point("botmon.positions.closed", closed).value == 1


def test_bad_partial_pnl_or_already_recorded_warns_and_never_counts_twice(
    telemetry: Any, metrics: Any, caplog: pytest.LogCaptureFixture
) -> None:
    record_realized_pnl("BTCUSDT", pnl="lots")
    assert metrics.metric_attribute_sets("botmon.pnl.realized") == []
    record_realized_pnl("BTCUSDT", pnl=4.0)
    record_position_closed("BTCUSDT", pnl=10.0, already_recorded=object())

    btc = {conv.TRADING_SYMBOL: "BTCUSDT"}
    # The position counts; P&L that may already be in the counter is not added again.
    assert metrics.metric_point("botmon.pnl.realized", btc).value == pytest.approx(4.0)
    win = {**btc, conv.TRADING_RESULT: "win"}
    assert metrics.metric_point("botmon.positions.closed", win).value == 1
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(messages) == 2
    assert "pnl" in messages[0] and "already_recorded" in messages[1]
