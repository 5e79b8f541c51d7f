"""Trade instrumentation: ``@trade``, ``with trade(...) as t``, the seed's recording calls.

One trade is one span (``trade {symbol}``) plus these metrics (names in
:mod:`otel_botmon.conventions`):

* ``botmon.trade.duration`` (s) and ``botmon.trades`` by ``trading.outcome`` (filled,
  partial, rejected, error; ``error.type`` on errors), by symbol, side and order type;
* ``botmon.trade.volume`` and ``botmon.trade.notional`` for what was filled;
* ``botmon.trade.slippage`` (basis points) when a fill price was reported with
  ``t.filled(price=...)`` and the requested price is known. The histogram holds the
  magnitude and ``trading.slippage.direction`` (adverse, favorable, none) the sign,
  because OpenTelemetry histograms drop negative values; the span's
  ``trading.slippage_bp`` is signed, positive = adverse.

The bot's exceptions pass through unchanged (the span gets status ERROR, ``error.type``
and the exception event); errors inside otel_botmon are reported through
``report_internal_error`` and never reach the bot.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import ParamSpec, TypeVar, overload

from otel_botmon import conventions as conv
from otel_botmon._internal import report_internal_error
from otel_botmon.instrument._trade import (
    _COMPONENT,
    _FILLED,
    _PARTIAL,
    _REJECTED,
    ActiveTrade,
    TradeScope,
    slippage_bp,
)
from otel_botmon.instrument._trade_instruments import instruments as _instruments
from otel_botmon.instrument._values import as_label, as_number, warn_once
from otel_botmon.instrument._wrappers import current

__all__ = [
    "ActiveTrade",
    "TradeScope",
    "current_trade",
    "record_position_closed",
    "record_realized_pnl",
    "record_trade_execution",
    "slippage_bp",
    "trade",
]

P = ParamSpec("P")
R = TypeVar("R")


@overload
def trade(func: Callable[P, R], /) -> Callable[P, R]: ...


@overload
def trade(
    func: None = None,
    /,
    *,
    symbol: object = None,
    side: object = None,
    quantity: object = None,
    price: object = None,
    order_type: object = None,
    symbol_param: str | None = "symbol",
    side_param: str | None = "side",
    quantity_param: str | None = "quantity",
    price_param: str | None = "price",
    order_type_param: str | None = "order_type",
) -> TradeScope: ...


def trade(
    func: Callable[P, R] | None = None,
    /,
    *,
    symbol: object = None,
    side: object = None,
    quantity: object = None,
    price: object = None,
    order_type: object = None,
    symbol_param: str | None = "symbol",
    side_param: str | None = "side",
    quantity_param: str | None = "quantity",
    price_param: str | None = "price",
    order_type_param: str | None = "order_type",
) -> Callable[P, R] | TradeScope:
    """Instrument a trade: ``@trade``, ``@trade(...)``, ``with trade(...) as t``.

    Fixed keyword arguments (``symbol``, ``side``, ``quantity``, ``price``,
    ``order_type``) set the trade's attributes; a decorated function's parameters of the
    same names override them per call (rename with ``symbol_param="pair"`` etc., or
    pass ``None`` to ignore a parameter). Works on sync functions, coroutines,
    generators and async generators; the signature is kept.

    Outcome: ``t.filled(...)`` / ``t.rejected(reason)`` report what the exchange said
    (inside a decorated function, ``current_trade()`` gives ``t``); a body that returns
    without either is ``filled`` at the requested quantity and price; an exception is
    ``error`` (re-raised unchanged). Side and order type are upper-cased; quantities and
    prices may be int, float, Decimal or numeric strings.

    Raises TypeError at decoration time for a class or a non-callable (for example
    ``trade("BTCUSDT")``: use ``trade(symbol="BTCUSDT")``).
    """
    scope = TradeScope(
        symbol=symbol, side=side, quantity=quantity, price=price, order_type=order_type,
        params={
            "symbol": symbol_param, "side": side_param, "quantity": quantity_param,
            "price": price_param, "order_type": order_type_param,
        },
    )
    if func is None:
        return scope
    return scope.decorate(func)


def current_trade() -> ActiveTrade | None:
    """The innermost trade in progress in this thread or task (inside ``@trade``)."""
    return current(ActiveTrade)


_OUTCOMES = frozenset(o.value for o in conv.TradeOutcome)


def record_trade_execution(
    symbol: object,
    side: object,
    quantity: object,
    price: object,
    execution_time: object,
    *,
    requested_price: object = None,
    order_type: object = None,
    outcome: object = None,
) -> None:
    """Record a trade after the fact (the seed's ``SystemMonitor`` call).

    ``execution_time`` is in milliseconds, as in the guide; it is recorded in seconds on
    ``botmon.trade.duration`` and as the span's duration. ``price`` is the fill price;
    with ``requested_price`` (the order's price) the slippage between the two is
    recorded. ``outcome`` is one of ``trading.outcome``'s values (``filled`` by default;
    ``partial`` records ``quantity`` as filled; ``rejected``, ``canceled``, ``expired``
    and ``error`` record no fill). Non-numeric or negative values and unknown outcomes
    are dropped with one warning; this never raises.
    """
    site = "record_trade_execution"
    try:
        millis = as_number(execution_time, "execution_time", site)
        if millis is not None and millis < 0:
            warn_once(
                site, "execution_time (negative)",
                f"otel_botmon: execution_time={millis!r} ms in {site} is negative; "
                "the trade is recorded without a duration (warned once)",
            )
            millis = None
        result = _FILLED if outcome is None else as_label(outcome).lower()
        if result not in _OUTCOMES:
            warn_once(
                site, "outcome",
                f"otel_botmon: outcome={outcome!r:.40} in {site} is not one of "
                f"{sorted(_OUTCOMES)}; recorded as filled (warned once)",
            )
            result = _FILLED
        explicit = requested_price is not None
        scope = TradeScope(
            symbol=symbol, side=side, quantity=quantity,
            price=requested_price if explicit else price, order_type=order_type, site=site,
        )
        exact: tuple[float, int] | None = None
        if millis is None:
            state = scope._begin(None, site)
            state._timed = False  # count the trade and its fill, skip the histogram
        else:
            # Back-date the start and end the span now: the span and the histogram show
            # the caller's duration exactly (2000 ms stays in the "<= 2 s" bucket).
            end_ns = time.time_ns()
            state = scope._begin(None, site, start_time_ns=end_ns - int(millis * 1_000_000))
            exact = (millis / 1000.0, end_ns)
        if result == _REJECTED:
            state.rejected()
        elif result in (_FILLED, _PARTIAL):
            if explicit or result == _PARTIAL:
                state.filled(price=price if explicit else None, quantity=quantity)
            if result == _PARTIAL:
                state._outcome_as = _PARTIAL
        else:
            state._outcome_as = result
        state._end(None, exact=exact)
    except Exception as exc:
        report_internal_error(_COMPONENT, exc)


def record_realized_pnl(symbol: object, pnl: object) -> None:
    """Record P&L realized without closing a position (a partial exit), in quote currency.

    Adds ``pnl`` to ``botmon.pnl.realized`` at once and counts no closed position, so win
    rate is unchanged. When the position closes, pass the position's whole P&L to
    :func:`record_position_closed` with ``already_recorded`` set to the sum recorded
    here, so the total is counted once. A non-numeric ``pnl`` is dropped with one
    warning; never raises.
    """
    site = "record_realized_pnl"
    try:
        value = as_number(pnl, "pnl", site)
        if value is None:
            return
        _instruments().pnl.add(value, {conv.TRADING_SYMBOL: as_label(symbol)})
    except Exception as exc:
        report_internal_error(_COMPONENT, exc)


def record_position_closed(
    symbol: object, pnl: object, *, already_recorded: object = 0.0,
) -> None:
    """Record a closed position's realized P&L (quote currency) and its result.

    Counts ``botmon.positions.closed`` with ``trading.result`` win (pnl > 0), loss
    (pnl < 0) or breakeven; win rate is wins / closed positions. Adds ``pnl`` less
    ``already_recorded`` (the part of it recorded at partial exits with
    :func:`record_realized_pnl`) to ``botmon.pnl.realized``. A non-numeric ``pnl`` is
    dropped with one warning; a non-numeric ``already_recorded`` counts the position and
    adds no P&L (rather than risk counting it twice), with one warning; never raises.
    """
    site = "record_position_closed"
    try:
        value = as_number(pnl, "pnl", site)
        if value is None:
            return
        earlier = as_number(already_recorded, "already_recorded", site)
        inst = _instruments()
        label = as_label(symbol)
        if value > 0:
            result = conv.PositionResult.WIN.value
        elif value < 0:
            result = conv.PositionResult.LOSS.value
        else:
            result = conv.PositionResult.BREAKEVEN.value
        if earlier is not None:
            inst.pnl.add(value - earlier, {conv.TRADING_SYMBOL: label})
        inst.positions.add(1, {conv.TRADING_SYMBOL: label, conv.TRADING_RESULT: result})
    except Exception as exc:
        report_internal_error(_COMPONENT, exc)
