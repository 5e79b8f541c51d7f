"""Instrumentation the bot calls: trades (``trading``), orders finished in another
callback (``orders``) and exchange calls (``exchange``).

The shared decorator / context-manager machinery is in ``_wrappers``; value coercion
with warn-once reporting is in ``_values``. Trades: the public calls in ``trading``, the
per-trade state in ``_trade``, the per-generation instrument cache in
``_trade_instruments``.
"""

from otel_botmon.instrument.trading import (
    ActiveTrade,
    TradeScope,
    current_trade,
    record_position_closed,
    record_realized_pnl,
    record_trade_execution,
    trade,
)

__all__ = [
    "ActiveTrade",
    "TradeScope",
    "current_trade",
    "record_position_closed",
    "record_realized_pnl",
    "record_trade_execution",
    "trade",
]
