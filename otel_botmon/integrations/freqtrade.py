"""Freqtrade: one mixin gives a strategy trade spans, order outcomes, P&L and a heartbeat.

::

    from freqtrade.strategy import IStrategy
    from otel_botmon.integrations.freqtrade import BotmonStrategyMixin

    class MyStrategy(BotmonStrategyMixin, IStrategy):   # the mixin first
        ...                                             # your strategy, unchanged

What it wires (your own callbacks still run first, unchanged, and decide):

* ``bot_start``: ``otel_botmon.configure()`` unless the process already did (service
  ``freqtrade``, ``bot.name`` from the config's ``bot_name``, ``bot.exchange``, the
  strategy's class name), and the exchange's ccxt instances are instrumented with
  ``otel_botmon.instrument_ccxt`` when this otel_botmon has it;
* ``bot_loop_start``: a heartbeat on ``strategy.botmon_engine_check`` (a
  :class:`~otel_botmon.TradingEngineCheck`), exported as
  ``botmon.health.status{health.component="trading_engine"}`` with no monitor needed,
  expiry of stale open orders, and a look in Freqtrade's database for orders finished
  without a strategy callback (its ``unfilledtimeout``, a cancel on the exchange, a fill
  the loop saw first);
* ``confirm_trade_entry`` / ``confirm_trade_exit`` returning True: ``open_order`` with
  the pair, side, rate and order type Freqtrade is about to place, and the amount as
  Freqtrade will place it (rounded to the market's amount precision);
* ``order_filled``: the order finishes (``filled``, or ``partial``), with slippage from
  the confirmed rate. An exit that leaves the trade open (a partial exit:
  ``adjust_trade_position`` returning a negative stake) records the profit Freqtrade
  realized on it with ``record_realized_pnl``; the exit that closes the trade records
  ``record_position_closed(pair, trade.close_profit_abs, already_recorded=...)``, so the
  trade is one closed position and its realized P&L adds up to Freqtrade's
  ``close_profit_abs``. A fill with no confirm before it (stoploss on exchange, a
  restart) is still recorded, timed from the order's ``order_date``;
* ``check_entry_timeout`` / ``check_exit_timeout`` returning True: the order is
  ``canceled`` (``partial`` when part of it filled).

Your ``bot_loop_start`` or ``order_filled`` raising does not hide what happened (Freqtrade
logs the error and carries on): the loop still beats the heartbeat and the fill, with
its closed trade's P&L, is still recorded.

Only live and dry-run bots are wired: in backtesting and hyperopt (``config["runmode"]``)
the mixin records nothing, so simulated trades never reach the bot's telemetry.

Nothing here raises into Freqtrade: errors are logged once and counted in
``botmon.internal.errors`` (component ``freqtrade``).
"""

from __future__ import annotations

import functools
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from freqtrade.strategy import IStrategy
from opentelemetry.metrics import Observation

from otel_botmon import telemetry
from otel_botmon._internal import report_internal_error
from otel_botmon.conventions import HEALTH_COMPONENT
from otel_botmon.instrument.orders import (
    expire_orders,
    open_order,
    order_canceled,
    order_filled,
    order_rejected,
)
from otel_botmon.instrument.trading import (
    record_position_closed,
    record_realized_pnl,
    record_trade_execution,
)
from otel_botmon.observe.checks import TradingEngineCheck
from otel_botmon.observe.health import observe_health_status, parse_check_result

__all__ = ["BotmonStrategyMixin"]

logger = logging.getLogger("otel_botmon")

_COMPONENT = "freqtrade"
HEALTH_COMPONENT_NAME = "trading_engine"
"""``health.component`` of the heartbeat (the name ``SystemMonitor.heartbeat`` uses)."""
_DONE_ORDERS = 1024  # Freqtrade order ids already recorded, so no fill is recorded twice
_PARTLY_EXITED = 1024  # open trades whose realized profit this process recorded
_LIVE_RUNMODES = frozenset({"live", "dry_run"})
_CLOCK_SKEW = timedelta(seconds=30)
# A confirmed order not yet in the database may still be on its way to the exchange:
# Freqtrade's REST API (forceenter, forceexit) places orders on its own thread while the
# loop runs. Only after this long does the loop call it a placement that failed.
_PLACEMENT_GRACE = timedelta(seconds=60)
_CANCELED_STATES = frozenset({"canceled", "cancelled", "expired", "rejected"})
_WRAPPED = (
    "bot_start", "bot_loop_start", "confirm_trade_entry", "confirm_trade_exit",
    "order_filled", "check_entry_timeout", "check_exit_timeout",
)
# Callbacks that report what happened, whatever the strategy's own code does with it.
_OBSERVED = frozenset({"bot_loop_start", "order_filled"})
# The parameters Freqtrade passes, in order (it passes them by keyword today).
_PARAMS: dict[str, tuple[str, ...]] = {
    "bot_loop_start": ("current_time",),
    "confirm_trade_entry": ("pair", "order_type", "amount", "rate", "time_in_force",
                            "current_time", "entry_tag", "side"),
    "confirm_trade_exit": ("pair", "trade", "order_type", "amount", "rate", "time_in_force",
                           "exit_reason", "current_time"),
    "order_filled": ("pair", "trade", "order", "current_time"),
    "check_entry_timeout": ("pair", "trade", "order", "current_time"),
    "check_exit_timeout": ("pair", "trade", "order", "current_time"),
}


class _Pending:
    """An order confirmed to Freqtrade and tracked with ``open_order``."""

    __slots__ = ("key", "opened_at", "side")

    def __init__(self, key: str, side: str, opened_at: datetime) -> None:
        self.key = key
        self.side = side  # the Freqtrade order side: "buy" or "sell"
        self.opened_at = opened_at


class BotmonStrategyMixin(IStrategy):  # type: ignore[misc]  # freqtrade is untyped
    """Put first in the bases of a Freqtrade ``IStrategy`` subclass (see the module doc).

    An abstract ``IStrategy`` itself, so the bases in the other order
    (``IStrategy, BotmonStrategyMixin``, where ``IStrategy.__init__`` would never reach
    the mixin's) are a ``TypeError`` at class definition instead of a strategy that
    silently records nothing; and Freqtrade's hyperopt, which walks a strategy's bases up
    to ``IStrategy`` to pickle their modules by value, stops at the mixin's instead of
    reaching ``object`` (``builtins`` by value: ``PicklingError ... excessive recursion``).

    Class attributes to override: ``botmon_configure`` (False: never call
    ``configure()``), ``botmon_heartbeat_max_age_s`` (the engine check's limit; default
    ten loop intervals, at least 60 s).
    """

    botmon_configure: bool = True
    botmon_heartbeat_max_age_s: float | None = None

    def __init__(self, config: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self._botmon_lock = threading.Lock()
        self._botmon_pending: dict[tuple[str, str], _Pending] = {}
        # Orders the loop's look in the database finished before their order_filled came.
        self._botmon_done: OrderedDict[str, None] = OrderedDict()
        self._botmon_seq = 0
        # Trade id -> Freqtrade's realized_profit of the trade as recorded at its last exit.
        self._botmon_realized: OrderedDict[object, float] = OrderedDict()
        max_age = self.botmon_heartbeat_max_age_s
        if max_age is None:
            throttle = (config.get("internals") or {}).get("process_throttle_secs", 5)
            max_age = max(60.0, 10.0 * float(throttle or 5))
        self.botmon_engine_check = TradingEngineCheck(max_age_s=max_age)
        runmode = config.get("runmode")
        mode = str(getattr(runmode, "value", runmode or "")).lower()
        if mode and mode not in _LIVE_RUNMODES:
            return  # backtesting, hyperopt, plotting: simulated trades are not telemetry
        for name in _WRAPPED:
            user = getattr(self, name, None)
            if user is not None:
                setattr(self, name, self._botmon_wrap(name, user))

    def __getstate__(self) -> dict[str, Any]:
        # Hyperopt's workers get the strategy by (cloud)pickle; a lock does not pickle.
        state = dict(self.__dict__)
        state.pop("_botmon_lock", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._botmon_lock = threading.Lock()

    # --- wiring -----------------------------------------------------------------------

    def _botmon_wrap(self, name: str, user: Callable[..., Any]) -> Callable[..., Any]:
        after = getattr(self, f"_botmon_after_{name}")
        names = _PARAMS.get(name, ())
        observed = name in _OBSERVED

        def record(result: object, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            try:
                values = dict(zip(names, args, strict=False))
                values.update(kwargs)
                after(result, values)
            except Exception as exc:
                report_internal_error(_COMPONENT, exc)

        @functools.wraps(user)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                result = user(*args, **kwargs)  # the strategy's own callback decides
            except Exception:
                # Freqtrade logs it and goes on; what happened (a loop, a fill) still
                # did. A confirm or a timeout that raised decided nothing.
                if observed:
                    record(None, args, kwargs)
                raise
            record(result, args, kwargs)
            return result

        return wrapper

    def _botmon_after_bot_start(self, result: object, kw: dict[str, Any]) -> None:
        config: dict[str, Any] = getattr(self, "config", None) or {}
        if self.botmon_configure and telemetry.get_telemetry() is None:
            telemetry.configure(
                "freqtrade",
                bot_name=config.get("bot_name") or None,
                exchange=(config.get("exchange") or {}).get("name") or None,
                strategy=type(self).__name__,
            )
        self._botmon_instrument_exchange()
        observe_health_status(self._botmon_observe_health)

    def _botmon_observe_health(self) -> Iterable[Observation]:
        status, _message, _metrics = parse_check_result(
            HEALTH_COMPONENT_NAME, self.botmon_engine_check.evaluate())
        return [Observation(status.gauge_value, {HEALTH_COMPONENT: HEALTH_COMPONENT_NAME})]

    def _botmon_after_bot_loop_start(self, result: object, kw: dict[str, Any]) -> None:
        self.botmon_engine_check.heartbeat()
        expire_orders()
        now = kw.get("current_time")
        if not isinstance(now, datetime):
            now = datetime.now(UTC)
        elif now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
        self._botmon_reconcile(now)

    def _botmon_after_confirm_trade_entry(self, result: object, kw: dict[str, Any]) -> None:
        if not result:
            return  # the strategy vetoed it: no order is placed
        side = "sell" if kw.get("side") == "short" else "buy"
        self._botmon_open(kw.get("pair"), "entry", side, kw)

    def _botmon_after_confirm_trade_exit(self, result: object, kw: dict[str, Any]) -> None:
        if not result:
            return
        trade = kw.get("trade")
        side = str(getattr(trade, "exit_side", None) or "sell")
        self._botmon_open(kw.get("pair"), "exit", side, kw)

    def _botmon_after_order_filled(self, result: object, kw: dict[str, Any]) -> None:
        pair, trade, order = kw.get("pair"), kw.get("trade"), kw.get("order")
        if order is None:
            return
        kind = _kind(trade, order)
        with self._botmon_lock:
            pending = self._botmon_pending.pop((str(pair), kind), None)
            # The loop may have found this fill in the database and recorded it already.
            seen = pending is None and str(order.order_id) in self._botmon_done
            if seen:
                del self._botmon_done[str(order.order_id)]
        price, filled = order.safe_price, order.safe_filled
        if pending is not None:
            order_filled(pending.key, price, filled, final=True, cumulative=True)
        elif not seen:
            # No confirm before it (stoploss on exchange, a restart): still one trade.
            record_trade_execution(
                pair, _side(order, trade, kind), filled, price, _age_ms(order),
                requested_price=order.safe_placement_price, order_type=order.order_type,
                outcome="partial" if filled < (order.safe_amount or 0) * (1 - 1e-9)
                else "filled",
            )
        if kind == "exit" and trade is not None:
            self._botmon_exit_pnl(pair, trade, order)

    def _botmon_after_check_entry_timeout(self, result: object, kw: dict[str, Any]) -> None:
        self._botmon_timed_out(result, kw, "check_entry_timeout")

    def _botmon_after_check_exit_timeout(self, result: object, kw: dict[str, Any]) -> None:
        self._botmon_timed_out(result, kw, "check_exit_timeout")

    # --- helpers ----------------------------------------------------------------------

    def _botmon_open(self, pair: object, kind: str, side: str, kw: dict[str, Any]) -> None:
        amount = self._botmon_placed_amount(pair, kw.get("amount"))
        with self._botmon_lock:
            self._botmon_seq += 1
            key = f"freqtrade:{pair}:{kind}:{self._botmon_seq}"
            earlier = self._botmon_pending.get((str(pair), kind))
            self._botmon_pending[(str(pair), kind)] = _Pending(
                key, side, datetime.now(UTC)
            )
        if earlier is not None:
            # Freqtrade confirms an entry (or an exit) of a pair again only when the one
            # before placed no order (create_order failed; Freqtrade retries next loop):
            # that one ends now, canceled, not at the TTL as an expired order
            order_canceled(earlier.key, reason=(
                "confirmed again before any order was placed (the placement failed)"))
        open_order(key, pair, side, amount, kw.get("rate"), kw.get("order_type"))

    def _botmon_placed_amount(self, pair: object, amount: Any) -> Any:
        """``amount`` as Freqtrade will place it: cut to the market's amount precision
        (``Exchange.create_order`` does that after the confirm), so a full fill of the
        placed order is ``filled``, not ``partial``."""
        exchange = getattr(getattr(self, "dp", None), "_exchange", None)
        rounding = getattr(exchange, "amount_to_contract_precision", None)
        if rounding is None or not isinstance(amount, (int, float)):
            return amount
        try:
            return rounding(pair, amount)
        except Exception as exc:  # a pair without a market: keep what was confirmed
            report_internal_error(_COMPONENT, exc)
            return amount

    def _botmon_exit_pnl(self, pair: object, trade: Any, order: Any) -> None:
        """The profit Freqtrade realized on an exit, counted once over the trade's exits.

        A partial exit adds its profit at once; the closing exit counts the trade as a
        closed position (win or loss by its whole profit) and adds only what the earlier
        exits did not.
        """
        key = getattr(trade, "id", None) or id(trade)
        with self._botmon_lock:
            recorded = self._botmon_realized.pop(key, None)
        if recorded is None:  # no earlier exit, or one before this process started
            recorded = _realized_before(trade, order)
        if trade.is_open:
            realized = float(trade.realized_profit or 0.0)
            record_realized_pnl(pair, realized - recorded)
            with self._botmon_lock:
                self._botmon_realized[key] = realized
                if len(self._botmon_realized) > _PARTLY_EXITED:
                    self._botmon_realized.popitem(last=False)
            return
        profit = trade.close_profit_abs
        record_position_closed(
            pair, trade.realized_profit if profit is None else profit,
            already_recorded=recorded,
        )

    def _botmon_timed_out(self, result: object, kw: dict[str, Any], reason: str) -> None:
        if not result:
            return
        pair, order = kw.get("pair"), kw.get("order")
        if order is None:
            return
        kind = _kind(kw.get("trade"), order)
        with self._botmon_lock:
            pending = self._botmon_pending.pop((str(pair), kind), None)
        if pending is None:
            return
        filled = getattr(order, "safe_filled", 0.0) or 0.0
        if filled > 0:
            order_filled(pending.key, order.safe_price, filled, cumulative=True)
        order_canceled(pending.key, reason=reason)

    def _botmon_reconcile(self, now: datetime) -> None:
        """Finish pending orders that Freqtrade's database shows as no longer open."""
        with self._botmon_lock:
            pending = list(self._botmon_pending.items())
        if not pending:
            return
        for (pair, kind), item in pending:
            found = _placed_order(pair, item.side, item.opened_at - _CLOCK_SKEW)
            if found is not None and found.ft_is_open:
                continue  # still on the exchange
            if found is None and now - item.opened_at < _PLACEMENT_GRACE:
                continue  # maybe still being placed
            with self._botmon_lock:
                if self._botmon_pending.get((pair, kind)) is not item:
                    continue  # order_filled came first
                del self._botmon_pending[(pair, kind)]
                if found is not None:
                    # Its order_filled callback may still come (Freqtrade commits the
                    # order before calling it, and the loop can run in between).
                    self._botmon_done[str(found.order_id)] = None
                    if len(self._botmon_done) > _DONE_ORDERS:
                        self._botmon_done.popitem(last=False)
            if found is None:
                order_canceled(item.key, reason=(
                    "no order in freqtrade's database after the confirm (placement failed, "
                    "or an entry canceled unfilled and deleted)"
                ))
                continue
            status = str(found.status or "").lower()
            filled = found.safe_filled
            if filled > 0:
                order_filled(item.key, found.safe_price, filled, final=True, cumulative=True)
            elif status == "rejected":
                order_rejected(item.key, reason=f"freqtrade: order {status}")
            else:
                order_canceled(item.key, reason=f"freqtrade: order {status or 'closed'}")

    def _botmon_instrument_exchange(self) -> None:
        """Instrument the ccxt instances behind Freqtrade's exchange, when possible."""
        import otel_botmon

        instrument = getattr(otel_botmon, "instrument_ccxt", None)
        # Freqtrade gives strategies its exchange only through the data provider.
        exchange = getattr(getattr(self, "dp", None), "_exchange", None)
        apis = [getattr(exchange, name, None) for name in ("_api", "_api_async", "_ws_async")]
        apis = [api for api in apis if api is not None]
        if instrument is None or not apis:
            logger.info(
                "otel_botmon: Freqtrade's exchange is not instrumented (%s)",
                "this otel_botmon has no instrument_ccxt" if instrument is None
                else "no exchange on the strategy's data provider",
            )
            return
        for api in apis:
            instrument(api)


def _placed_order(pair: str, side: str, since: datetime) -> Any:
    """The newest ``side`` order of ``pair`` placed since ``since`` (the exchange's clock
    may be a little behind ours), in open trades and in trades closed since then (an
    exit that closed its trade). A canceled entry that filled nothing is deleted with its
    trade; older history stays unread."""
    from freqtrade.persistence import Trade

    found = None
    trades = [*Trade.get_trades_proxy(pair=pair, is_open=True),
              *Trade.get_trades_proxy(pair=pair, close_date=since)]
    for trade in trades:
        for order in trade.orders:
            if order.ft_order_side != side or order.order_date_utc < since:
                continue
            if found is None or order.order_date_utc >= found.order_date_utc:
                found = order
    return found


def _realized_before(trade: Any, order: Any) -> float:
    """Freqtrade's realized profit of ``trade`` before its exit ``order`` filled.

    Zero unless the trade has other filled exits. After a partial exit Freqtrade keeps
    the trade's realized profit in ``realized_profit`` and the newest exit's in
    ``close_profit_abs``; once closed, ``close_profit_abs`` is the whole trade's and this
    exit's profit is Freqtrade's ``calculate_profit`` of it against the trade's average
    entry (``open_rate``), as Freqtrade's own exit notification computes it.
    """
    entry_side = getattr(trade, "entry_side", None)
    this = str(getattr(order, "order_id", ""))
    if not any(
        o.ft_order_side != entry_side and not o.ft_is_open and o.safe_filled > 0
        and str(o.order_id) != this
        for o in getattr(trade, "orders", ())
    ):
        return 0.0
    if trade.is_open:
        return float((trade.realized_profit or 0.0) - (trade.close_profit_abs or 0.0))
    last = trade.calculate_profit(order.safe_price, order.safe_amount_after_fee, trade.open_rate)
    total = trade.close_profit_abs
    return float((trade.realized_profit if total is None else total) - last.profit_abs)


def _kind(trade: Any, order: Any) -> str:
    entry_side = getattr(trade, "entry_side", None)
    if entry_side is not None and getattr(order, "ft_order_side", None) == entry_side:
        return "entry"
    return "exit"


def _side(order: Any, trade: Any, kind: str) -> str:
    side = getattr(order, "ft_order_side", None)
    if side in ("buy", "sell"):
        return str(side)
    return str(getattr(trade, "exit_side", None) or "sell")  # a stoploss order exits


def _age_ms(order: Any) -> float | None:
    placed = getattr(order, "order_date_utc", None)
    if placed is None:
        return None
    now = datetime.now(UTC)
    return max(float((now - placed).total_seconds()) * 1000.0, 0.0)
