"""Guide: Troubleshooting / Debugging: check system status."""

from otel_botmon import SystemMonitor

system_monitor = SystemMonitor()

status = system_monitor.get_system_status()
print(f"Overall health: {status.overall_health}")
print(f"Active alerts: {status.active_alerts}")
