"""A pending alert that clears leaves every list of the monitor (no ghost "pending" rows)."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otel_botmon.alerting.model import AlertRule
from otel_botmon.monitor import MonitoringConfig, SystemMonitor, UnknownAlertError
from otel_botmon.query import MetricKind

METRIC = "botmon.runtime.event_loop.lag"


def monitor_with_rule(for_s: float) -> SystemMonitor:
    monitor = SystemMonitor(MonitoringConfig(default_alert_rules=False))
    monitor.alert_manager.register_rule(AlertRule("lag", f"{METRIC} > 0.5", for_=for_s))
    return monitor


def step(monitor: SystemMonitor, value: float, now: float) -> list[str]:
    monitor.alert_manager.history.add_point(METRIC, {}, value, now, kind=MetricKind.GAUGE)
    return [e.kind.value for e in monitor.alert_manager.evaluate_once(now=now)]


def test_cleared_pending_alert_is_gone_from_status_lists_and_actions() -> None:
    monitor = monitor_with_rule(60)
    try:
        assert step(monitor, 2.0, 1000.0) == ["pending"]
        (pending,) = monitor.get_alert_history()
        status = monitor.get_system_status()
        # pending is shown apart: not counted as active, not raising the health
        assert status.active_alerts == 0 and status.pending_alerts == 1
        assert status.firing == []
        assert step(monitor, 0.1, 1010.0) == ["inactive"]
        assert monitor.get_alert_history() == []
        assert monitor.get_active_alerts() == []
        data = monitor.get_dashboard_data()
        assert data["alerts"] == {"active": [], "recent": []}
        assert data["status"]["pending_alerts"] == 0
        view = monitor.get_alert(pending["id"])
        assert view is not None and view["state"] == "inactive"
        with pytest.raises(UnknownAlertError):
            asyncio.run(monitor.acknowledge_alert(pending["id"], "ann"))
        with pytest.raises(UnknownAlertError):
            asyncio.run(monitor.resolve_alert(pending["id"]))
    finally:
        monitor.close()


def test_firing_alerts_are_counted_and_listed_most_severe_first() -> None:
    monitor = monitor_with_rule(0)
    try:
        assert step(monitor, 2.0, 1000.0) == ["fired"]
        status = monitor.get_system_status().to_dict()
        assert status["active_alerts"] == 1 and status["pending_alerts"] == 0
        assert [a["title"] for a in status["firing"]] == [
            monitor.get_active_alerts()[0]["title"]
        ]
    finally:
        monitor.close()


@settings(max_examples=25, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=12), st.sampled_from([0.0, 15.0, 25.0]))
def test_recent_list_never_holds_an_alert_the_evaluator_dropped(
    holds: list[bool], for_s: float,
) -> None:
    monitor = monitor_with_rule(for_s)
    try:
        now = 1000.0
        for on in holds:
            step(monitor, 2.0 if on else 0.1, now)
            active = {a["id"]: a["state"] for a in monitor.get_active_alerts()}
            recent = monitor.get_alert_history(limit=100)
            for alert in recent:
                if alert["state"] in ("pending", "firing"):
                    assert active.get(alert["id"]) == alert["state"]
                assert alert["state"] != "inactive"
            status = monitor.get_system_status()
            firing = sum(1 for s in active.values() if s == "firing")
            assert status.active_alerts == firing
            assert status.pending_alerts == len(active) - firing
            now += 10.0
    finally:
        monitor.close()
