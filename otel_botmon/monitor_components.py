"""Builds the parts a :class:`~otel_botmon.monitor.SystemMonitor` coordinates.

Kept apart from the monitor so the wiring (which check gets which thresholds, where the
alert store lives) reads in one place and the facade stays small.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypedDict

from otel_botmon.alerting.default_rules import default_rules_for
from otel_botmon.alerting.manager import AlertManager
from otel_botmon.alerting.model import AlertRule
from otel_botmon.monitor_config import MonitoringConfig
from otel_botmon.notify import NotificationConfig
from otel_botmon.observe.checks import SystemResourcesCheck
from otel_botmon.observe.health import HealthChecker
from otel_botmon.observe.host import HostObserver


@dataclass
class Components:
    """The monitor's parts; optional ones are ``None`` when not available."""

    health_checker: HealthChecker
    alert_manager: AlertManager
    host_observer: HostObserver
    dispatcher: Any = None
    host_sample: Callable[[], Mapping[str, float | None]] | None = None


def build_components(config: MonitoringConfig) -> Components:
    """Create the health checker, host observer, alert manager and dispatcher."""
    health_checker = HealthChecker(default_interval_s=config.health_check_interval)
    host_observer = _host_observer(config)
    alert_manager = _alert_manager(config)
    dispatcher = _dispatcher(config, alert_manager)
    parts = Components(
        health_checker=health_checker, alert_manager=alert_manager, dispatcher=dispatcher,
        host_observer=host_observer,
        host_sample=_host_sample(host_observer) if host_observer is not None else None,
    )
    if config.default_health_checks:
        _register_default_checks(config, parts)
    return parts


def _host_observer(config: MonitoringConfig) -> HostObserver:
    return HostObserver(interval_s=config.metrics_collection_interval)


def _host_sample(observer: HostObserver) -> Callable[[], Mapping[str, float | None]]:
    def sample() -> Mapping[str, float | None]:
        latest = observer.latest()
        return {
            "cpu": latest.cpu_percent,
            "memory": latest.memory_percent,
            "disk": max(latest.disk_percent.values(), default=None),
        }

    return sample


class _ResourceThresholds(TypedDict):
    cpu_warning: float
    cpu_critical: float
    memory_warning: float
    memory_critical: float
    disk_warning: float
    disk_critical: float


def _resource_thresholds(config: MonitoringConfig) -> _ResourceThresholds:
    """The CPU, memory and disk thresholds, as the default rules and the system check
    take them."""
    return {
        "cpu_warning": config.cpu_warning_threshold,
        "cpu_critical": config.cpu_critical_threshold,
        "memory_warning": config.memory_warning_threshold,
        "memory_critical": config.memory_critical_threshold,
        "disk_warning": config.disk_warning_threshold,
        "disk_critical": config.disk_critical_threshold,
    }


def _alert_manager(config: MonitoringConfig) -> AlertManager:
    rules: list[AlertRule] = []
    if config.default_alert_rules:
        rules = default_rules_for(config)
    return AlertManager(
        store=config.alert_store_path, interval_s=config.alert_check_interval, rules=rules,
        for_outage_tolerance_s=config.alert_for_outage_tolerance,
        for_grace_period_s=config.alert_for_grace_period,
    )


def _dispatcher(config: MonitoringConfig, alert_manager: AlertManager) -> Any:
    try:
        from otel_botmon.notify.dispatcher import NotificationDispatcher
    except ImportError:
        return None
    notification_config = config.notification_config or NotificationConfig()
    # One SQLite file for alerts and their outbox unless the user chose another one.
    def record(alert_id: str, channel: Any, result: Any) -> None:
        alert_manager.record_notification(
            alert_id, getattr(channel, "value", str(channel)),
            ok=result.outcome.value == "delivered",
            detail={"outcome": result.outcome.value, "detail": result.detail,
                    "status_code": result.status_code},
        )

    def on_attempt(alert_id: str, channel: Any, result: Any) -> None:
        # every delivery attempt becomes a "notified" event in the alert's history; the
        # store write (SQLite, maybe waiting for a lock) never runs on the event loop
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            record(alert_id, channel, result)
        else:
            loop.run_in_executor(None, record, alert_id, channel, result)

    dispatcher = NotificationDispatcher(
        notification_config,
        outbox_path=notification_config.outbox_path,
        on_attempt=on_attempt,
        # the store's file (and transactions) unless an outbox path was chosen
        store=alert_manager.store,
    )
    alert_manager.add_listener(dispatcher.on_alert_event)
    return dispatcher


def _register_default_checks(config: MonitoringConfig, parts: Components) -> None:
    parts.health_checker.register_health_check(
        "system_resources",
        SystemResourcesCheck(**_resource_thresholds(config), observer=parts.host_observer),
    )
