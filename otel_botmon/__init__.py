"""otel_botmon: OpenTelemetry monitoring for trading bots.

The public API, grouped by the module each name comes from. ``import otel_botmon`` loads
what the decorators need (telemetry, trades, orders, exchange calls, redaction); the
monitor, alerting, notification, health, HTTP-client and dashboard names are imported on
first use. ``MonitoringDashboard`` needs the ``dashboard`` extra (FastAPI, uvicorn).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from otel_botmon.__about__ import __version__
from otel_botmon.instrument.exchange import exchange_call, record_api_call
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
from otel_botmon.instrument.trading import (
    current_trade,
    record_position_closed,
    record_realized_pnl,
    record_trade_execution,
    trade,
)
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
    from otel_botmon.dashboard.server import MonitoringDashboard
    from otel_botmon.exporters.influxdb_settings import InfluxDBSettings
    from otel_botmon.instrument.aiohttp_client import instrument_aiohttp, uninstrument_aiohttp
    from otel_botmon.instrument.ccxt import instrument_ccxt, uninstrument_ccxt
    from otel_botmon.instrument.httpx import instrument_httpx, uninstrument_httpx
    from otel_botmon.instrument.ratelimit import record_ratelimit_headers
    from otel_botmon.instrument.requests_client import (
        instrument_requests,
        uninstrument_requests,
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

# Imported on first use (module __getattr__): a bot that only decorates its trades loads
# neither the alert engine, the notifiers, the HTTP client integrations nor the dashboard.
_LAZY: dict[str, str] = {
    **dict.fromkeys(("DEFAULT_RULES", "default_rules"), "otel_botmon.alerting.default_rules"),
    **dict.fromkeys(("RuleSyntaxError", "compile_condition"), "otel_botmon.query"),
    "AlertManager": "otel_botmon.alerting.manager",
    **dict.fromkeys(("Alert", "AlertRule", "AlertSeverity", "AlertState", "AlertType",
                     "NotificationChannel"), "otel_botmon.alerting.model"),
    **dict.fromkeys(("RuleFileError", "load_rule_file"), "otel_botmon.alerting.rules"),
    **dict.fromkeys(("Metric", "MetricCategory", "MetricType"), "otel_botmon.custom_metrics"),
    "InfluxDBSettings": "otel_botmon.exporters.influxdb_settings",
    **dict.fromkeys(("instrument_aiohttp", "uninstrument_aiohttp"),
                    "otel_botmon.instrument.aiohttp_client"),
    **dict.fromkeys(("instrument_ccxt", "uninstrument_ccxt"), "otel_botmon.instrument.ccxt"),
    **dict.fromkeys(("instrument_httpx", "uninstrument_httpx"), "otel_botmon.instrument.httpx"),
    "record_ratelimit_headers": "otel_botmon.instrument.ratelimit",
    **dict.fromkeys(("instrument_requests", "uninstrument_requests"),
                    "otel_botmon.instrument.requests_client"),
    "SystemMonitor": "otel_botmon.monitor",
    "MonitoringConfig": "otel_botmon.monitor_config",
    "NotificationConfig": "otel_botmon.notify.config",
    "NotificationDispatcher": "otel_botmon.notify.dispatcher",
    **dict.fromkeys(("ExchangeApiCheck", "InfluxDBCheck", "NetworkCheck",
                     "SystemResourcesCheck", "TradingEngineCheck", "WebUICheck"),
                    "otel_botmon.observe.checks"),
    **dict.fromkeys(("HealthChecker", "HealthCheckResult", "HealthStatus"),
                    "otel_botmon.observe.health"),
    "HostObserver": "otel_botmon.observe.host",
    "PerformanceMonitor": "otel_botmon.performance",
    "MonitoringDashboard": "otel_botmon.dashboard.server",
}

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
    "record_realized_pnl",
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
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'otel_botmon' has no attribute {name!r}")
    import importlib

    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        if name == "MonitoringDashboard":
            raise ImportError(
                "MonitoringDashboard needs the dashboard extra: "
                "pip install 'otel-botmon[dashboard]'"
            ) from exc
        raise
    value = getattr(module, name)
    globals()[name] = value  # the next access is a plain module attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
