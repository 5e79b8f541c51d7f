"""The per-trade state (:class:`ActiveTrade`) and the trade scope (:class:`TradeScope`).

The public entry points (``trade``, ``current_trade``, the ``record_*`` calls) live in
:mod:`otel_botmon.instrument.trading`, which re-exports these two classes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span

from otel_botmon import conventions as conv
from otel_botmon._internal import report_internal_error
from otel_botmon.instrument._trade_instruments import TradeInstruments as _Instruments
from otel_botmon.instrument._trade_instruments import instruments as _instruments
from otel_botmon.instrument._values import as_label, as_number
from otel_botmon.instrument._wrappers import ActiveCall, CallScope
from otel_botmon.redaction import redact_text

_COMPONENT = "trade"
_FILLED = conv.TradeOutcome.FILLED.value
_PARTIAL = conv.TradeOutcome.PARTIAL.value
_REJECTED = conv.TradeOutcome.REJECTED.value
_ERROR = conv.TradeOutcome.ERROR.value
_ADVERSE = conv.SlippageDirection.ADVERSE.value
_FAVORABLE = conv.SlippageDirection.FAVORABLE.value
_NO_SLIPPAGE = conv.SlippageDirection.NONE.value
_MAX_REASON_CHARS = 256
# A fill this close to the requested quantity counts as complete (float noise).
_PARTIAL_TOLERANCE = 1e-9

_DEFAULT_PARAMS: Mapping[str, str] = {
    "symbol": "symbol", "side": "side", "quantity": "quantity", "price": "price",
    "order_type": "order_type",
}


def slippage_bp(side: str | None, requested: float, filled: float) -> float | None:
    """Slippage of a fill in basis points, positive when adverse for the trader.

    A BUY filled above, or a SELL filled below, the requested price is adverse. Returns
    None when the side is neither BUY nor SELL or the requested price is not positive.
    """
    if requested <= 0:
        return None
    if side == "BUY":
        return (filled - requested) / requested * 10_000.0
    if side == "SELL":
        return (requested - filled) / requested * 10_000.0
    return None


class _Fills:
    """What ``t.filled()`` reported so far (created on the first call only)."""

    __slots__ = ("explicit_price", "notional", "price_only", "qty", "quantity_unknown",
                 "unpriced")

    def __init__(self) -> None:
        self.qty = 0.0  # sum of reported fill quantities
        self.notional = 0.0  # sum of quantity * price over those fills
        self.unpriced = False  # a fill had neither its own nor a requested price
        self.explicit_price = True  # every fill reported its own price
        self.price_only: float | None = None  # a fill price reported without quantity
        self.quantity_unknown = False  # a fill's quantity was unusable: no partial claim


class ActiveTrade(ActiveCall):
    """One trade in progress: the ``t`` of ``with trade(...) as t``.

    Report what the exchange answered with :meth:`filled` (any number of times, for
    partial fills) or :meth:`rejected`. If neither is called and the body returns, the
    trade counts as filled at the requested quantity and price.
    """

    __slots__ = ("_fills", "_inst", "_order_type", "_outcome_as", "_price", "_quantity",
                 "_reason", "_rejected", "_side", "_site", "_symbol", "_timed")

    def __init__(
        self,
        span: Span,
        inst: _Instruments | None,
        site: str,
        symbol: str | None,
        side: str | None,
        order_type: str | None,
        quantity: float | None,
        price: float | None,
    ) -> None:
        super().__init__(span, _COMPONENT)
        self._inst = inst
        self._site = site
        self._symbol = symbol
        self._side = side
        self._order_type = order_type
        self._quantity = quantity
        self._price = price
        self._timed = True
        self._fills: _Fills | None = None
        self._rejected = False
        self._reason: str | None = None
        # An outcome decided by the caller (orders: canceled, expired, partial ...).
        self._outcome_as: str | None = None

    @property
    def symbol(self) -> str | None:
        """The trade's symbol, when known."""
        return self._symbol

    @property
    def side(self) -> str | None:
        """The trade's side, upper-cased (``BUY``/``SELL``), when known."""
        return self._side

    def filled(self, price: object = None, quantity: object = None) -> None:
        """Report a fill (call again for each partial fill).

        ``price`` defaults to the requested price and ``quantity`` to the requested
        quantity. A total filled quantity below the requested one makes the outcome
        ``partial``. Non-numeric values are dropped with one warning; never raises.
        """
        if self._inst is None:  # nothing records this trade (idle or disabled)
            return
        try:
            site = self._site
            qty = self._quantity if quantity is None else as_number(
                quantity, "fill quantity", site
            )
            fill_price = None if price is None else as_number(price, "fill price", site)
            fills = self._fills
            if fills is None:
                fills = self._fills = _Fills()
            if fill_price is None:
                fills.explicit_price = False
            if qty is None:
                if quantity is not None:
                    fills.quantity_unknown = True
                if fill_price is not None:
                    fills.price_only = fill_price
                return
            if fill_price is None:
                fill_price = self._price
            fills.qty += qty
            if fill_price is None:
                fills.unpriced = True
            else:
                fills.notional += qty * fill_price
        except Exception as exc:
            report_internal_error(_COMPONENT, exc)

    def rejected(self, reason: object = None) -> None:
        """Mark the trade as rejected by the exchange.

        ``reason`` (any object; its text, secrets redacted, at most 256 characters) goes
        on the span as ``trading.reject_reason``, not on metrics (unbounded values).
        """
        self._rejected = True
        if reason is not None:
            try:
                # Reasons are often built from exchange errors that quote signed URLs.
                self._reason = redact_text(str(reason))[:_MAX_REASON_CHARS]
            except Exception as exc:
                report_internal_error(_COMPONENT, exc)

    def _fill(self, exc: BaseException | None) -> tuple[float | None, float | None]:
        """(filled quantity, average fill price) as far as they are known."""
        fills = self._fills
        if fills is None:
            if exc is None and not self._rejected and self._outcome_as is None:
                return self._quantity, self._price  # returned normally: filled as asked
            return None, None
        if fills.qty > 0:
            return fills.qty, None if fills.unpriced else fills.notional / fills.qty
        return None, fills.price_only

    def _outcome(self, exc: BaseException | None) -> str:
        if self._rejected:  # also when the rejection arrived as an exception (ccxt)
            return _REJECTED
        if exc is not None:
            return _ERROR
        if self._outcome_as is not None:
            return self._outcome_as
        fills = self._fills
        if (
            fills is not None and self._quantity is not None and not fills.quantity_unknown
            and fills.qty < self._quantity * (1 - _PARTIAL_TOLERANCE)
        ):
            return _PARTIAL
        return _FILLED

    def _record(self, exc: BaseException | None, result: object, duration_s: float) -> None:
        inst = self._inst
        if inst is None:  # telemetry failed when the trade started
            return
        outcome = self._outcome(exc)
        if inst.lean is not None:
            self._record_lean(inst.lean, exc, outcome, duration_s)
            return
        symbol, side = self._symbol, self._side
        metric_attrs: dict[str, Any] = {}
        if symbol is not None:
            metric_attrs[conv.TRADING_SYMBOL] = symbol
        if side is not None:
            metric_attrs[conv.TRADING_SIDE] = side
        if self._order_type is not None:
            metric_attrs[conv.TRADING_ORDER_TYPE] = self._order_type
        metric_attrs[conv.TRADING_OUTCOME] = outcome
        if exc is not None:
            metric_attrs[conv.ERROR_TYPE] = type(exc).__qualname__
        if self._timed:
            inst.duration.record(duration_s, metric_attrs)
        inst.trades.add(1, metric_attrs)

        span_attrs: dict[str, Any] = {conv.TRADING_OUTCOME: outcome}
        fill_qty, fill_price = self._fill(exc)
        if fill_qty is not None or fill_price is not None:
            self._record_fill(inst, span_attrs, fill_qty, fill_price)
        if self._reason is not None:
            span_attrs[conv.TRADING_REJECT_REASON] = self._reason
        span = self._span
        if span.is_recording():
            span.set_attributes(span_attrs)

    def _record_lean(
        self, lean: Any, exc: BaseException | None, outcome: str, duration_s: float
    ) -> None:
        # The same metrics as _record/_record_fill, into one aggregation (_trade_metrics).
        labels = (self._symbol, self._side, self._order_type, outcome,
                  None if exc is None else type(exc).__qualname__)
        span_attrs: dict[str, Any] = {conv.TRADING_OUTCOME: outcome}
        fill_qty, fill_price = self._fill(exc)
        notional = None
        direction = None
        bp = 0.0
        if fill_qty is not None and fill_qty > 0:
            span_attrs[conv.TRADING_FILL_QUANTITY] = fill_qty
            if fill_price is not None:
                notional = fill_qty * fill_price
        if fill_price is not None:
            span_attrs[conv.TRADING_FILL_PRICE] = fill_price
            fills = self._fills
            if fills is not None and fills.explicit_price and self._price is not None:
                slip = slippage_bp(self._side, self._price, fill_price)
                if slip is not None:
                    bp = abs(slip)
                    direction = _ADVERSE if slip > 0 else _FAVORABLE if slip < 0 else _NO_SLIPPAGE
                    span_attrs[conv.TRADING_SLIPPAGE_BP] = slip
        lean.record(labels, duration_s if self._timed else None, fill_qty, notional,
                    direction, bp)
        if self._reason is not None:
            span_attrs[conv.TRADING_REJECT_REASON] = self._reason
        span = self._span
        if span.is_recording():
            span.set_attributes(span_attrs)

    def _record_fill(
        self,
        inst: _Instruments,
        span_attrs: dict[str, Any],
        fill_qty: float | None,
        fill_price: float | None,
    ) -> None:
        # volume, notional and slippage: by symbol and side only (the contract)
        attrs: dict[str, Any] = {}
        if self._symbol is not None:
            attrs[conv.TRADING_SYMBOL] = self._symbol
        if self._side is not None:
            attrs[conv.TRADING_SIDE] = self._side
        if fill_qty is not None and fill_qty > 0:
            inst.volume.add(fill_qty, attrs)
            span_attrs[conv.TRADING_FILL_QUANTITY] = fill_qty
            if fill_price is not None:
                inst.notional.add(fill_qty * fill_price, attrs)
        if fill_price is None:
            return
        span_attrs[conv.TRADING_FILL_PRICE] = fill_price
        fills = self._fills
        if fills is None or not fills.explicit_price or self._price is None:
            return  # no fill price of its own was reported: nothing to compare
        bp = slippage_bp(self._side, self._price, fill_price)
        if bp is not None:
            # Histograms take no negative values: magnitude + direction.
            # A new dict: the SDK keeps the one a new series was created with.
            slip_attrs = dict(attrs)
            slip_attrs[conv.TRADING_SLIPPAGE_DIRECTION] = (
                _ADVERSE if bp > 0 else _FAVORABLE if bp < 0 else _NO_SLIPPAGE
            )
            inst.slippage.record(abs(bp), slip_attrs)
            span_attrs[conv.TRADING_SLIPPAGE_BP] = bp


class _IdleTrade(ActiveTrade):
    """A trade nothing can see (no SDK anywhere): no span, no clock, no metrics; it
    answers ``current_trade()`` with its symbol and side and accepts every call."""

    __slots__ = ()

    def __init__(self, site: str, symbol: str | None, side: str | None) -> None:
        # Every slot set directly (no clock read): this is the whole cost of an idle trade.
        self._span = trace.INVALID_SPAN
        self._component = _COMPONENT
        self._parent = None
        self._owner = None
        self._otel_token = None
        self._state_token = None
        self._done = False
        self._start_ns = 0
        self._inst = None
        self._site = site
        self._symbol = symbol
        self._side = side
        self._order_type = None
        self._quantity = None
        self._price = None
        self._timed = True
        self._fills = None
        self._rejected = False
        self._reason = None
        self._outcome_as = None

    def _end(
        self, exc: BaseException | None, result: object = None, *,
        exact: tuple[float, int] | None = None,
    ) -> None:
        self._done = True


class TradeScope(CallScope[ActiveTrade]):
    """A trade instrumentation: decorator, ``with`` and ``async with`` in one object.

    Build it with :func:`trade`. Each decorated call or ``with`` block is a separate
    trade with its own :class:`ActiveTrade`.
    """

    __slots__ = ("_order_type", "_params", "_price", "_quantity", "_side", "_symbol")
    _component = _COMPONENT
    _decorator_name = "trade"

    def __init__(
        self,
        *,
        symbol: object = None,
        side: object = None,
        quantity: object = None,
        price: object = None,
        order_type: object = None,
        params: Mapping[str, str | None] | None = None,
        site: str = "trade(...)",
    ) -> None:
        self._symbol = None if symbol is None else as_label(symbol)
        self._side = None if side is None else as_label(side, upper=True)
        self._order_type = None if order_type is None else as_label(order_type, upper=True)
        self._quantity = None if quantity is None else as_number(quantity, "quantity", site)
        self._price = None if price is None else as_number(price, "price", site)
        if params is None or params == _DEFAULT_PARAMS:
            self._params: Mapping[str, str] = _DEFAULT_PARAMS  # shared, never mutated
        else:
            names = dict(_DEFAULT_PARAMS)
            for role, name in params.items():
                if name is None:
                    names.pop(role, None)
                else:
                    names[role] = name
            self._params = names

    def __repr__(self) -> str:
        fixed = {
            "symbol": self._symbol, "side": self._side, "order_type": self._order_type,
            "quantity": self._quantity, "price": self._price,
        }
        shown = ", ".join(f"{k}={v!r}" for k, v in fixed.items() if v is not None)
        return f"trade({shown})"

    def _roles(self) -> Mapping[str, str]:
        return self._params

    def _begin(
        self, arguments: Mapping[str, Any] | None, site: str, start_time_ns: int | None = None
    ) -> ActiveTrade:
        inst = _instruments()
        if inst.idle():
            return self._idle(arguments, site)
        symbol, side, order_type = self._symbol, self._side, self._order_type
        quantity, price = self._quantity, self._price
        if arguments:
            # The call's own arguments are more specific than the decoration's.
            value = arguments.get("symbol")
            if value is not None:
                symbol = value if type(value) is str else as_label(value)
            value = arguments.get("side")
            if value is not None:
                side = as_label(value, upper=True)
            value = arguments.get("order_type")
            if value is not None:
                order_type = as_label(value, upper=True)
            value = arguments.get("quantity")
            if value is not None:
                quantity = value if type(value) is float else as_number(value, "quantity", site)
            value = arguments.get("price")
            if value is not None:
                price = value if type(value) is float else as_number(value, "price", site)
        attrs: dict[str, Any] = {}
        if symbol is not None:
            attrs[conv.TRADING_SYMBOL] = symbol
        if side is not None:
            attrs[conv.TRADING_SIDE] = side
        if order_type is not None:
            attrs[conv.TRADING_ORDER_TYPE] = order_type
        if quantity is not None:
            attrs[conv.TRADING_QUANTITY] = quantity
        if price is not None:
            attrs[conv.TRADING_PRICE] = price
        name = f"{conv.SPAN_TRADE} {symbol}" if symbol is not None else conv.SPAN_TRADE
        span = inst.tracer.start_span(name, attributes=attrs, start_time=start_time_ns)
        return ActiveTrade(span, inst, site, symbol, side, order_type, quantity, price)

    def _idle(self, arguments: Mapping[str, Any] | None, site: str) -> ActiveTrade:
        # No SDK anywhere (nothing configured, no provider installed): nothing can see
        # the trade, so no span and no metrics; the state serves current_trade() only.
        symbol, side = self._symbol, self._side
        if arguments:
            value = arguments.get("symbol")
            if value is not None:
                symbol = value if type(value) is str else as_label(value)
            value = arguments.get("side")
            if value is not None:
                side = as_label(value, upper=True)
        return _IdleTrade(site, symbol, side)

    def _disabled(self) -> ActiveTrade:
        return ActiveTrade(
            trace.INVALID_SPAN, None, "trade", self._symbol, self._side, self._order_type,
            self._quantity, self._price,
        )
