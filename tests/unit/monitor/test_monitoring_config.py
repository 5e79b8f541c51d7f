"""MonitoringConfig: the seed's fields and defaults, validated at construction."""

from __future__ import annotations

import math

import pytest

from otel_botmon.monitor import MonitoringConfig
from otel_botmon.notify import NotificationConfig


def test_defaults_are_the_seed_guides() -> None:
    config = MonitoringConfig()
    assert (config.health_check_interval, config.metrics_collection_interval) == (30.0, 5.0)
    assert (config.cpu_warning_threshold, config.cpu_critical_threshold) == (75.0, 90.0)
    assert (config.memory_warning_threshold, config.memory_critical_threshold) == (80.0, 95.0)
    assert (config.disk_warning_threshold, config.disk_critical_threshold) == (85.0, 95.0)
    assert (config.api_response_time_warning, config.api_response_time_critical) == (1000.0, 5000.0)
    assert (config.alert_check_interval, config.status_update_interval) == (10.0, 60.0)
    assert config.notification_config is None


def test_takes_a_notification_config_as_in_the_guide() -> None:
    config = MonitoringConfig(
        health_check_interval=30.0, metrics_collection_interval=5.0,
        notification_config=NotificationConfig(
            email_from="bot@yourcompany.com", email_to=["admin@yourcompany.com"],
        ),
    )
    assert config.notification_config is not None
    assert config.notification_config.email_to == ["admin@yourcompany.com"]


@pytest.mark.parametrize(("field", "value"), [
    ("health_check_interval", 0), ("metrics_collection_interval", -1.0),
    ("alert_check_interval", math.inf), ("status_update_interval", math.nan),
    ("health_check_interval", "30"), ("alert_check_interval", True),
    ("api_response_time_warning", 0.0), ("heartbeat_max_age", -5),
])
def test_intervals_must_be_positive_finite_numbers(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"MonitoringConfig.{field}"):
        MonitoringConfig(**{field: value})


@pytest.mark.parametrize(("kwargs", "named"), [
    ({"cpu_warning_threshold": 95.0}, "cpu_warning_threshold"),
    ({"memory_critical_threshold": 120.0}, "memory_critical_threshold"),
    ({"disk_warning_threshold": 0.0}, "disk_warning_threshold"),
    ({"api_response_time_warning": 6000.0}, "api_response_time_warning"),
])
def test_thresholds_must_be_percentages_with_warning_below_critical(
    kwargs: dict[str, float], named: str,
) -> None:
    with pytest.raises(ValueError, match=named):
        MonitoringConfig(**kwargs)


def test_history_size_and_service_name_are_checked() -> None:
    with pytest.raises(ValueError, match="history_size"):
        MonitoringConfig(history_size=0)
    with pytest.raises(ValueError, match="service_name"):
        MonitoringConfig(service_name="")


@pytest.mark.parametrize("field", ["alert_for_outage_tolerance", "alert_for_grace_period"])
@pytest.mark.parametrize("value", [-1, math.nan, math.inf, "10m", True])
def test_for_state_settings_are_seconds_at_least_zero(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"MonitoringConfig.{field} .*>= 0"):
        MonitoringConfig(**{field: value})


def test_for_state_settings_reach_the_evaluator() -> None:
    from otel_botmon.monitor import SystemMonitor

    assert (MonitoringConfig().alert_for_outage_tolerance,
            MonitoringConfig().alert_for_grace_period) == (3600.0, 600.0)
    monitor = SystemMonitor(MonitoringConfig(
        default_alert_rules=False, alert_for_outage_tolerance=7200, alert_for_grace_period=0))
    try:
        policy = monitor.alert_manager.evaluator.for_state
        assert (policy.outage_tolerance_s, policy.grace_period_s) == (7200, 0)
    finally:
        monitor.close()
