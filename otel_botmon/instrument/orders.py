"""Orders that span callbacks: open one now, finish it later from anywhere.

``with trade(...)`` needs the order's whole life inside one block. Many bots place an
order in one callback and hear about its fill in another (a websocket handler, a
Freqtrade ``order_filled`` callback, another thread or asyncio task)::

    botmon.open_order(order["id"], "BTC/USDT", "buy", 0.01, 45000.0, "limit")
    ...                                   # later, anywhere
    botmon.order_filled(order["id"], price=45010.0, quantity=0.01)

Finishing an order records what ``trade`` records (one ``trade {symbol}`` span, started
at the ``open_order`` time so it shows the order's real duration, and
``botmon.trade.duration``, ``botmon.trades`` by outcome, volume, notional and slippage
from the requested price). Outcomes: ``filled``; ``partial`` (a final fill below the
requested quantity, or a cancel after a partial fill); ``rejected``; ``canceled``
(nothing filled); ``expired`` (never finished within the TTL, or evicted as the oldest
when more than ``max_open`` orders are open).

Bounded: at most ``max_open`` orders (default 10,000) are tracked; an order older than
``ttl_s`` (default 24 h) is finished as ``expired`` by the sweep that every call here
runs on a few of the oldest orders (O(1) when none is due) and that ``expire_orders()``
runs in full. Thread-safe; nothing here raises into the bot. An unknown order id is
logged once and counted in ``botmon.internal.errors`` (component ``orders``); its fill
or rejection is still recorded as a trade (without symbol or duration) so no trade is
lost. An event for an id that finished recently (the last 4,096) is a duplicate and is
not counted twice, except a fill of an order that had expired: it is recorded as a
filled trade as well (the exchange filled it after the tracking gave up).
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict, deque
from itertools import islice
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext

from otel_botmon import conventions as conv
from otel_botmon._internal import report_internal_error
from otel_botmon.instrument._trade import _PARTIAL_TOLERANCE, TradeScope
from otel_botmon.instrument._values import as_label, as_number, warn_once
from otel_botmon.redaction import redact_text

__all__ = [
    "OrderHandle",
    "OrderTrackingError",
    "expire_orders",
    "open_order",
    "open_order_count",
    "order_canceled",
    "order_filled",
    "order_rejected",
    "set_order_limits",
]

_COMPONENT = "orders"
_FILLED = conv.TradeOutcome.FILLED.value
_PARTIAL = conv.TradeOutcome.PARTIAL.value
_REJECTED = conv.TradeOutcome.REJECTED.value
_CANCELED = conv.TradeOutcome.CANCELED.value
_EXPIRED = conv.TradeOutcome.EXPIRED.value
_DEFAULT_MAX_OPEN = 10_000
_DEFAULT_TTL_S = 24 * 3600.0
_RECENT = 4096  # finished ids remembered to recognise duplicates and late events
_SWEEP_PER_CALL = 32  # expired orders finished per API call at most (bounded work)
_MAX_REASON_CHARS = 256


class OrderTrackingError(LookupError):
    """An order event otel_botmon could not match (reported, never raised)."""


class UnknownOrderError(OrderTrackingError):
    """An event for an order id that was never opened (or was forgotten long ago)."""


class OrderAlreadyFinishedError(OrderTrackingError):
    """An event for an order that already finished (a duplicate or late callback)."""


class _Order:
    """One open order. Plain values only: the span is created when it finishes."""

    __slots__ = ("fills", "oid", "order_type", "parent", "perf_ns", "price", "quantity",
                 "side", "symbol", "wall_ns")

    def __init__(
        self,
        oid: str,
        symbol: str | None,
        side: str | None,
        order_type: str | None,
        quantity: float | None,
        price: float | None,
        parent: SpanContext | None,
    ) -> None:
        self.oid = oid
        self.symbol = symbol
        self.side = side
        self.order_type = order_type
        self.quantity = quantity
        self.price = price
        self.parent = parent
        self.wall_ns = time.time_ns()
        self.perf_ns = time.perf_counter_ns()
        # (price, quantity) of each fill; quantity None: a price without a known quantity
        self.fills: list[tuple[float | None, float | None]] | None = None

    def filled_quantity(self) -> float:
        fills = self.fills
        return 0.0 if fills is None else sum(qty for _, qty in fills if qty is not None)


class OrderHandle:
    """What :func:`open_order` returns: finish the order through it or by its id."""

    __slots__ = ("_book", "order_id")

    def __init__(self, book: OpenOrders, order_id: str) -> None:
        self._book = book
        self.order_id = order_id

    def __repr__(self) -> str:
        return f"OrderHandle({self.order_id!r})"

    @property
    def is_open(self) -> bool:
        """True while the order is tracked (not finished, expired or evicted)."""
        return self._book.is_open(self.order_id)

    def filled(
        self, price: object = None, quantity: object = None, *,
        final: bool = False, cumulative: bool = False,
    ) -> None:
        """Same as :func:`order_filled` for this order."""
        self._book.filled(self.order_id, price, quantity, final=final, cumulative=cumulative)

    def rejected(self, reason: object = None) -> None:
        """Same as :func:`order_rejected` for this order."""
        self._book.rejected(self.order_id, reason)

    def canceled(self, reason: object = None) -> None:
        """Same as :func:`order_canceled` for this order."""
        self._book.canceled(self.order_id, reason)


class _Recent(dict[str, "_Order | None"]):
    """Finished ids (an expired order is kept for a late fill), with ``ids``: the same ids
    in the order they were first remembered, oldest first. A plain dict and a deque drop
    the oldest for a fraction of what an OrderedDict's popitem costs; one object, so that
    a ``clear()`` racing a sweep replaces both at once (the sweep then writes into the
    old pair, consistent with itself)."""

    __slots__ = ("ids",)

    def __init__(self) -> None:
        super().__init__()
        self.ids: deque[str] = deque()


class OpenOrders:
    """The registry of open orders (one per process: the module functions use it)."""

    def __init__(self, max_open: int = _DEFAULT_MAX_OPEN, ttl_s: float = _DEFAULT_TTL_S) -> None:
        self._lock = threading.Lock()
        self._open: OrderedDict[str, _Order] = OrderedDict()  # oldest first
        self._recent = _Recent()
        self._max_open = max_open
        self._ttl_ns = int(ttl_s * 1e9)
        self._next_id = 0

    # --- settings and inspection ------------------------------------------------------

    def set_limits(self, max_open: int | None = None, ttl_s: float | None = None) -> None:
        if max_open is not None:
            if not max_open >= 1:
                raise ValueError(f"max_open must be >= 1, got {max_open!r}")
            self._max_open = int(max_open)
        if ttl_s is not None:
            if not ttl_s > 0:
                raise ValueError(f"ttl_s must be > 0, got {ttl_s!r}")
            self._ttl_ns = int(ttl_s * 1e9)

    def __len__(self) -> int:
        return len(self._open)

    def is_open(self, order_id: object) -> bool:
        return str(order_id) in self._open

    def clear(self) -> None:
        """Forget every open and recent order without recording anything (tests, fork)."""
        self._lock = threading.Lock()
        self._open = OrderedDict()
        self._recent = _Recent()

    # --- events -----------------------------------------------------------------------

    def open(
        self,
        order_id: object,
        symbol: object,
        side: object,
        quantity: object = None,
        price: object = None,
        order_type: object = None,
    ) -> OrderHandle:
        site = "open_order"
        try:
            if order_id is None:
                with self._lock:
                    self._next_id += 1
                    oid = f"botmon-{self._next_id}"
                warn_once(site, "order_id", (
                    "otel_botmon: open_order() got order_id=None; the order is tracked "
                    f"as {oid!r} through its handle (warned once)"
                ))
            else:
                oid = order_id if type(order_id) is str else str(order_id)
            parent = trace.get_current_span().get_span_context()
            order = _Order(
                oid,
                None if symbol is None else as_label(symbol),
                None if side is None else as_label(side, upper=True),
                None if order_type is None else as_label(order_type, upper=True),
                None if quantity is None else as_number(quantity, "quantity", site),
                None if price is None else as_number(price, "price", site),
                parent if parent.is_valid else None,
            )
            evicted: _Order | None = None
            with self._lock:
                if oid in self._open:
                    duplicate = True
                else:
                    duplicate = False
                    if len(self._open) >= self._max_open:
                        evicted = self._open.popitem(last=False)[1]
                        self._remember(evicted.oid, evicted)
                    self._open[oid] = order
            if duplicate:
                report_internal_error(_COMPONENT, OrderTrackingError(
                    f"open_order: order id {oid!r} is already open; the first one is kept"
                ))
            if evicted is not None:
                warn_once(site, "max_open", (
                    f"otel_botmon: more than {self._max_open} open orders; the oldest are "
                    "finished as expired (raise it with set_order_limits(max_open=...); "
                    "warned once)"
                ))
                _record(evicted, _EXPIRED, None, "cap")
            self._sweep(_SWEEP_PER_CALL)
            return OrderHandle(self, oid)
        except Exception as exc:
            report_internal_error(_COMPONENT, exc)
            return OrderHandle(self, "" if order_id is None else str(order_id))

    def filled(
        self, order_id: object, price: object = None, quantity: object = None, *,
        final: bool = False, cumulative: bool = False,
    ) -> None:
        site = "order_filled"
        try:
            fill_price = None if price is None else as_number(price, "fill price", site)
            qty = None if quantity is None else as_number(quantity, "fill quantity", site)
            oid = str(order_id)
            with self._lock:
                order = self._open.get(oid)
                if order is not None:
                    done = self._add_fill(order, fill_price, qty, final, cumulative)
                    if done:
                        del self._open[oid]
                        self._remember(oid)
            if order is None:
                self._unmatched(oid, site, _FILLED, fill_price, qty)
            elif done:
                requested = order.quantity
                outcome = _FILLED
                if (
                    requested is not None
                    and order.filled_quantity() < requested * (1 - _PARTIAL_TOLERANCE)
                ):
                    outcome = _PARTIAL
                _record(order, outcome, None, None)
            self._sweep(_SWEEP_PER_CALL)
        except Exception as exc:
            report_internal_error(_COMPONENT, exc)

    def rejected(self, order_id: object, reason: object = None) -> None:
        self._finish(order_id, _REJECTED, reason, "order_rejected")

    def canceled(self, order_id: object, reason: object = None) -> None:
        self._finish(order_id, _CANCELED, reason, "order_canceled")

    def sweep(self, limit: int | None = None) -> int:
        """Finish the orders past their TTL as ``expired``; how many it finished."""
        try:
            return self._sweep(limit)
        except Exception as exc:
            report_internal_error(_COMPONENT, exc)
            return 0

    # --- internals --------------------------------------------------------------------

    @staticmethod
    def _add_fill(
        order: _Order, price: float | None, qty: float | None, final: bool, cumulative: bool
    ) -> bool:
        """Add one fill to ``order`` (under the lock); True when the order is complete."""
        requested = order.quantity
        if qty is None:
            # No quantity: the rest of the order (all of it when nothing is known).
            so_far = order.filled_quantity()
            qty = None if requested is None else max(requested - so_far, 0.0)
            if (qty is not None and (qty > 0 or order.fills is None)) or (
                qty is None and price is not None
            ):
                order.fills = [*(order.fills or ()), (price, qty)]
            return True
        if cumulative or order.fills is None:
            order.fills = [(price, qty)]
        else:
            order.fills.append((price, qty))
        if final or requested is None:
            return True
        return order.filled_quantity() >= requested * (1 - _PARTIAL_TOLERANCE)

    def _finish(self, order_id: object, outcome: str, reason: object, site: str) -> None:
        try:
            oid = str(order_id)
            with self._lock:
                order = self._open.pop(oid, None)
                if order is not None:
                    self._remember(oid)
            text = None
            if reason is not None:
                # Reasons are often exchange errors that quote signed URLs.
                text = redact_text(str(reason))[:_MAX_REASON_CHARS]
            if order is None:
                self._unmatched(oid, site, outcome, None, None, text)
            else:
                if outcome == _CANCELED and order.filled_quantity() > 0:
                    outcome = _PARTIAL  # canceled after a partial fill
                _record(order, outcome, text, None)
            self._sweep(_SWEEP_PER_CALL)
        except Exception as exc:
            report_internal_error(_COMPONENT, exc)

    def _remember(self, oid: str, expired: _Order | None = None) -> None:
        recent = self._recent
        if oid not in recent:  # an id remembered again keeps its place
            recent.ids.append(oid)
        recent[oid] = expired
        if len(recent) > _RECENT:
            del recent[recent.ids.popleft()]

    def _unmatched(
        self, oid: str, site: str, outcome: str, price: float | None, qty: float | None,
        reason: str | None = None,
    ) -> None:
        """An event for an order that is not open: report it; record it when new."""
        with self._lock:
            known = oid in self._recent
            expired = self._recent.get(oid)
            if expired is not None and outcome == _FILLED:
                self._recent[oid] = None  # one late fill only
        if expired is not None and outcome == _FILLED:
            # The tracking gave up on it, the exchange did not: the fill still counts.
            report_internal_error(_COMPONENT, OrderAlreadyFinishedError(
                f"{site}: order id {oid!r} filled after it expired; recorded as a filled "
                "trade too"
            ))
            late = _Order(oid, expired.symbol, expired.side, expired.order_type,
                          expired.quantity, expired.price, expired.parent)
            late.wall_ns, late.perf_ns = expired.wall_ns, expired.perf_ns
            if qty is None:  # the rest of it
                qty = max((expired.quantity or 0.0) - expired.filled_quantity(), 0.0)
            late.fills = [(price, qty)]
            _record(late, _FILLED, None, None)
            return
        if known:
            report_internal_error(_COMPONENT, OrderAlreadyFinishedError(
                f"{site}: order id {oid!r} already finished (a duplicate or late event); "
                "not counted again"
            ))
            return
        report_internal_error(_COMPONENT, UnknownOrderError(
            f"{site}: unknown order id {oid!r} (never passed to open_order, or forgotten); "
            "recorded as a trade without symbol, side or duration"
        ))
        with self._lock:
            self._remember(oid)
        order = _Order(oid, None, None, None, None, None, None)
        if outcome == _FILLED and (qty is not None or price is not None):
            order.fills = [(price, qty)]
        _record(order, outcome, reason, None, timed=False)

    def _sweep(self, limit: int | None) -> int:
        deadline = time.perf_counter_ns() - self._ttl_ns
        with self._lock:
            pending, recent = self._open, self._recent
            if not pending or next(iter(pending.values())).perf_ns > deadline:
                return 0  # the usual case: the oldest order is not due
            due: list[_Order] = []
            append = due.append
            for order in islice(pending.values(), limit):
                if order.perf_ns > deadline:  # oldest first: nothing later is due either
                    break
                append(order)
            if len(due) == len(pending):
                pending.clear()
            else:
                for order in due:
                    del pending[order.oid]
            ids_append = recent.ids.append
            for order in due:
                oid = order.oid
                if oid not in recent:  # an id remembered again keeps its place
                    ids_append(oid)
                recent[oid] = order  # kept for a late fill
            popleft = recent.ids.popleft
            for _ in range(len(recent) - _RECENT):
                del recent[popleft()]
        record = _record
        for order in due:
            record(order, _EXPIRED, None, "ttl")
        return len(due)


def _record(
    order: _Order, outcome: str, reason: str | None, expired_by: str | None,
    *, timed: bool = True,
) -> None:
    """Record the finished order as one trade: span (back-dated to the open) + metrics."""
    site = "order"
    scope = TradeScope(
        symbol=order.symbol, side=order.side, quantity=order.quantity, price=order.price,
        order_type=order.order_type, site=site,
    )
    # The span belongs where the order was opened (or is a root), not where it finished.
    parent = order.parent
    ctx = trace.set_span_in_context(
        NonRecordingSpan(parent) if parent is not None else trace.INVALID_SPAN,
        otel_context.Context(),
    )
    token = otel_context.attach(ctx)
    try:
        state = scope._begin(None, site, start_time_ns=order.wall_ns)
    finally:
        otel_context.detach(token)
    state._start_ns = order.perf_ns
    state._timed = timed
    if order.fills is not None:
        for price, qty in order.fills:
            state.filled(price=price, quantity=qty)
    if outcome == _REJECTED:
        state.rejected(reason)
    else:
        state._outcome_as = outcome
    span = state.span
    if span.is_recording():
        attrs: dict[str, Any] = {conv.TRADING_ORDER_ID: order.oid}
        if expired_by is not None:
            attrs[conv.TRADING_EXPIRED_BY] = expired_by
        if reason is not None and outcome != _REJECTED:
            attrs[conv.TRADING_CANCEL_REASON] = reason
        span.set_attributes(attrs)
    state._end(None)


_BOOK = OpenOrders()


def _reset_after_fork() -> None:
    # The child's open orders are its parent's: it will not hear about their fills.
    _BOOK.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def open_order(
    order_id: object,
    symbol: object,
    side: object,
    quantity: object = None,
    price: object = None,
    order_type: object = None,
) -> OrderHandle:
    """Start tracking an order placed on the exchange; finish it later by its id.

    ``order_id`` is the exchange's (or your client's) id; ints and strings are the same
    id (``123`` == ``"123"``). ``price`` is the requested price, the reference for
    slippage. Returns an :class:`OrderHandle`; never raises.
    """
    return _BOOK.open(order_id, symbol, side, quantity, price, order_type)


def order_filled(
    order_id: object, price: object = None, quantity: object = None, *,
    final: bool = False, cumulative: bool = False,
) -> None:
    """Report a fill of an open order (call again for each partial fill).

    ``quantity`` is this fill's quantity, added to the earlier fills (or, with
    ``cumulative=True``, the order's total filled so far, with ``price`` its average).
    The order finishes when the filled total reaches the requested quantity, when
    ``quantity`` is omitted (the rest filled), or with ``final=True`` (``partial`` if
    short). ``price`` defaults to the requested price (then no slippage is recorded).
    """
    _BOOK.filled(order_id, price, quantity, final=final, cumulative=cumulative)


def order_rejected(order_id: object, reason: object = None) -> None:
    """Finish an open order as ``rejected``; ``reason`` goes on the span (redacted)."""
    _BOOK.rejected(order_id, reason)


def order_canceled(order_id: object, reason: object = None) -> None:
    """Finish an open order as ``canceled`` (``partial`` when part of it had filled)."""
    _BOOK.canceled(order_id, reason)


def set_order_limits(max_open: int | None = None, ttl_s: float | None = None) -> None:
    """Change how many orders may be open (oldest evicted) and when they expire.

    Raises ValueError for ``max_open < 1`` or ``ttl_s <= 0`` (a configuration error).
    """
    _BOOK.set_limits(max_open, ttl_s)


def expire_orders() -> int:
    """Finish every order older than the TTL as ``expired`` now; returns how many.

    Every other call in this module already expires a few of the oldest; call this
    from a periodic task when the bot may go quiet for longer than the TTL.
    """
    return _BOOK.sweep(None)


def open_order_count() -> int:
    """How many orders are being tracked."""
    return len(_BOOK)
