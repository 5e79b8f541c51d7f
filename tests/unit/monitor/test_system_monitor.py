"""SystemMonitor: the seed's facade over observers, health checks and alerts."""

from __future__ import annotations

import pytest

from otel_botmon.alerting.model import AlertSeverity, AlertType
from otel_botmon.monitor import MonitoringConfig, SystemMonitor, UnknownAlertError
from otel_botmon.observe.health import HealthStatus
from otel_botmon.query import KPIS


def quiet_config() -> MonitoringConfig:
    return MonitoringConfig(default_alert_rules=False, metrics_collection_interval=0.2,
                            alert_check_interval=0.2)


async def test_status_reports_health_uptime_alerts_by_severity_and_components(
    telemetry: object,
) -> None:
    monitor = SystemMonitor(quiet_config())
    before = monitor.get_system_status()
    assert before.running is False and before.uptime_seconds == 0.0
    await monitor.start()
    try:
        async def healthy(component: object) -> dict[str, object]:
            return {"status": HealthStatus.HEALTHY, "message": "ok"}

        monitor.register_health_check("my_component", healthy)
        await monitor.force_health_check()
        await monitor.create_custom_alert("warn", "w", AlertSeverity.WARNING)
        await monitor.create_custom_alert("crit", "c", AlertSeverity.CRITICAL, AlertType.API)
        status = monitor.get_system_status()
        assert status.running and 0 < status.uptime_seconds < 60
        assert status.active_alerts == 2
        assert status.alerts_by_severity == {"info": 0, "warning": 1, "critical": 1, "emergency": 0}
        assert status.components["my_component"] == "healthy"
        # an active critical alert makes the whole bot critical, whatever the checks say
        assert status.overall_health is HealthStatus.CRITICAL
        assert status.to_dict()["overall_health"] == "critical"
    finally:
        await monitor.stop()
    assert monitor.get_system_status().running is False


async def test_custom_alert_acknowledge_and_resolve_as_in_the_guide(telemetry: object) -> None:
    monitor = SystemMonitor(quiet_config())
    alert_id = await monitor.create_custom_alert(
        title="Custom Trading Alert",
        message="Something important happened in your trading strategy",
        severity=AlertSeverity.WARNING, alert_type=AlertType.TRADING,
    )
    view = await monitor.acknowledge_alert(alert_id, "trader_john")
    assert view["acknowledged_by"] == "trader_john" and view["state"] == "firing"
    view = await monitor.resolve_alert(alert_id)
    assert view["state"] == "resolved"
    assert monitor.get_active_alerts() == []
    assert [a["id"] for a in monitor.get_alert_history()] == [alert_id]
    with pytest.raises(UnknownAlertError, match="no alert with id 'missing'"):
        await monitor.acknowledge_alert("missing", "x")
    with pytest.raises(UnknownAlertError):
        await monitor.resolve_alert("missing")


async def test_record_calls_feed_the_performance_sample(telemetry: object) -> None:
    monitor = SystemMonitor(quiet_config())
    monitor.record_trade_execution(symbol="BTCUSDT", side="BUY", quantity=0.001,
                                   price=45000.0, execution_time=250.0)
    monitor.record_api_call(endpoint="get_account_info", response_time=150.0, status_code=200)
    monitor.record_api_call(endpoint="create_order", response_time=90.0, status_code=503)
    first = monitor.performance_monitor.sample()
    assert first.kpis["total_trades"] == 1
    assert first.kpis["api_requests"] == 2 and first.kpis["api_errors"] == 1
    # windowed KPIs need two points in their window, as the alert rules' do
    assert first.kpis["trade_latency_p50"] is None and first.kpis["api_error_rate"] is None
    monitor.record_trade_execution(symbol="BTCUSDT", side="BUY", quantity=0.001,
                                   price=45000.0, execution_time=250.0)
    monitor.record_api_call(endpoint="create_order", response_time=90.0, status_code=503)
    second = monitor.performance_monitor.sample()
    assert 0.1 < second.kpis["trade_latency_p50"] <= 0.5  # type: ignore[operator]  # seconds
    assert second.kpis["api_error_rate"] > 0  # type: ignore[operator]  # errors per minute
    summary = monitor.get_performance_summary()
    assert summary["current"]["total_trades"] == 2
    assert summary["kpis"]["api_error_rate"] == {
        "title": "API error rate", "unit": "errors/min", "window": "1m",
        "definition": KPIS["api_error_rate"].definition,
        "description": KPIS["api_error_rate"].description,
    }
    assert summary["kpis"]["trade_latency_p95"]["unit"] == "s"


def test_the_dashboard_kpis_are_the_rules_definitions() -> None:
    """A default rule on a KPI and the dashboard's card read one definition."""
    from otel_botmon.alerting.default_rules import default_rules
    from otel_botmon.performance import PerformanceMonitor

    monitor = PerformanceMonitor()
    names = {r.condition.split()[0] for r in default_rules()} & set(KPIS)
    assert {"api_error_rate", "trade_latency_p95", "cpu", "memory"} <= names
    for name in names:
        assert monitor._kpis[name].text == name  # compiled from the same derived value


async def test_heartbeat_registers_the_trading_engine_check(telemetry: object) -> None:
    monitor = SystemMonitor(quiet_config())
    assert "trading_engine" not in monitor.health_checker.components
    monitor.heartbeat()
    monitor.heartbeat()
    details = await monitor.force_health_check()
    assert details["components"]["trading_engine"]["status"] == "healthy"


def test_config_must_be_a_monitoring_config(telemetry: object) -> None:
    with pytest.raises(TypeError, match="MonitoringConfig"):
        SystemMonitor({"health_check_interval": 30})  # type: ignore[arg-type]


def test_configures_telemetry_when_nobody_did() -> None:
    from otel_botmon import telemetry as tel

    assert tel.get_telemetry() is None
    SystemMonitor(MonitoringConfig(service_name="auto-configured", default_alert_rules=False))
    current = tel.get_telemetry()
    assert current is not None
    assert current.resource.attributes["service.name"] == "auto-configured"


async def test_delivery_attempts_land_in_the_alerts_events(
    telemetry: object, capsys: pytest.CaptureFixture[str],
) -> None:
    import asyncio

    monitor = SystemMonitor(quiet_config())  # console channel only
    await monitor.start()
    try:
        alert_id = await monitor.create_custom_alert("Delivered", "to the console")
        async with asyncio.timeout(10):
            while True:
                alert = monitor.alert_manager.get_alert(alert_id)
                notified = [e for e in alert.events if e.kind.value == "notified"]
                if notified:
                    break
                await asyncio.sleep(0.05)
        assert notified[0].detail["channel"] == "console"
        assert notified[0].detail["ok"] is True
    finally:
        await monitor.stop()
    captured = capsys.readouterr()
    assert "Delivered" in captured.err + captured.out
