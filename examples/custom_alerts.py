"""Guide: Usage Examples / Custom Alerts.

The guide's snippet awaits at top level: run it with
``python examples/run_example.py examples/custom_alerts.py``.
"""

from otel_botmon import SystemMonitor

system_monitor = SystemMonitor()

from otel_botmon import AlertSeverity, AlertType

# Create custom alert
alert_id = await system_monitor.create_custom_alert(
    title="Custom Trading Alert",
    message="Something important happened in your trading strategy",
    severity=AlertSeverity.WARNING,
    alert_type=AlertType.TRADING
)

# Acknowledge alert
await system_monitor.acknowledge_alert(alert_id, "trader_john")

# Resolve alert
await system_monitor.resolve_alert(alert_id)


print(system_monitor.get_alert(alert_id)["state"])
