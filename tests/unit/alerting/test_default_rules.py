"""The seed's six default rules: thresholds, cooldowns, and that each fires on its signal."""

from __future__ import annotations

import pytest

from otel_botmon import conventions as conv
from otel_botmon.alerting.default_rules import DEFAULT_RULES, default_rules
from otel_botmon.alerting.evaluator import AlertEvaluator
from otel_botmon.alerting.model import AlertSeverity
from otel_botmon.query import MetricHistory, MetricKind, compile_condition

from .conftest import T0

SEED = {  # rule -> (severity, cooldown minutes), as the guide lists them
    "high_cpu_usage": (AlertSeverity.WARNING, 5),
    "high_cpu_usage_critical": (AlertSeverity.CRITICAL, 5),
    "high_memory_usage": (AlertSeverity.WARNING, 5),
    "high_memory_usage_critical": (AlertSeverity.CRITICAL, 5),
    "api_connection_failed": (AlertSeverity.CRITICAL, 2),
    "database_connection_failed": (AlertSeverity.CRITICAL, 2),
    "trading_execution_slow": (AlertSeverity.WARNING, 10),
    "high_api_error_rate": (AlertSeverity.WARNING, 5),
}


def test_default_rules_are_the_seeds() -> None:
    assert {r.name: (r.severity, r.cooldown_minutes) for r in DEFAULT_RULES} == SEED
    by_name = {r.name: r.condition for r in DEFAULT_RULES}
    assert by_name["high_cpu_usage"] == "cpu > 75"
    assert by_name["high_cpu_usage_critical"] == "cpu > 90"
    assert by_name["high_memory_usage"] == "memory > 80"
    assert by_name["high_memory_usage_critical"] == "memory > 95"
    assert by_name["trading_execution_slow"] == "trade_latency_p95 > 2000ms"
    assert by_name["high_api_error_rate"] == "api_error_rate > 10"
    for rule in DEFAULT_RULES:
        compile_condition(rule.condition)  # raises on any error


def test_thresholds_come_from_the_arguments() -> None:
    rules = {r.name: r for r in default_rules(
        cpu_warning=60, memory_critical=99, trade_slow_ms=1500, api_component="binance",
        disk_warning=85, disk_critical=95, api_response_time_warning_ms=1000,
    )}
    assert rules["high_cpu_usage"].condition == "cpu > 60"
    assert rules["high_memory_usage_critical"].condition == "memory > 99"
    assert rules["trading_execution_slow"].condition == "trade_latency_p95 > 1500ms"
    assert 'health.component="binance"' in rules["api_connection_failed"].condition
    assert rules["high_disk_usage_critical"].condition == "disk > 95"
    assert rules["slow_api_response"].condition == "api_latency_p95 > 1000ms"
    assert "slow_api_response_critical" not in rules
    assert default_rules() == list(DEFAULT_RULES)


def fired(evaluator: AlertEvaluator, now: float) -> set[str]:
    return {evaluator.get(e.alert_id).rule_name for e in evaluator.evaluate(now)
            if e.kind.value == "fired"}


def test_cpu_rules_fire_after_a_minute_and_critical_inhibits_warning() -> None:
    history = MetricHistory()
    ev = AlertEvaluator(default_rules(), history)
    for step in range(7):
        history.add_point(conv.SYSTEM_CPU_UTILIZATION.name, {}, 0.97, T0 + step * 10)
        events = ev.evaluate(T0 + step * 10)
    notified = {ev.get(e.alert_id).rule_name: e for e in events}
    assert notified["high_cpu_usage_critical"].notify
    assert notified["high_cpu_usage"].suppressed == "inhibited"
    (crit,) = [a for a in ev.firing() if a.rule_name == "high_cpu_usage_critical"]
    assert crit.message == "CPU usage is 97.0% (critical above 90%)"


def test_health_rules_fire_on_a_critical_check() -> None:
    history = MetricHistory()
    ev = AlertEvaluator(default_rules(), history)
    for component, status in (("exchange_api", 2), ("database", 2), ("web_ui", 2)):
        history.add_point(conv.HEALTH_STATUS.name, {conv.HEALTH_COMPONENT: component}, status, T0)
    assert fired(ev, T0) == {"api_connection_failed", "database_connection_failed"}
    (api,) = [a for a in ev.firing() if a.rule_name == "api_connection_failed"]
    assert api.labels[conv.HEALTH_COMPONENT] == "exchange_api"
    assert api.message == "The exchange_api health check is critical."


def test_slow_trades_and_api_errors_fire() -> None:
    history = MetricHistory()
    ev = AlertEvaluator(default_rules(), history)
    bounds = conv.DURATION_BUCKETS_S
    for step in range(7):
        at = T0 + step * 10
        n = step * 10  # ten trades per step, all slower than 2 s
        counts = [0] * (len(bounds) - 2) + [0, n, 0]  # in the 2 s .. 5 s bucket
        history.add_histogram_point(conv.TRADE_DURATION.name, {}, bounds, counts, 3.0 * n, n, at)
        history.add_point(conv.EXCHANGE_REQUESTS.name, {conv.ERROR_TYPE: "timeout"},
                          step * 5.0, at, kind=MetricKind.COUNTER)
    assert {"trading_execution_slow", "high_api_error_rate"} <= fired(ev, T0 + 60)


@pytest.mark.parametrize("rule", DEFAULT_RULES, ids=lambda r: r.name)
def test_no_default_rule_fires_on_a_healthy_bot(rule: object) -> None:
    history = MetricHistory()
    ev = AlertEvaluator([rule], history)  # type: ignore[list-item]
    for step in range(7):
        at = T0 + step * 10
        history.add_point(conv.SYSTEM_CPU_UTILIZATION.name, {}, 0.2, at)
        history.add_point(conv.SYSTEM_MEMORY_UTILIZATION.name, {}, 0.3, at)
        for component in ("exchange_api", "database"):
            history.add_point(conv.HEALTH_STATUS.name, {conv.HEALTH_COMPONENT: component}, 0, at)
        history.add_point(conv.EXCHANGE_REQUESTS.name, {conv.ERROR_TYPE: "timeout"}, 1.0, at,
                          kind=MetricKind.COUNTER)
        assert ev.evaluate(at) == []
