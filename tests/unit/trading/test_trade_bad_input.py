"""Bad input never breaks the trade: dropped attributes, one warning, counted SDK errors."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

import pytest
from opentelemetry.trace import StatusCode

from otel_botmon import conventions as conv
from otel_botmon.instrument import trading
from otel_botmon.instrument.trading import trade

WARN_LOGGER = "otel_botmon.instrument"


def warnings_from(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage() for r in caplog.records
        if r.name == WARN_LOGGER and r.levelno == logging.WARNING
    ]


def test_non_numeric_quantity_runs_the_call_drops_the_attribute_and_warns_once(
    telemetry: Any, caplog: pytest.LogCaptureFixture
) -> None:
    @trade
    def place(symbol: str, quantity: object, price: float) -> str:
        return "sent"

    results = [place("BTCUSDT", "lots", 10.0) for _ in range(3)]

    assert results == ["sent"] * 3
    spans = telemetry.spans()
    assert len(spans) == 3
    assert all(conv.TRADING_QUANTITY not in s.attributes for s in spans)
    assert all(s.attributes[conv.TRADING_PRICE] == 10.0 for s in spans)
    (message,) = warnings_from(caplog)
    assert "quantity='lots'" in message
    assert "place" in message


def test_non_numeric_price_in_a_with_block_is_dropped_with_one_warning(
    telemetry: Any, metrics: Any, caplog: pytest.LogCaptureFixture
) -> None:
    for _ in range(2):
        with trade(symbol="BTCUSDT", side="BUY", quantity=1.0, price=object()):
            pass

    assert len(warnings_from(caplog)) == 1
    assert all(conv.TRADING_PRICE not in s.attributes for s in telemetry.spans())
    buy = {conv.TRADING_SYMBOL: "BTCUSDT", conv.TRADING_SIDE: "BUY"}
    assert metrics.metric_point("botmon.trade.volume", buy).value == 2.0
    assert metrics.metric_attribute_sets("botmon.trade.notional") == []


def test_non_numeric_fill_is_dropped_and_the_trade_still_ends(
    telemetry: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with trade(symbol="BTCUSDT", side="BUY", quantity=1.0, price=10.0) as t:
        t.filled(price="n/a", quantity=float("nan"))

    (span,) = telemetry.spans()
    assert span.attributes[conv.TRADING_OUTCOME] == "filled"
    assert conv.TRADING_SLIPPAGE_BP not in span.attributes
    assert len(warnings_from(caplog)) == 2  # one per field


@pytest.mark.parametrize("value", [Decimal("0.25"), "0.25", 0.25])
def test_decimals_and_numeric_strings_are_numbers(telemetry: Any, value: object) -> None:
    with trade(symbol="BTCUSDT", quantity=value):
        pass

    (span,) = telemetry.spans()
    assert span.attributes[conv.TRADING_QUANTITY] == 0.25


@pytest.mark.parametrize("value", [True, float("inf"), [1.0]])
def test_bools_infinities_and_containers_are_not_numbers(telemetry: Any, value: object) -> None:
    with trade(symbol="BTCUSDT", quantity=value):
        pass

    (span,) = telemetry.spans()
    assert conv.TRADING_QUANTITY not in span.attributes


class _BrokenInstrument:
    def record(self, *_: object, **__: object) -> None:
        raise RuntimeError("exporter state corrupted")

    add = record


def test_sdk_error_while_recording_is_logged_once_counted_and_never_raised(
    telemetry: Any, metrics: Any, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    inst = trading._instruments()
    # the lean aggregation records a trade's metrics; the SDK's instruments without it
    monkeypatch.setattr(inst, "lean" if inst.lean is not None else "duration",
                        _BrokenInstrument())

    @trade
    def place(symbol: str) -> str:
        return "sent"

    assert [place("BTCUSDT"), place("BTCUSDT")] == ["sent", "sent"]

    errors = [r for r in caplog.records if r.name == "otel_botmon" and r.levelno == logging.ERROR]
    assert len(errors) == 1
    internal = {conv.INTERNAL_COMPONENT: "trade", conv.ERROR_TYPE: "RuntimeError"}
    assert metrics.metric_point("botmon.internal.errors", internal).value == 2
    assert len(telemetry.spans()) == 2  # spans still end


def test_sdk_error_when_starting_the_span_still_runs_the_bot_code(
    telemetry: Any, metrics: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    inst = trading._instruments()

    class BrokenTracer:
        def start_span(self, *_: object, **__: object) -> None:
            raise ValueError("tracer exploded")

    monkeypatch.setattr(inst, "tracer", BrokenTracer())
    calls = []

    @trade
    def place(symbol: str) -> str:
        calls.append(symbol)
        return "sent"

    assert place("BTCUSDT") == "sent"
    with trade(symbol="ETHUSDT") as t:
        t.filled(price=1.0)  # a usable, inert handle
    assert calls == ["BTCUSDT"]
    internal = {conv.INTERNAL_COMPONENT: "trade", conv.ERROR_TYPE: "ValueError"}
    assert metrics.metric_point("botmon.internal.errors", internal).value == 2


def test_bot_exception_wins_over_an_sdk_error(
    telemetry: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    inst = trading._instruments()
    monkeypatch.setattr(inst, "trades", _BrokenInstrument())

    @trade
    def place(symbol: str) -> None:
        raise KeyError("bot bug")

    with pytest.raises(KeyError, match="bot bug"):
        place("BTCUSDT")
    (span,) = telemetry.spans()
    assert span.status.status_code is StatusCode.ERROR  # still marked despite the SDK error
    assert span.attributes[conv.ERROR_TYPE] == "KeyError"
