"""Orders that span callbacks: open_order now, order_filled / rejected / canceled later."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry import trace

import otel_botmon
from otel_botmon import conventions as conv
from otel_botmon.instrument import orders
from otel_botmon.instrument.orders import (
    expire_orders,
    open_order,
    open_order_count,
    order_canceled,
    order_filled,
    order_rejected,
    set_order_limits,
)
from otel_botmon.testing import TelemetryCapture, capture

BTC = {conv.TRADING_SYMBOL: "BTC/USDT", conv.TRADING_SIDE: "BUY"}


@pytest.fixture(autouse=True)
def _fresh_book() -> Iterator[None]:
    orders._BOOK.clear()
    yield
    orders._BOOK.clear()
    set_order_limits(max_open=10_000, ttl_s=24 * 3600.0)


def test_an_order_filled_in_another_thread_is_one_trade_with_its_real_duration(
    capture_telemetry: TelemetryCapture,
) -> None:
    opened_ns = time.time_ns()
    handle = open_order("42", "BTC/USDT", "buy", 0.5, 45000.0, "limit")
    assert handle.is_open and open_order_count() == 1
    before_fill_ns = time.time_ns()
    worker = threading.Thread(target=order_filled, args=(42, 45045.0, 0.5))  # int id too
    worker.start()
    worker.join()

    span = capture_telemetry.span("trade BTC/USDT")
    assert opened_ns <= span.start_time <= before_fill_ns  # started when it was opened
    assert span.end_time is not None and span.end_time >= before_fill_ns
    attrs = span.attributes or {}
    assert attrs[conv.TRADING_OUTCOME] == "filled"
    assert attrs[conv.TRADING_ORDER_TYPE] == "LIMIT"
    assert attrs[conv.TRADING_ORDER_ID] == "42"
    assert attrs[conv.TRADING_SLIPPAGE_BP] == pytest.approx(10.0)  # 45045 vs 45000, BUY
    filled = {**BTC, conv.TRADING_ORDER_TYPE: "LIMIT", conv.TRADING_OUTCOME: "filled"}
    assert capture_telemetry.metric_point("botmon.trades", filled).value == 1
    duration = capture_telemetry.metric_point("botmon.trade.duration", filled)
    assert duration.count == 1
    assert duration.sum == pytest.approx((span.end_time - span.start_time) / 1e9, abs=0.05)
    assert capture_telemetry.metric_value("botmon.trade.volume", BTC) == pytest.approx(0.5)
    assert capture_telemetry.metric_value("botmon.trade.notional", BTC) == pytest.approx(
        0.5 * 45045.0
    )
    assert capture_telemetry.metric_value(
        "botmon.trade.slippage", BTC, trading_slippage_direction="adverse"
    ) == pytest.approx(10.0)
    assert not handle.is_open and open_order_count() == 0


def test_partial_fills_add_up_to_one_filled_trade(capture_telemetry: TelemetryCapture) -> None:
    handle = open_order("a", "BTC/USDT", "BUY", 1.0, 100.0)
    handle.filled(price=100.0, quantity=0.4)
    assert handle.is_open  # 0.4 of 1.0: still open
    handle.filled(price=101.0, quantity=0.6)

    (span,) = capture_telemetry.spans()
    attrs = span.attributes or {}
    assert attrs[conv.TRADING_OUTCOME] == "filled"
    assert attrs[conv.TRADING_FILL_QUANTITY] == pytest.approx(1.0)
    assert attrs[conv.TRADING_FILL_PRICE] == pytest.approx(100.6)  # volume-weighted
    assert capture_telemetry.metric_value("botmon.trade.volume", BTC) == pytest.approx(1.0)


def test_cumulative_fill_reports_replace_the_earlier_ones(
    capture_telemetry: TelemetryCapture,
) -> None:
    open_order("c", "BTC/USDT", "BUY", 1.0, 100.0)
    order_filled("c", price=100.0, quantity=0.3, cumulative=True)
    order_filled("c", price=100.0, quantity=1.0, cumulative=True)  # the exchange's total
    assert capture_telemetry.metric_value("botmon.trade.volume", BTC) == pytest.approx(1.0)


def test_a_final_short_fill_and_a_cancel_after_a_fill_are_partial(
    capture_telemetry: TelemetryCapture,
) -> None:
    open_order(1, "BTC/USDT", "BUY", 1.0, 100.0)
    order_filled(1, 100.0, 0.25, final=True)
    open_order(2, "BTC/USDT", "BUY", 1.0, 100.0)
    order_filled(2, 100.0, 0.5)
    order_canceled(2, reason="unfilled timeout")

    partial = capture_telemetry.metric_points("botmon.trades", trading_outcome="partial")
    assert sum(p.value for p in partial) == 2
    assert capture_telemetry.metric_value("botmon.trade.volume", BTC) == pytest.approx(0.75)
    canceled = [s for s in capture_telemetry.spans() if (s.attributes or {}).get(
        conv.TRADING_ORDER_ID) == "2"]
    assert (canceled[0].attributes or {})[conv.TRADING_CANCEL_REASON] == "unfilled timeout"


def test_a_fill_price_without_any_quantity_still_gives_slippage(
    capture_telemetry: TelemetryCapture,
) -> None:
    open_order("q", "BTC/USDT", "BUY", price=100.0)  # quantity unknown
    order_filled("q", price=100.5)

    attrs = capture_telemetry.span("trade BTC/USDT").attributes or {}
    assert attrs[conv.TRADING_OUTCOME] == "filled"
    assert attrs[conv.TRADING_FILL_PRICE] == 100.5
    assert attrs[conv.TRADING_SLIPPAGE_BP] == pytest.approx(50.0)
    assert capture_telemetry.metric_value("botmon.trade.volume") == 0


def test_canceled_and_rejected_orders_record_no_fill(
    capture_telemetry: TelemetryCapture,
) -> None:
    open_order("x", "BTC/USDT", "BUY", 1.0, 100.0, "limit")
    open_order("y", "BTC/USDT", "BUY", 1.0, 100.0, "limit")
    order_canceled("x")
    order_rejected("y", reason="insufficient balance https://api.x/o?signature=abcdef0123")

    limit = {**BTC, conv.TRADING_ORDER_TYPE: "LIMIT"}
    trades = "botmon.trades"
    assert capture_telemetry.metric_point(trades, {**limit, "trading.outcome": "canceled"})
    assert capture_telemetry.metric_point(trades, {**limit, "trading.outcome": "rejected"})
    assert capture_telemetry.metric_value("botmon.trade.volume") == 0
    rejected = [s for s in capture_telemetry.spans()
                if (s.attributes or {})[conv.TRADING_OUTCOME] == "rejected"]
    reason = str((rejected[0].attributes or {})[conv.TRADING_REJECT_REASON])
    assert reason.startswith("insufficient balance") and "abcdef0123" not in reason


def test_orders_past_their_ttl_expire_and_nothing_stays_open(
    capture_telemetry: TelemetryCapture,
) -> None:
    for i in range(100):
        open_order(i, "BTC/USDT", "BUY", 1.0, 100.0)
    order_filled(0, 100.0, 0.5)  # a partial fill is kept when it expires
    set_order_limits(ttl_s=1e-9)  # every order opened so far is now past its TTL

    assert expire_orders() == 100
    assert open_order_count() == 0
    expired = capture_telemetry.metric_points("botmon.trades", trading_outcome="expired")
    assert sum(p.value for p in expired) == 100
    assert capture_telemetry.metric_value("botmon.trade.volume", BTC) == pytest.approx(0.5)
    assert {(s.attributes or {})[conv.TRADING_EXPIRED_BY] for s in capture_telemetry.spans()} \
        == {"ttl"}


def test_every_call_expires_a_bounded_batch_of_the_oldest(
    capture_telemetry: TelemetryCapture,
) -> None:
    for i in range(100):
        open_order(i, "BTC/USDT", "BUY", 1.0, 100.0)
    set_order_limits(ttl_s=1e-9)
    open_order("new", "BTC/USDT", "BUY", 1.0, 100.0)  # sweeps a batch as a side effect
    assert 100 - orders._SWEEP_PER_CALL < open_order_count() < 101


def test_a_fill_after_expiry_is_still_recorded_once(
    capture_telemetry: TelemetryCapture,
) -> None:
    open_order("slow", "BTC/USDT", "BUY", 1.0, 100.0)
    set_order_limits(ttl_s=1e-9)
    assert expire_orders() == 1
    order_filled("slow", price=101.0)  # the exchange filled it after all
    order_filled("slow", price=101.0)  # and a duplicate of that

    assert capture_telemetry.metric_value("botmon.trades", trading_outcome="expired") == 1
    assert capture_telemetry.metric_value("botmon.trades", trading_outcome="filled") == 1
    assert capture_telemetry.metric_value("botmon.trade.volume", BTC) == pytest.approx(1.0)
    late = capture_telemetry.spans()[-1]
    assert (late.attributes or {})[conv.TRADING_SLIPPAGE_BP] == pytest.approx(100.0)
    assert capture_telemetry.metric_value(
        "botmon.internal.errors", error_type="OrderAlreadyFinishedError"
    ) == 2


def test_the_oldest_order_is_evicted_past_the_cap(
    capture_telemetry: TelemetryCapture, caplog: pytest.LogCaptureFixture
) -> None:
    set_order_limits(max_open=2)
    for oid in ("first", "second", "third", "fourth"):
        open_order(oid, "BTC/USDT", "BUY", 1.0, 100.0)

    assert open_order_count() == 2
    evicted = capture_telemetry.spans()
    assert [(s.attributes or {})[conv.TRADING_ORDER_ID] for s in evicted] == ["first", "second"]
    assert all((s.attributes or {})[conv.TRADING_EXPIRED_BY] == "cap" for s in evicted)
    assert len([r for r in caplog.records if "open orders" in r.getMessage()]) == 1


def test_an_unknown_order_id_is_logged_once_counted_and_still_a_trade(
    capture_telemetry: TelemetryCapture, caplog: pytest.LogCaptureFixture
) -> None:
    order_filled("never-opened", price=100.0, quantity=2.0)
    order_filled("also-unknown", price=100.0, quantity=1.0)

    logged = [r for r in caplog.records if "unknown order id" in r.getMessage()]
    assert len(logged) == 1 and "'never-opened'" in logged[0].getMessage()
    assert capture_telemetry.metric_value(
        "botmon.internal.errors", botmon_component="orders", error_type="UnknownOrderError"
    ) == 2
    assert capture_telemetry.metric_value("botmon.trades", trading_outcome="filled") == 2
    assert capture_telemetry.metric_value("botmon.trade.volume") == pytest.approx(3.0)
    assert capture_telemetry.metric_points("botmon.trade.duration") == []  # no start known


def test_a_duplicate_fill_is_reported_and_not_counted_twice(
    capture_telemetry: TelemetryCapture,
) -> None:
    open_order("d", "BTC/USDT", "BUY", 1.0, 100.0)
    order_filled("d", 100.0, 1.0)
    order_filled("d", 100.0, 1.0)  # the exchange's websocket and a poll both saw it
    order_canceled("d")

    assert capture_telemetry.metric_value("botmon.trades") == 1
    assert capture_telemetry.metric_value(
        "botmon.internal.errors", error_type="OrderAlreadyFinishedError"
    ) == 2


def test_bad_input_never_raises(capture_telemetry: TelemetryCapture) -> None:
    handle = open_order(None, object(), "buy", "lots", float("nan"), 7)
    handle.filled(price="cheap", quantity=object())
    order_filled(object())
    order_rejected(None, reason=object())
    order_canceled(["not", "hashable"])
    assert open_order_count() == 0
    with pytest.raises(ValueError):
        set_order_limits(max_open=0)  # a configuration error is the caller's to fix


def test_the_span_joins_the_trace_the_order_was_opened_in(
    capture_telemetry: TelemetryCapture,
) -> None:
    tracer = capture_telemetry.telemetry.tracer_provider.get_tracer("bot")
    with tracer.start_as_current_span("strategy tick") as tick:
        open_order("p", "BTC/USDT", "BUY", 1.0, 100.0)
    with tracer.start_as_current_span("websocket message"):
        order_filled("p", 100.0, 1.0)
    open_order("root", "BTC/USDT", "BUY", 1.0, 100.0)
    with tracer.start_as_current_span("websocket message"):
        order_filled("root", 100.0, 1.0)

    by_id = {(s.attributes or {}).get(conv.TRADING_ORDER_ID): s for s in capture_telemetry.spans()}
    parent = by_id["p"].parent
    assert parent is not None and parent.span_id == tick.get_span_context().span_id
    assert by_id["root"].parent is None
    assert trace.get_current_span() is trace.INVALID_SPAN


def test_threads_finishing_orders_concurrently_lose_nothing(
    capture_telemetry: TelemetryCapture,
) -> None:
    ids = [f"o{i}" for i in range(2000)]
    for oid in ids:
        open_order(oid, "BTC/USDT", "BUY", 1.0, 100.0)

    def finish(part: list[str]) -> None:
        for oid in part:
            order_filled(oid, 100.0, 0.5)
            order_filled(oid, 100.0, 0.5)

    workers = [threading.Thread(target=finish, args=(ids[i::4],)) for i in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert open_order_count() == 0
    assert capture_telemetry.metric_value("botmon.trades", trading_outcome="filled") == 2000
    assert capture_telemetry.metric_value("botmon.trade.volume") == pytest.approx(2000.0)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    requested=st.floats(min_value=0.01, max_value=100.0),
    parts=st.lists(st.floats(min_value=0.01, max_value=1.0), min_size=1, max_size=6),
    end=st.sampled_from(["fill-rest", "cancel", "final"]),
)
def test_fill_sequences_record_the_volume_filled_and_a_consistent_outcome(
    requested: float, parts: list[float], end: str
) -> None:
    orders._BOOK.clear()
    total = sum(parts)
    quantities = [requested * p / total * 0.999 for p in parts]  # always short of requested
    with capture() as cap:
        open_order("h", "ETH/USDT", "SELL", requested, 10.0)
        for qty in quantities:
            order_filled("h", 10.0, qty)
        if end == "fill-rest":
            order_filled("h", 10.0)  # no quantity: the rest
        elif end == "cancel":
            order_canceled("h")
        else:
            order_filled("h", 10.0, 0.0, final=True)
        volume = cap.metric_value("botmon.trade.volume")
        (point,) = cap.metric_points("botmon.trades")
    assert open_order_count() == 0
    if end == "fill-rest":
        assert volume == pytest.approx(requested)
        assert point.attributes[conv.TRADING_OUTCOME] == "filled"
    else:
        assert volume == pytest.approx(sum(quantities))
        assert point.attributes[conv.TRADING_OUTCOME] == "partial"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_starts_with_no_open_orders(capture_telemetry: TelemetryCapture) -> None:
    open_order("parent's", "BTC/USDT", "BUY", 1.0, 100.0)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os._exit(0 if open_order_count() == 0 else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert open_order_count() == 1  # the parent keeps its own


def test_the_order_calls_are_public() -> None:
    for name in ("open_order", "order_filled", "order_rejected", "order_canceled",
                 "set_order_limits", "expire_orders", "open_order_count", "OrderHandle"):
        assert name in otel_botmon.__all__
        assert getattr(otel_botmon, name) is getattr(orders, name)


def test_logging_names_the_component(
    capture_telemetry: TelemetryCapture, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="otel_botmon"):
        order_rejected("ghost")
    (record,) = [r for r in caplog.records if r.name == "otel_botmon"]
    assert "orders" in record.getMessage() and "'ghost'" in record.getMessage()
