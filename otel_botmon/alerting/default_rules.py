"""The seed guide's six default alert rules, with its thresholds and cooldowns.

=========================== ========================================= ================= =====
seed rule                   condition (rule name, default threshold)  for               cool
=========================== ========================================= ================= =====
High CPU Usage              ``cpu > 75`` (high_cpu_usage), ``> 90``    1 min             5 min
                            (high_cpu_usage_critical)
High Memory Usage           ``memory > 80`` (high_memory_usage),      1 min             5 min
                            ``> 95`` (high_memory_usage_critical)
API Connection Failed       exchange_api health status == 2           0                 2 min
Database Connection Failed  database health status == 2               0                 2 min
Trading Execution Slow      ``trade_latency_p95 > 2000ms``            0                 10 min
High API Error Rate         ``api_error_rate > 10`` (per minute)      0                 5 min
=========================== ========================================= ================= =====

A severity level is one :class:`AlertRule`, so CPU and memory are two rules each; they share
a ``component`` label, so a firing critical inhibits the notification of its warning, and
one ``alertname`` (the warning rule's name) with a ``severity`` label, so Alertmanager's
inhibition (``equal: [alertname, job, bot_name]``) does the same for the exported rules.
``cpu``/``memory`` are percent; a health check is failing at ``botmon.health.status == 2``
(3, unknown, is a check that has not run yet: no alert).
The CPU and memory rules hold for one minute before firing so a short spike does not page.

``default_rules()`` takes the thresholds of ``MonitoringConfig``; the disk and API
response-time rules, which the seed configures thresholds for but does not list, are added
only when their thresholds are passed.
"""

from __future__ import annotations

from typing import Any

from otel_botmon import conventions as conv
from otel_botmon.alerting.model import ALERTNAME_LABEL, AlertRule, AlertSeverity, AlertType

_SUSTAINED_S = 60.0


def _pct_pair(
    name: str, label: str, metric: str, warning: float, critical: float, cooldown: float,
) -> list[AlertRule]:
    rules = []
    for suffix, severity, threshold in (
        ("", AlertSeverity.WARNING, warning), ("_critical", AlertSeverity.CRITICAL, critical),
    ):
        rules.append(AlertRule(
            name=f"{name}{suffix}",
            condition=f"{metric} > {threshold:g}",
            severity=severity,
            alert_type=AlertType.SYSTEM,
            description=f"{label} above {threshold:g}%",
            cooldown_minutes=cooldown,
            for_=_SUSTAINED_S,
            labels={"component": metric, ALERTNAME_LABEL: name},
            annotations={
                "summary": f"High {label} usage",
                "description": f"{label} usage is {{value:.1f}}% "
                               f"({severity.value} above {threshold:g}%)",
            },
        ))
    return rules


def _health_rule(name: str, what: str, component: str, alert_type: AlertType) -> AlertRule:
    return AlertRule(
        name=name,
        condition=f'{conv.HEALTH_STATUS.name}{{{conv.HEALTH_COMPONENT}="{component}"}} == 2',
        severity=AlertSeverity.CRITICAL,
        alert_type=alert_type,
        description=f"{what} health check fails",
        cooldown_minutes=2.0,
        annotations={
            "summary": f"{what} connection failed",
            "description": f"The {{labels[{conv.HEALTH_COMPONENT}]}} health check is critical.",
        },
    )


def default_rules(
    *,
    cpu_warning: float = 75.0,
    cpu_critical: float = 90.0,
    memory_warning: float = 80.0,
    memory_critical: float = 95.0,
    trade_slow_ms: float = 2000.0,
    api_errors_per_minute: float = 10.0,
    api_component: str = "exchange_api",
    database_component: str = "database",
    disk_warning: float | None = None,
    disk_critical: float | None = None,
    api_response_time_warning_ms: float | None = None,
    api_response_time_critical_ms: float | None = None,
) -> list[AlertRule]:
    """Fresh copies of the default rules with these thresholds (percent and milliseconds
    as in ``MonitoringConfig``). ``api_component``/``database_component`` are the
    ``health.component`` names of the exchange-API and database health checks."""
    rules = _pct_pair("high_cpu_usage", "CPU", "cpu", cpu_warning, cpu_critical, 5.0)
    rules += _pct_pair(
        "high_memory_usage", "Memory", "memory", memory_warning, memory_critical, 5.0,
    )
    rules.append(_health_rule("api_connection_failed", "API", api_component, AlertType.API))
    rules.append(_health_rule(
        "database_connection_failed", "Database", database_component, AlertType.DATABASE,
    ))
    rules.append(AlertRule(
        name="trading_execution_slow",
        condition=f"trade_latency_p95 > {trade_slow_ms:g}ms",
        severity=AlertSeverity.WARNING,
        alert_type=AlertType.PERFORMANCE,
        description=f"Trade execution slower than {trade_slow_ms:g} ms (p95 over 5 minutes)",
        cooldown_minutes=10.0,
        annotations={
            "summary": "Trading execution slow",
            "description": "Trade execution p95 is {value:.3f} s "
                           f"(warning above {trade_slow_ms / 1000:g} s)",
        },
    ))
    rules.append(AlertRule(
        name="high_api_error_rate",
        condition=f"api_error_rate > {api_errors_per_minute:g}",
        severity=AlertSeverity.WARNING,
        alert_type=AlertType.API,
        description=f"More than {api_errors_per_minute:g} API errors per minute",
        cooldown_minutes=5.0,
        labels={"component": api_component},
        annotations={
            "summary": "High API error rate",
            "description": "{value:.0f} exchange API errors in the last minute "
                           f"(warning above {api_errors_per_minute:g})",
        },
    ))
    if disk_warning is not None and disk_critical is not None:
        rules += _pct_pair("high_disk_usage", "Disk", "disk", disk_warning, disk_critical, 10.0)
    rules += _api_latency_rules(api_response_time_warning_ms, api_response_time_critical_ms)
    return rules


def _api_latency_rules(warning_ms: float | None, critical_ms: float | None) -> list[AlertRule]:
    rules = []
    for suffix, severity, threshold in (
        ("", AlertSeverity.WARNING, warning_ms), ("_critical", AlertSeverity.CRITICAL, critical_ms),
    ):
        if threshold is None:
            continue
        rules.append(AlertRule(
            name=f"slow_api_response{suffix}",
            condition=f"api_latency_p95 > {threshold:g}ms",
            severity=severity,
            alert_type=AlertType.API,
            description=f"Exchange API p95 response time above {threshold:g} ms",
            cooldown_minutes=5.0,
            labels={"component": "api_latency", ALERTNAME_LABEL: "slow_api_response"},
            annotations={
                "summary": "Slow exchange API responses",
                "description": "Exchange API p95 is {value:.3f} s "
                               f"({severity.value} above {threshold / 1000:g} s)",
            },
        ))
    return rules


def default_rules_for(config: Any) -> list[AlertRule]:
    """The default rules with the thresholds of a ``MonitoringConfig`` (any object with
    its threshold attributes): the rules ``SystemMonitor`` runs, and the ones shipped in
    ``collector/prometheus/rules/``."""
    return default_rules(
        cpu_warning=config.cpu_warning_threshold,
        cpu_critical=config.cpu_critical_threshold,
        memory_warning=config.memory_warning_threshold,
        memory_critical=config.memory_critical_threshold,
        disk_warning=config.disk_warning_threshold,
        disk_critical=config.disk_critical_threshold,
        api_response_time_warning_ms=config.api_response_time_warning,
        api_response_time_critical_ms=config.api_response_time_critical,
    )


DEFAULT_RULES: tuple[AlertRule, ...] = tuple(default_rules())
"""The seed's six default rules at its default thresholds (eight AlertRule objects: CPU and
memory have a warning and a critical level). Register copies (``default_rules()``), since
a registered rule may be changed by its owner."""
