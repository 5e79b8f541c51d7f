"""What the dashboard's trading views show: rate-limit usage, recent trades, P&L by symbol.

``read_trading_view(metrics_data)`` reads the rate-limit gauges and realized P&L from one
collection of the in-memory reader (off the bot's thread). ``RecentTrades`` is a span
processor that keeps the last trades' spans in a bounded deque: its ``on_end`` runs on the
bot's thread, does a constant amount of work and never raises.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor

from otel_botmon import conventions as conv
from otel_botmon._internal import report_internal_error

__all__ = ["RATELIMIT_PREFIX", "RecentTrades", "read_trading_view", "recent_trades_for"]

RATELIMIT_PREFIX = "botmon.exchange.ratelimit."
_LEGACY_KIND = "ratelimit.kind"
_KIND_FIELD = {"weight": "used", "orders": "orders", "retry_after": "retry_after"}
"""``ratelimit.kind`` of the older single ``.used`` gauge -> the field it fills."""
_FIELDS = ("utilization", "used", "orders", "remaining", "retry_after")


def _points(data: Any) -> Iterator[tuple[str, dict[str, Any], float]]:
    if data is None:
        return
    for rm in getattr(data, "resource_metrics", ()):
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                name = metric.name
                if not (name.startswith(RATELIMIT_PREFIX) or name == conv.PNL_REALIZED.name):
                    continue
                for point in getattr(metric.data, "data_points", ()):
                    value = getattr(point, "value", None)
                    if value is not None:
                        yield name, dict(point.attributes or {}), float(value)


def read_trading_view(data: Any) -> dict[str, Any]:
    """``{"rate_limits": [...], "pnl_by_symbol": [...]}`` from one ``MetricsData``.

    Rate limits: one row per exchange, budget and interval with whatever is known of
    ``utilization`` (0..1), ``used``, ``orders``, ``remaining`` and ``retry_after`` (None
    when not reported), most used first. Works with the per-field instruments
    (``botmon.exchange.ratelimit.utilization`` ...) and with the single ``.used`` gauge
    split by ``ratelimit.kind``.
    """
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    pnl: dict[str, float] = {}
    for name, attrs, value in _points(data):
        if name == conv.PNL_REALIZED.name:
            symbol = str(attrs.get(conv.TRADING_SYMBOL, "") or "-")
            pnl[symbol] = pnl.get(symbol, 0.0) + value
            continue
        field = name[len(RATELIMIT_PREFIX):]
        kind = attrs.get(_LEGACY_KIND)
        if field == "used" and kind is not None:
            field = _KIND_FIELD.get(str(kind), "used")
        if field not in _FIELDS:
            continue
        key = (str(attrs.get(conv.EXCHANGE_NAME, "") or "-"),
               str(attrs.get(conv.RATELIMIT_BUDGET, "") or "-"),
               str(attrs.get(conv.RATELIMIT_INTERVAL, "") or "-"))
        row = rows.setdefault(key, {"exchange": key[0], "budget": key[1], "interval": key[2],
                                    **dict.fromkeys(_FIELDS)})
        row[field] = value
    _fold_retry_after(rows)
    limits = sorted(rows.values(), key=lambda r: (-(r["utilization"] or 0.0), r["exchange"],
                                                  r["budget"], r["interval"]))
    by_symbol = [{"symbol": s, "pnl": round(v, 8)} for s, v in sorted(
        pnl.items(), key=lambda item: item[1])]
    return {"rate_limits": limits, "pnl_by_symbol": by_symbol}


def _fold_retry_after(rows: dict[tuple[str, str, str], dict[str, Any]]) -> None:
    """``retry_after`` has no interval: show it on the budget's other rows, and keep a row
    of its own only when the budget has no other figures and it asks to wait."""
    for key in [k for k, r in rows.items() if k[2] == "-" and r["used"] is None
                and r["orders"] is None and r["utilization"] is None
                and r["remaining"] is None]:
        wait = rows[key]["retry_after"]
        siblings = [r for k, r in rows.items() if k[:2] == key[:2] and k != key]
        for sibling in siblings:
            sibling["retry_after"] = wait
        if siblings or not wait:
            del rows[key]


class RecentTrades(SpanProcessor):
    """Keeps the last ``maxlen`` trade spans (those with ``trading.outcome``) as dicts."""

    def __init__(self, maxlen: int = 50) -> None:
        self._trades: deque[tuple[int, int, Any]] = deque(maxlen=maxlen)

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        try:
            attrs = span.attributes
            if attrs is None or conv.TRADING_OUTCOME not in attrs:
                return
            # keep the immutable attribute mapping; it is read into a dict when shown
            self._trades.append((span.start_time or 0, span.end_time or 0, attrs))
        except Exception as exc:  # never into the bot's thread
            report_internal_error("dashboard.recent_trades", exc)

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True

    def snapshot(self, limit: int = 20) -> list[dict[str, Any]]:
        """The newest trades first: time, symbol, side, qty, price, slippage, outcome,
        latency (ms)."""
        items = list(self._trades)[-max(0, limit):]
        return [_trade_row(start, end, attrs) for start, end, attrs in reversed(items)]


def _number(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _trade_row(start: int, end: int, attrs: Any) -> dict[str, Any]:
    slippage = _number(attrs.get(conv.TRADING_SLIPPAGE_BP))
    direction = attrs.get(conv.TRADING_SLIPPAGE_DIRECTION)
    if slippage is not None and direction == "favorable":
        slippage = -slippage
    return {
        "time": (end or start) / 1e9 if (end or start) else time.time(),
        "symbol": str(attrs.get(conv.TRADING_SYMBOL, "")),
        "side": str(attrs.get(conv.TRADING_SIDE, "")),
        "quantity": _number(attrs.get(conv.TRADING_FILL_QUANTITY,
                                      attrs.get(conv.TRADING_QUANTITY))),
        "price": _number(attrs.get(conv.TRADING_FILL_PRICE, attrs.get(conv.TRADING_PRICE))),
        "slippage_bp": slippage,
        "outcome": str(attrs.get(conv.TRADING_OUTCOME, "")),
        "reason": str(attrs.get(conv.TRADING_REJECT_REASON, "") or ""),
        "latency_ms": round((end - start) / 1e6, 3) if end and start else None,
    }


def recent_trades_for(tracer_provider: Any) -> RecentTrades:
    """The ``RecentTrades`` of an SDK tracer provider, attached on first use (one per
    provider however many monitors ask); a detached one for other providers."""
    existing = getattr(tracer_provider, "_botmon_recent_trades", None)
    if isinstance(existing, RecentTrades):
        return existing
    recent = RecentTrades()
    add = getattr(tracer_provider, "add_span_processor", None)
    if add is not None:
        try:
            add(recent)
            tracer_provider._botmon_recent_trades = recent
        except Exception as exc:
            report_internal_error("dashboard.recent_trades", exc)
    return recent
