"""MonitoringDashboard's construction rules: loopback by default, a token elsewhere."""

from __future__ import annotations

import pytest

from otel_botmon.dashboard.server import MonitoringDashboard, is_loopback
from otel_botmon.monitor import MonitoringConfig, SystemMonitor


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.8.9.1", True), ("::1", True), ("[::1]", True),
    ("localhost", True), ("0.0.0.0", False), ("::", False), ("10.0.0.5", False),
    ("example.com", False),
])
def test_loopback_detection(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_defaults_and_bad_arguments(telemetry: object) -> None:
    monitor = SystemMonitor(MonitoringConfig(default_alert_rules=False))
    dashboard = MonitoringDashboard(monitor)
    assert (dashboard.host, dashboard.port) == ("127.0.0.1", 8001)
    assert dashboard.url == "http://localhost:8001"
    assert "t0k3n" not in repr(MonitoringDashboard(monitor, "0.0.0.0", access_token="t0k3n"))
    with pytest.raises(ValueError, match="port"):
        MonitoringDashboard(monitor, port=70000)
    with pytest.raises(ValueError, match="access_token"):
        MonitoringDashboard(monitor, access_token="")
    with pytest.raises(ValueError, match="non-loopback"):
        MonitoringDashboard(monitor, host="example.com")
