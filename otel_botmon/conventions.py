"""Every metric name, unit, attribute key and bucket boundary otel_botmon emits.

This module is the contract that the Grafana dashboards, the default alert rules and
users' own queries rely on. Change a name only together with ``dashboards/``, the
default rules and a CHANGELOG line.

Durations are in seconds (OpenTelemetry semantic conventions). The seed API's
millisecond arguments (``execution_time``, ``response_time``) are converted at the edge.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Final

INSTRUMENTATION_SCOPE: Final = "otel_botmon"

# --- attribute keys -------------------------------------------------------------------

TRADING_SYMBOL: Final = "trading.symbol"
TRADING_SIDE: Final = "trading.side"
TRADING_ORDER_TYPE: Final = "trading.order_type"
TRADING_OUTCOME: Final = "trading.outcome"
TRADING_RESULT: Final = "trading.result"
TRADING_QUANTITY: Final = "trading.quantity"
TRADING_PRICE: Final = "trading.price"
TRADING_FILL_PRICE: Final = "trading.fill_price"
TRADING_FILL_QUANTITY: Final = "trading.fill_quantity"
TRADING_SLIPPAGE_BP: Final = "trading.slippage_bp"
TRADING_SLIPPAGE_DIRECTION: Final = "trading.slippage.direction"
TRADING_REJECT_REASON: Final = "trading.reject_reason"
# span-only attributes of orders tracked with open_order() (never on metrics)
TRADING_ORDER_ID: Final = "trading.order_id"
TRADING_CANCEL_REASON: Final = "trading.cancel_reason"
TRADING_EXPIRED_BY: Final = "trading.expired_by"  # "ttl" or "cap" (evicted as the oldest)
ERROR_TYPE: Final = "error.type"

EXCHANGE_NAME: Final = "exchange.name"
EXCHANGE_ENDPOINT: Final = "exchange.endpoint"
HTTP_RESPONSE_STATUS_CODE: Final = "http.response.status_code"
RATELIMIT_INTERVAL: Final = "ratelimit.interval"
RATELIMIT_BUDGET: Final = "ratelimit.budget"

HEALTH_COMPONENT: Final = "health.component"
ALERT_SEVERITY: Final = "alert.severity"

# resource attributes beyond the semantic conventions' service.* and host.*
BOT_NAME: Final = "bot.name"
BOT_EXCHANGE: Final = "bot.exchange"
BOT_STRATEGY: Final = "bot.strategy"

# attributes of botmon.internal.errors
INTERNAL_COMPONENT: Final = "botmon.component"


class TradeOutcome(str, Enum):
    """Values of ``trading.outcome``."""

    FILLED = "filled"
    PARTIAL = "partial"
    REJECTED = "rejected"
    ERROR = "error"
    CANCELED = "canceled"  # an open order canceled before anything filled
    EXPIRED = "expired"  # an open order never finished within its TTL, or evicted


class PositionResult(str, Enum):
    """Values of ``trading.result`` on ``botmon.positions.closed``."""

    WIN = "win"
    LOSS = "loss"
    BREAKEVEN = "breakeven"


class SlippageDirection(str, Enum):
    """Values of ``trading.slippage.direction`` on ``botmon.trade.slippage``."""

    ADVERSE = "adverse"  # BUY filled above / SELL filled below the requested price
    FAVORABLE = "favorable"
    NONE = "none"  # filled at the requested price


class HealthValue(int, Enum):
    """Numeric values of the ``botmon.health.status`` gauge."""

    HEALTHY = 0
    DEGRADED = 1
    CRITICAL = 2
    UNKNOWN = 3


# --- instruments ------------------------------------------------------------------------


class InstrumentKind(str, Enum):
    COUNTER = "counter"
    UP_DOWN_COUNTER = "up_down_counter"
    HISTOGRAM = "histogram"
    GAUGE = "gauge"  # synchronous gauge (set) or observable gauge, see ``observable``


@dataclass(frozen=True)
class MetricSpec:
    """One row of the metric contract."""

    name: str
    kind: InstrumentKind
    unit: str
    description: str
    attributes: tuple[str, ...] = ()
    observable: bool = False


# Bucket boundaries for every duration histogram in seconds: 1 ms .. 10 s, with the
# seed's 2 s "slow trade" threshold on a boundary so p-quantiles around it are exact.
DURATION_BUCKETS_S: Final[tuple[float, ...]] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0,
)
# Slippage magnitude in basis points. OpenTelemetry histograms drop negative values, so
# the sign travels as the trading.slippage.direction attribute (the span keeps the signed
# trading.slippage_bp).
SLIPPAGE_BUCKETS_BP: Final[tuple[float, ...]] = (
    0.0, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0,
)

_TRADE_ATTRS = (TRADING_SYMBOL, TRADING_SIDE, TRADING_ORDER_TYPE, TRADING_OUTCOME, ERROR_TYPE)
_EXCHANGE_ATTRS = (EXCHANGE_NAME, EXCHANGE_ENDPOINT, HTTP_RESPONSE_STATUS_CODE, ERROR_TYPE)

TRADE_DURATION = MetricSpec(
    "botmon.trade.duration", InstrumentKind.HISTOGRAM, "s",
    "Time from order submission to the trade's outcome.", _TRADE_ATTRS,
)
TRADES = MetricSpec(
    "botmon.trades", InstrumentKind.COUNTER, "{trade}",
    "Trades attempted, by outcome.", _TRADE_ATTRS,
)
TRADE_VOLUME = MetricSpec(
    "botmon.trade.volume", InstrumentKind.COUNTER, "{unit}",
    "Filled base-asset quantity.", (TRADING_SYMBOL, TRADING_SIDE),
)
TRADE_NOTIONAL = MetricSpec(
    "botmon.trade.notional", InstrumentKind.COUNTER, "1",
    "Filled quantity times fill price, in quote currency.", (TRADING_SYMBOL, TRADING_SIDE),
)
TRADE_SLIPPAGE = MetricSpec(
    "botmon.trade.slippage", InstrumentKind.HISTOGRAM, "bp",
    "How far the fill price was from the requested price, in basis points; "
    "trading.slippage.direction says whether it was adverse or favorable.",
    (TRADING_SYMBOL, TRADING_SIDE, TRADING_SLIPPAGE_DIRECTION),
)
PNL_REALIZED = MetricSpec(
    "botmon.pnl.realized", InstrumentKind.UP_DOWN_COUNTER, "1",
    "Realized profit and loss (closed positions and partial exits), in quote currency.",
    (TRADING_SYMBOL,),
)
POSITIONS_CLOSED = MetricSpec(
    "botmon.positions.closed", InstrumentKind.COUNTER, "{position}",
    "Closed positions by result (win, loss, breakeven).", (TRADING_SYMBOL, TRADING_RESULT),
)
EXCHANGE_REQUEST_DURATION = MetricSpec(
    "botmon.exchange.request.duration", InstrumentKind.HISTOGRAM, "s",
    "Exchange API call latency.", _EXCHANGE_ATTRS,
)
EXCHANGE_REQUESTS = MetricSpec(
    "botmon.exchange.requests", InstrumentKind.COUNTER, "{request}",
    "Exchange API calls by status code and error type.", _EXCHANGE_ATTRS,
)
_RATELIMIT_ATTRS = (EXCHANGE_NAME, RATELIMIT_BUDGET, RATELIMIT_INTERVAL)
EXCHANGE_RATELIMIT_USED = MetricSpec(
    "botmon.exchange.ratelimit.used", InstrumentKind.GAUGE, "{weight}",
    "Request weight (or requests) used in the interval, from the last response's headers.",
    _RATELIMIT_ATTRS, observable=True,
)
EXCHANGE_RATELIMIT_ORDERS = MetricSpec(
    "botmon.exchange.ratelimit.orders", InstrumentKind.GAUGE, "{order}",
    "Orders placed in the interval, from the last response's headers.", _RATELIMIT_ATTRS,
    observable=True,
)
EXCHANGE_RATELIMIT_RETRY_AFTER = MetricSpec(
    "botmon.exchange.ratelimit.retry_after", InstrumentKind.GAUGE, "s",
    "Back-off the exchange asked for with Retry-After on a 418/429/503; 0 again after "
    "the next response without it.", (EXCHANGE_NAME, RATELIMIT_BUDGET), observable=True,
)
EXCHANGE_RATELIMIT_UTILIZATION = MetricSpec(
    "botmon.exchange.ratelimit.utilization", InstrumentKind.GAUGE, "1",
    "Share of the rate-limit budget used in the interval, 0..1 (the highest of weight "
    "and orders), where the limit is known.", _RATELIMIT_ATTRS, observable=True,
)
EXCHANGE_RATELIMIT_REMAINING = MetricSpec(
    "botmon.exchange.ratelimit.remaining", InstrumentKind.GAUGE, "{request}",
    "Requests (or weight) left in the interval, from the last response's headers, where "
    "the exchange reports it (HTX, BingX, Bybit, KuCoin, Gate.io, Alpaca, IETF RateLimit).",
    _RATELIMIT_ATTRS, observable=True,
)
HEALTH_STATUS = MetricSpec(
    "botmon.health.status", InstrumentKind.GAUGE, "1",
    "Component health: 0 healthy, 1 degraded, 2 critical, 3 unknown.", (HEALTH_COMPONENT,),
    observable=True,
)
HEALTH_CHECK_DURATION = MetricSpec(
    "botmon.health.check.duration", InstrumentKind.HISTOGRAM, "s",
    "Time a health check took.", (HEALTH_COMPONENT,),
)
ALERTS_ACTIVE = MetricSpec(
    "botmon.alerts.active", InstrumentKind.GAUGE, "{alert}",
    "Alerts currently firing, by severity.", (ALERT_SEVERITY,), observable=True,
)
INTERNAL_ERRORS = MetricSpec(
    "botmon.internal.errors", InstrumentKind.COUNTER, "{error}",
    "Errors inside otel_botmon that were caught so the bot could go on.",
    (INTERNAL_COMPONENT, ERROR_TYPE),
)
EVENT_LOOP_LAG = MetricSpec(
    "botmon.runtime.event_loop.lag", InstrumentKind.GAUGE, "s",
    "How late the asyncio event loop ran a callback scheduled on time.", (), observable=True,
)

# Host metrics use the OpenTelemetry semantic-convention names.
SYSTEM_CPU_UTILIZATION = MetricSpec(
    "system.cpu.utilization", InstrumentKind.GAUGE, "1",
    "Whole-host CPU utilization, 0..1.", (), observable=True,
)
SYSTEM_MEMORY_UTILIZATION = MetricSpec(
    "system.memory.utilization", InstrumentKind.GAUGE, "1",
    "Host memory in use, 0..1.", (), observable=True,
)
SYSTEM_FILESYSTEM_UTILIZATION = MetricSpec(
    "system.filesystem.utilization", InstrumentKind.GAUGE, "1",
    "Filesystem space in use, 0..1, per mountpoint.", ("system.filesystem.mountpoint",),
    observable=True,
)
SYSTEM_NETWORK_IO = MetricSpec(
    "system.network.io", InstrumentKind.COUNTER, "By",
    "Bytes sent and received by the host.", ("network.io.direction",), observable=True,
)
PROCESS_CPU_UTILIZATION = MetricSpec(
    "process.cpu.utilization", InstrumentKind.GAUGE, "1",
    "This process's CPU utilization, 0..1 of all CPUs (the semantic conventions' "
    "definition: CPU time over wall time times the CPU count).", (), observable=True,
)
PROCESS_MEMORY_USAGE = MetricSpec(
    "process.memory.usage", InstrumentKind.UP_DOWN_COUNTER, "By",
    "This process's resident memory.", (), observable=True,
)

ALL_METRICS: Final[tuple[MetricSpec, ...]] = (
    TRADE_DURATION, TRADES, TRADE_VOLUME, TRADE_NOTIONAL, TRADE_SLIPPAGE,
    PNL_REALIZED, POSITIONS_CLOSED,
    EXCHANGE_REQUEST_DURATION, EXCHANGE_REQUESTS, EXCHANGE_RATELIMIT_USED,
    EXCHANGE_RATELIMIT_ORDERS, EXCHANGE_RATELIMIT_RETRY_AFTER, EXCHANGE_RATELIMIT_UTILIZATION,
    EXCHANGE_RATELIMIT_REMAINING,
    HEALTH_STATUS, HEALTH_CHECK_DURATION, ALERTS_ACTIVE, INTERNAL_ERRORS, EVENT_LOOP_LAG,
    SYSTEM_CPU_UTILIZATION, SYSTEM_MEMORY_UTILIZATION, SYSTEM_FILESYSTEM_UTILIZATION,
    SYSTEM_NETWORK_IO, PROCESS_CPU_UTILIZATION, PROCESS_MEMORY_USAGE,
)

# Span names
SPAN_TRADE: Final = "trade"  # full name: "trade {symbol}" when the symbol is known
SPAN_EXCHANGE_CALL: Final = "exchange"  # full name: "exchange {endpoint}"

# Attribute cardinality cap per metric stream: beyond it the SDK folds new attribute
# sets into one overflow series instead of growing without bound.
CARDINALITY_LIMIT: Final = 1000


def by_name() -> dict[str, MetricSpec]:
    """The contract keyed by metric name."""
    return {spec.name: spec for spec in ALL_METRICS}
