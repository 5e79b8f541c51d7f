"""@trade on sync functions, coroutines, generators and async generators."""

from __future__ import annotations

import asyncio
import inspect
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.trace import StatusCode

from otel_botmon import conventions as conv
from otel_botmon.instrument.exchange import exchange_call
from otel_botmon.instrument.trading import current_trade, trade

BTC_BUY = {conv.TRADING_SYMBOL: "BTCUSDT", conv.TRADING_SIDE: "BUY"}


def place_order(
    symbol: str, side: str, quantity: float, price: float, order_type: str = "LIMIT"
) -> dict[str, Any]:
    """Send the order."""
    return {"status": "FILLED", "symbol": symbol}


def test_bare_decorator_records_span_from_call_arguments(telemetry: Any) -> None:
    decorated = trade(place_order)

    assert decorated("BTCUSDT", "buy", 0.002, 45000.0) == {"status": "FILLED", "symbol": "BTCUSDT"}

    (span,) = telemetry.spans()
    assert span.name == "trade BTCUSDT"
    assert dict(span.attributes) == {
        **BTC_BUY,
        conv.TRADING_ORDER_TYPE: "LIMIT",
        conv.TRADING_QUANTITY: 0.002,
        conv.TRADING_PRICE: 45000.0,
        conv.TRADING_OUTCOME: "filled",
        conv.TRADING_FILL_QUANTITY: 0.002,
        conv.TRADING_FILL_PRICE: 45000.0,
    }
    assert span.status.status_code is StatusCode.UNSET


def test_bare_decorator_records_duration_count_volume_notional(
    telemetry: Any, metrics: Any
) -> None:
    decorated = trade(place_order)
    decorated(symbol="BTCUSDT", side="BUY", quantity=0.002, price=45000.0, order_type="market")

    outcome = {**BTC_BUY, conv.TRADING_ORDER_TYPE: "MARKET", conv.TRADING_OUTCOME: "filled"}
    duration = metrics.metric_point("botmon.trade.duration", outcome)
    assert duration.count == 1
    assert 0 < duration.sum < 1.0
    assert metrics.metric_point("botmon.trades", outcome).value == 1
    assert metrics.metric_point("botmon.trade.volume", BTC_BUY).value == pytest.approx(0.002)
    assert metrics.metric_point("botmon.trade.notional", BTC_BUY).value == pytest.approx(90.0)
    assert metrics.metric_attribute_sets("botmon.trade.slippage") == []


def test_fixed_attributes_apply_and_call_arguments_override_them(telemetry: Any) -> None:
    @trade(symbol="ETHUSDT", side="SELL", order_type="LIMIT")
    def sell(symbol: str | None = None, quantity: float = 1.0) -> None:
        pass

    sell()
    sell("SOLUSDT")

    first, second = telemetry.spans()
    assert first.name == "trade ETHUSDT"
    assert second.name == "trade SOLUSDT"
    assert second.attributes[conv.TRADING_SIDE] == "SELL"
    assert second.attributes[conv.TRADING_QUANTITY] == 1.0


def test_parameter_names_can_be_overridden(telemetry: Any) -> None:
    @trade(symbol_param="pair", quantity_param="amount", side_param=None)
    def order(pair: str, side: str, amount: float) -> None:
        pass

    order("BTC/USDT", "BUY", amount=3)

    (span,) = telemetry.spans()
    assert span.name == "trade BTC/USDT"
    assert conv.TRADING_SIDE not in span.attributes
    assert span.attributes[conv.TRADING_QUANTITY] == 3.0


def test_parameters_arriving_through_var_keyword_are_read(telemetry: Any) -> None:
    @trade
    def order(**params: Any) -> None:
        pass

    order(symbol="ADAUSDT", side="SELL")

    (span,) = telemetry.spans()
    assert span.name == "trade ADAUSDT"
    assert span.attributes[conv.TRADING_SIDE] == "SELL"


def test_methods_read_parameters_after_self(telemetry: Any) -> None:
    class Bot:
        @trade(order_type="MARKET")
        def buy(self, symbol: str, quantity: float) -> str:
            return f"bought {symbol}"

    assert Bot().buy("XRPUSDT", 10) == "bought XRPUSDT"
    (span,) = telemetry.spans()
    assert span.name == "trade XRPUSDT"
    assert span.attributes[conv.TRADING_QUANTITY] == 10.0


def test_signature_name_and_docstring_are_kept() -> None:
    decorated = trade(place_order)

    assert inspect.signature(decorated) == inspect.signature(place_order)
    assert decorated.__name__ == "place_order"
    assert decorated.__doc__ == "Send the order."
    assert decorated.__wrapped__ is place_order  # type: ignore[attr-defined]


def test_exception_is_reraised_unchanged_and_marks_span_and_metrics(
    telemetry: Any, metrics: Any
) -> None:
    boom = ConnectionError("exchange unreachable")

    @trade
    def place(symbol: str, side: str) -> None:
        raise boom

    with pytest.raises(ConnectionError) as raised:
        place("BTCUSDT", "BUY")

    assert raised.value is boom
    (span,) = telemetry.spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[conv.ERROR_TYPE] == "ConnectionError"
    assert span.attributes[conv.TRADING_OUTCOME] == "error"
    assert [e.name for e in span.events] == ["exception"]
    error = {**BTC_BUY, conv.TRADING_OUTCOME: "error", conv.ERROR_TYPE: "ConnectionError"}
    assert metrics.metric_point("botmon.trades", error).value == 1
    assert metrics.metric_point("botmon.trade.duration", error).count == 1
    assert metrics.metric_attribute_sets("botmon.trade.volume") == []


def test_span_is_current_inside_the_body_and_restored_after(telemetry: Any) -> None:
    seen = []

    @trade
    def place(symbol: str) -> None:
        seen.append(trace.get_current_span())

    before = trace.get_current_span()
    place("BTCUSDT")

    (span,) = telemetry.spans()
    assert seen[0].get_span_context().span_id == span.context.span_id
    assert trace.get_current_span() is before


def test_nested_trades_are_parent_and_child(telemetry: Any) -> None:
    @trade
    def leg(symbol: str) -> None:
        pass

    @trade(symbol="BASKET")
    def basket() -> None:
        leg("BTCUSDT")

    basket()

    child, parent = telemetry.spans()
    assert child.parent is not None
    assert child.parent.span_id == parent.context.span_id


def test_current_trade_reports_fills_from_a_decorated_function(
    telemetry: Any, metrics: Any
) -> None:
    @trade
    def place(symbol: str, side: str, quantity: float, price: float) -> None:
        t = current_trade()
        assert t is not None
        t.filled(price=100.5, quantity=0.5)

    place("ETHUSDT", "BUY", 1.0, 100.0)

    (span,) = telemetry.spans()
    assert span.attributes[conv.TRADING_OUTCOME] == "partial"
    assert current_trade() is None
    eth = {
        conv.TRADING_SYMBOL: "ETHUSDT", conv.TRADING_SIDE: "BUY",
        conv.TRADING_SLIPPAGE_DIRECTION: "adverse",
    }
    assert metrics.metric_point("botmon.trade.slippage", eth).sum == pytest.approx(50.0)


def test_current_trade_is_found_from_inside_a_nested_exchange_call(telemetry: Any) -> None:
    seen = []

    @trade
    def place(symbol: str) -> None:
        with exchange_call(exchange="binance", endpoint="create_order"):
            t = current_trade()
            seen.append(t.symbol if t is not None else None)
            assert t is not None
            t.rejected("MIN_NOTIONAL")

    place("BTCUSDT")

    assert seen == ["BTCUSDT"]
    exchange_span, trade_span = telemetry.spans()
    assert exchange_span.parent.span_id == trade_span.context.span_id
    assert trade_span.attributes[conv.TRADING_OUTCOME] == "rejected"


async def test_coroutine_is_awaited_inside_the_span(telemetry: Any, metrics: Any) -> None:
    @trade(side="BUY")
    async def place(symbol: str) -> str:
        await asyncio.sleep(0.01)
        return "ok"

    assert inspect.iscoroutinefunction(place)
    assert await place("BTCUSDT") == "ok"

    (span,) = telemetry.spans()
    assert span.name == "trade BTCUSDT"
    filled = {**BTC_BUY, conv.TRADING_OUTCOME: "filled"}
    assert metrics.metric_point("botmon.trade.duration", filled).sum >= 0.01


async def test_coroutine_exception_passes_through(telemetry: Any) -> None:
    @trade
    async def place(symbol: str) -> None:
        raise TimeoutError("no answer")

    with pytest.raises(TimeoutError, match="no answer"):
        await place("BTCUSDT")
    (span,) = telemetry.spans()
    assert span.attributes[conv.ERROR_TYPE] == "TimeoutError"


def test_generator_span_covers_iteration_but_not_the_consumer(telemetry: Any) -> None:
    inside: list[bool] = []

    @trade
    def fills(symbol: str) -> Iterator[int]:
        for n in range(3):
            inside.append(trace.get_current_span().is_recording())
            received = yield n
            assert received in (None, "ack")
        return

    assert inspect.isgeneratorfunction(fills)
    gen = fills("BTCUSDT")
    assert telemetry.spans() == []  # nothing runs before the first next()
    assert next(gen) == 0
    assert not trace.get_current_span().is_recording()  # consumer side: not our span
    assert gen.send("ack") == 1
    assert list(gen) == [2]

    (span,) = telemetry.spans()
    assert inside == [True, True, True]
    assert span.attributes[conv.TRADING_OUTCOME] == "filled"


def test_generator_closed_early_ends_the_span(telemetry: Any) -> None:
    @trade
    def fills(symbol: str) -> Iterator[int]:
        yield 1
        yield 2

    gen = fills("BTCUSDT")
    next(gen)
    gen.close()

    (span,) = telemetry.spans()
    assert span.attributes[conv.TRADING_OUTCOME] == "filled"


def test_generator_exception_thrown_in_is_seen_by_the_body(telemetry: Any) -> None:
    @trade
    def fills(symbol: str) -> Iterator[str]:
        try:
            yield "first"
        except KeyError:
            yield "handled"

    gen = fills("BTCUSDT")
    next(gen)
    assert gen.throw(KeyError("x")) == "handled"
    with pytest.raises(StopIteration):
        next(gen)
    (span,) = telemetry.spans()
    assert span.attributes[conv.TRADING_OUTCOME] == "filled"


async def test_async_generator_is_instrumented(telemetry: Any) -> None:
    @trade(side="SELL")
    async def stream(symbol: str) -> AsyncIterator[int]:
        for n in range(2):
            await asyncio.sleep(0)
            yield n

    assert inspect.isasyncgenfunction(stream)
    assert [n async for n in stream("BTCUSDT")] == [0, 1]
    (span,) = telemetry.spans()
    assert span.name == "trade BTCUSDT"
    assert span.attributes[conv.TRADING_SIDE] == "SELL"


async def test_async_generator_error_is_recorded_and_reraised(telemetry: Any) -> None:
    @trade
    async def stream(symbol: str) -> AsyncIterator[int]:
        yield 1
        raise ValueError("bad fill")

    with pytest.raises(ValueError, match="bad fill"):
        async for _ in stream("BTCUSDT"):
            pass
    (span,) = telemetry.spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[conv.TRADING_OUTCOME] == "error"


def test_decorating_a_class_raises_type_error() -> None:
    with pytest.raises(TypeError, match=r"@trade decorates functions and methods, not classes"):
        @trade
        class Bot:
            pass


@pytest.mark.parametrize("thing", ["BTCUSDT", 42, 3.5])
def test_decorating_a_non_callable_raises_type_error(thing: object) -> None:
    with pytest.raises(TypeError, match=r"@trade decorates functions and methods, got"):
        trade(thing)  # type: ignore[call-overload]


def test_decorator_order_with_staticmethod_and_classmethod_is_free(telemetry: Any) -> None:
    class Bot:
        @trade
        @staticmethod
        def buy(symbol: str) -> str:
            return "static"

        @trade(side="SELL")
        @classmethod
        def sell(cls, symbol: str) -> str:
            return cls.__name__

    assert Bot.buy("BTCUSDT") == "static"
    assert Bot().buy("BTCUSDT") == "static"
    assert Bot().sell("ETHUSDT") == "Bot"
    assert [s.name for s in telemetry.spans()] == [
        "trade BTCUSDT", "trade BTCUSDT", "trade ETHUSDT",
    ]


def test_without_configure_trades_run_on_the_api_alone(tmp_path: Path) -> None:
    script = tmp_path / "bot.py"
    script.write_text(textwrap.dedent("""
        import asyncio
        from otel_botmon.instrument.trading import trade, record_position_closed

        @trade
        def place(symbol, side, quantity, price):
            return "sent"

        @trade
        async def aplace(symbol):
            return "async"

        with trade(symbol="BTCUSDT", side="BUY", quantity=1, price=2) as t:
            t.filled(price=2.5)
        record_position_closed("BTCUSDT", 1.0)
        print(place("BTCUSDT", "BUY", 1.0, 2.0), asyncio.run(aplace("ETHUSDT")))
    """))
    repo = Path(__file__).resolve().parents[3]
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60,
        env={"PYTHONPATH": str(repo), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "sent async"
    assert result.stderr == ""
