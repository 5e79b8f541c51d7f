"""Observers: host metrics from psutil and component health checks, as OTel instruments."""

from __future__ import annotations

from otel_botmon.observe.checks import (
    ExchangeApiCheck,
    InfluxDBCheck,
    NetworkCheck,
    SystemResourcesCheck,
    TradingEngineCheck,
    WebUICheck,
)
from otel_botmon.observe.health import (
    HealthChecker,
    HealthCheckResult,
    HealthComponent,
    HealthStatus,
)
from otel_botmon.observe.host import HostObserver, HostSample

__all__ = [
    "ExchangeApiCheck",
    "HealthCheckResult",
    "HealthChecker",
    "HealthComponent",
    "HealthStatus",
    "HostObserver",
    "HostSample",
    "InfluxDBCheck",
    "NetworkCheck",
    "SystemResourcesCheck",
    "TradingEngineCheck",
    "WebUICheck",
]
