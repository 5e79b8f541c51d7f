"""otel_botmon: OpenTelemetry monitoring for trading bots.

The public API, grouped by the module each name comes from. ``MonitoringDashboard`` needs
the ``dashboard`` extra (FastAPI, uvicorn) and is imported only when first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from otel_botmon.__about__ import __version__
from otel_botmon.alerting.default_rules import DEFAULT_RULES, default_rules
from otel_botmon.alerting.manager import AlertManager
from otel_botmon.alerting.model import (
    Alert,
    AlertRule,
    AlertSeverity,
    AlertState,
    AlertType,
    NotificationChannel,
)
from otel_botmon.alerting.rules import RuleFileError, load_rule_file
from otel_botmon.custom_metrics import Metric, MetricCategory, MetricType
from otel_botmon.exporters.influxdb_settings import InfluxDBSettings
from otel_botmon.instrument.aiohttp_client import instrument_aiohttp, uninstrument_aiohttp
from otel_botmon.instrument.ccxt import instrument_ccxt, uninstrument_ccxt
from otel_botmon.instrument.exchange import exchange_call, record_api_call
from otel_botmon.instrument.httpx import instrument_httpx, uninstrument_httpx
from otel_botmon.instrument.orders import (
    OrderHandle,
    expire_orders,
    open_order,
    open_order_count,
    order_canceled,
    order_filled,
    order_rejected,
    set_order_limits,
)
from otel_botmon.instrument.ratelimit import record_ratelimit_headers
from otel_botmon.instrument.requests_client import instrument_requests, uninstrument_requests
from otel_botmon.instrument.trading import (
    current_trade,
    record_position_closed,
    record_trade_execution,
    trade,
)
from otel_botmon.monitor import SystemMonitor
from otel_botmon.monitor_config import MonitoringConfig
from otel_botmon.notify.config import NotificationConfig
from otel_botmon.notify.dispatcher import NotificationDispatcher
from otel_botmon.observe.checks import (
    ExchangeApiCheck,
    InfluxDBCheck,
    NetworkCheck,
    SystemResourcesCheck,
    TradingEngineCheck,
    WebUICheck,
)
from otel_botmon.observe.health import HealthChecker, HealthCheckResult, HealthStatus
from otel_botmon.observe.host import HostObserver
from otel_botmon.performance import PerformanceMonitor
from otel_botmon.query import RuleSyntaxError, compile_condition
from otel_botmon.redaction import add_sensitive_keys, redact_text, register_secret
from otel_botmon.telemetry import (
    Telemetry,
    configure,
    get_meter,
    get_telemetry,
    get_tracer,
    shutdown,
)

if TYPE_CHECKING:
    from otel_botmon.dashboard.server import MonitoringDashboard

__all__ = [  # noqa: RUF022 - grouped by source module, as the house style asks
    # telemetry
    "__version__",
    "Telemetry",
    "configure",
    "get_meter",
    "get_telemetry",
    "get_tracer",
    "shutdown",
    # instrument.trading
    "current_trade",
    "record_position_closed",
    "record_trade_execution",
    "trade",
    # instrument.orders
    "OrderHandle",
    "expire_orders",
    "open_order",
    "open_order_count",
    "order_canceled",
    "order_filled",
    "order_rejected",
    "set_order_limits",
    # instrument.exchange
    "exchange_call",
    "record_api_call",
    # instrument.httpx, .requests_client, .aiohttp_client, .ccxt
    "instrument_httpx",
    "uninstrument_httpx",
    "instrument_requests",
    "uninstrument_requests",
    "instrument_aiohttp",
    "uninstrument_aiohttp",
    "instrument_ccxt",
    "uninstrument_ccxt",
    "record_ratelimit_headers",
    # redaction
    "add_sensitive_keys",
    "redact_text",
    "register_secret",
    # exporters
    "InfluxDBSettings",
    # observe
    "HealthCheckResult",
    "HealthChecker",
    "HealthStatus",
    "HostObserver",
    "ExchangeApiCheck",
    "InfluxDBCheck",
    "NetworkCheck",
    "SystemResourcesCheck",
    "TradingEngineCheck",
    "WebUICheck",
    # alerting
    "Alert",
    "AlertManager",
    "AlertRule",
    "AlertSeverity",
    "AlertState",
    "AlertType",
    "DEFAULT_RULES",
    "NotificationChannel",
    "RuleFileError",
    "RuleSyntaxError",
    "compile_condition",
    "default_rules",
    "load_rule_file",
    # notify
    "NotificationConfig",
    "NotificationDispatcher",
    # custom_metrics, performance
    "Metric",
    "MetricCategory",
    "MetricType",
    "PerformanceMonitor",
    # monitor
    "MonitoringConfig",
    "SystemMonitor",
    # dashboard (optional extra)
    "MonitoringDashboard",
]


def __getattr__(name: str) -> Any:
    if name == "MonitoringDashboard":
        try:
            from otel_botmon.dashboard.server import MonitoringDashboard
        except ImportError as exc:  # pragma: no cover - depends on the installed extras
            raise ImportError(
                "MonitoringDashboard needs the dashboard extra: "
                "pip install 'otel-botmon[dashboard]'"
            ) from exc
        return MonitoringDashboard
    raise AttributeError(f"module 'otel_botmon' has no attribute {name!r}")
