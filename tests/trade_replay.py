"""Generated trade sequences, replayed through the public trade API on a steady clock.

Used to compare the lean trade aggregation with the SDK's instruments
(``BOTMON_TRADE_METRICS=sdk``): the same sequence must give the same exported metrics.
Every quantity, price and duration is a dyadic fraction (k / 2^n), so sums of them are
exact whatever the order or grouping of the additions (the SDK adds per collection,
the lean path per trade).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from hypothesis import strategies as st

from otel_botmon.instrument import _wrappers, trading
from otel_botmon.instrument.trading import current_trade, record_trade_execution, trade

__all__ = ["TradeStep", "edge_trade_steps", "replay", "steady_clock", "trade_steps"]

TRADE_METRICS = ("botmon.trade.duration", "botmon.trades", "botmon.trade.volume",
                 "botmon.trade.notional", "botmon.trade.slippage")
_STEP_NS = 31_250_000  # 1/32 s per clock reading


@dataclass(frozen=True)
class TradeStep:
    """One trade: ``how`` is ``with`` (a ``with trade()`` block), ``call`` (a call of an
    ``@trade`` function, whose float arguments reach the trade as they are) or
    ``record`` (``record_trade_execution``); ``end`` what the exchange answered."""

    how: str
    symbol: str
    side: str
    order_type: str | None
    quantity: float | None
    price: float | None
    end: str  # filled, filled_at, partial, rejected, error (with, call); an outcome (record)
    fill_offset: float  # fill price - requested price, for filled_at / record
    millis: float | None  # record_trade_execution's execution_time (None: untimed)


_with_ends = st.sampled_from(["filled", "filled_at", "partial", "rejected", "error"])
_record_ends = st.sampled_from(["filled", "partial", "rejected", "canceled", "expired",
                                "error", "requested"])


@st.composite
def trade_steps(draw: st.DrawFn) -> TradeStep:
    how = draw(st.sampled_from(["with", "record"]))
    return TradeStep(
        how=how,
        symbol=draw(st.sampled_from(["BTCUSDT", "ETHUSDT", "SOLUSDT"])),
        side=draw(st.sampled_from(["BUY", "SELL"])),
        order_type=draw(st.sampled_from([None, "MARKET", "LIMIT"])),
        quantity=draw(st.integers(1, 640)) / 64,
        price=draw(st.sampled_from([1024.0, 4096.0, 65536.0])),
        end=draw(_with_ends if how == "with" else _record_ends),
        fill_offset=draw(st.integers(-80, 80)) / 8,
        millis=draw(st.integers(0, 640)) * 15.625,
    )


# Values the SDK's instruments drop or that make them drop a measurement (negative,
# non-finite, a product past the largest float), and fills without a price.
_edge_prices = st.sampled_from([None, 1024.0, 4096.0, -1024.0, -0.0, 0.0, 2.0**-1000,
                                2.0**600, math.inf, -math.inf, math.nan])
_edge_quantities = st.sampled_from([None, 0.5, 3.0, -2.0, 0.0, -0.0, 2.0**600, math.inf,
                                    math.nan])


@st.composite
def edge_trade_steps(draw: st.DrawFn, symbols: int = 3) -> TradeStep:
    """Trades with the values of ``_edge_prices`` and ``_edge_quantities``, untimed
    records, and ``symbols`` symbols (more than a small cardinality cap)."""
    how = draw(st.sampled_from(["with", "call", "record"]))
    return TradeStep(
        how=how,
        symbol=draw(st.sampled_from([f"S{i}" for i in range(symbols)])),
        side=draw(st.sampled_from(["BUY", "SELL"])),
        order_type=draw(st.sampled_from([None, "MARKET"])),
        quantity=draw(_edge_quantities),
        price=draw(_edge_prices),
        end=draw(_with_ends if how != "record" else _record_ends),
        fill_offset=draw(st.sampled_from([0.0, -8.0, 2.0**1000])),
        millis=draw(st.sampled_from([None, 15.625, 1000.0])),
    )


class _Refused(Exception):
    pass


def _body(t: Any, step: TradeStep) -> None:
    if step.end == "filled_at":
        t.filled(price=(step.price or 0.0) + step.fill_offset)
    elif step.end == "partial":
        t.filled(quantity=None if step.quantity is None else step.quantity / 2)
    elif step.end == "rejected":
        t.rejected("insufficient balance")
    elif step.end == "error":
        raise _Refused("exchange said no")


@trade
def _place(symbol: str, side: str, quantity: float | None, price: float | None,
           order_type: str | None, step: TradeStep) -> None:
    _body(current_trade(), step)


def _run(step: TradeStep) -> None:
    if step.how == "call":
        with contextlib.suppress(_Refused):
            _place(step.symbol, step.side, step.quantity, step.price, step.order_type, step)
        return
    if step.how == "record":
        if step.price is None:
            record_trade_execution(step.symbol, step.side, step.quantity, None, step.millis,
                                   order_type=step.order_type, outcome=step.end)
            return
        fill = step.price + step.fill_offset
        if step.end == "requested":  # a fill with its requested price: slippage
            record_trade_execution(step.symbol, step.side, step.quantity, fill, step.millis,
                                   requested_price=step.price, order_type=step.order_type)
        else:
            record_trade_execution(step.symbol, step.side, step.quantity, fill, step.millis,
                                   order_type=step.order_type, outcome=step.end)
        return
    with contextlib.suppress(_Refused), trade(
        symbol=step.symbol, side=step.side, quantity=step.quantity, price=step.price,
        order_type=step.order_type,
    ) as t:
        _body(t, step)


@contextlib.contextmanager
def steady_clock() -> Iterator[None]:
    """Trade durations from a clock that advances 1/32 s per reading (exact in binary)."""
    now = [0]

    def perf_counter_ns() -> int:
        now[0] += _STEP_NS
        return now[0]

    fake = SimpleNamespace(perf_counter_ns=perf_counter_ns, time_ns=time.time_ns)
    saved = _wrappers.time, trading.time
    _wrappers.time = fake  # type: ignore[assignment]
    trading.time = fake  # type: ignore[assignment]
    try:
        yield
    finally:
        _wrappers.time, trading.time = saved


def replay(steps: Sequence[TradeStep]) -> None:
    """Run ``steps`` in order through the public API, on the steady clock."""
    with steady_clock():
        for step in steps:
            _run(step)


def points_key(attributes: dict[str, Any]) -> frozenset[tuple[str, Any]]:
    return frozenset(attributes.items())
