"""The trade that bench_trade and bench_peers both time, built in one place.

One whole trade of BTCUSDT, BUY 0.25 at a requested 70,000.0, filled at 70,003.5
(reported by the body, so there is slippage). Nothing is imported at module level: the
bench_trade children measure memory and latency from a fresh process, and importing
this module must not load the SDK before they do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

SYMBOL, SIDE, ORDER_TYPE = "BTCUSDT", "BUY", "MARKET"
QUANTITY, PRICE, FILL_PRICE = 0.25, 70_000.0, 70_003.5


def decorated_trade() -> Callable[[], object]:
    """``@trade`` whose body reports the fill (so slippage is known)."""
    from otel_botmon.instrument.trading import current_trade, trade

    @trade(order_type=ORDER_TYPE)
    def place(symbol: str, side: str, quantity: float, price: float) -> str:
        t = current_trade()
        if t is not None:
            t.filled(price=FILL_PRICE)
        return "FILLED"

    return lambda: place(SYMBOL, SIDE, QUANTITY, PRICE)


@dataclass(frozen=True)
class TradeAttributes:
    """Pre-built attribute dicts for hand-written instrumentation of the trade."""

    span: dict[str, Any]
    """On the span at its start: symbol, side, order type, quantity, price."""
    filled: dict[str, Any]
    """Duration and trade counter: symbol, side, order type, outcome."""
    pair: dict[str, Any]
    """Volume and notional: symbol, side."""
    slippage: dict[str, Any]
    """Slippage histogram: symbol, side, direction."""


def trade_attributes() -> TradeAttributes:
    from otel_botmon import conventions as conv

    pair = {conv.TRADING_SYMBOL: SYMBOL, conv.TRADING_SIDE: SIDE}
    return TradeAttributes(
        span={**pair, conv.TRADING_ORDER_TYPE: ORDER_TYPE, conv.TRADING_QUANTITY: QUANTITY,
              conv.TRADING_PRICE: PRICE},
        filled={**pair, conv.TRADING_ORDER_TYPE: ORDER_TYPE, conv.TRADING_OUTCOME: "filled"},
        pair=pair,
        slippage={**pair, conv.TRADING_SLIPPAGE_DIRECTION: "adverse"},
    )
