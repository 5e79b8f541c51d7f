"""Guide: Advanced Configuration / Custom Alert Conditions.

The guide's snippet awaits at top level: run it with
``python examples/run_example.py examples/custom_alert_conditions.py``.
"""
# ruff: noqa: SIM103, W293  (the guide's snippet, kept verbatim)

from otel_botmon import AlertSeverity, SystemMonitor

system_monitor = SystemMonitor()
# What your bot computed this round (the guide leaves these to you).
current_metrics = {"win_rate": 35.0, "total_trades": 24}
win_rate = current_metrics["win_rate"]
total_trades = current_metrics["total_trades"]

# Custom alert condition function
def check_custom_condition(metrics):
    """Custom alert condition logic."""
    win_rate = metrics.get('win_rate', 0)
    total_trades = metrics.get('total_trades', 0)
    
    if total_trades > 10 and win_rate < 40:
        return True  # Trigger alert
    return False

# Use in monitoring logic
if check_custom_condition(current_metrics):
    await system_monitor.create_custom_alert(
        title="Low Win Rate Alert",
        message=f"Win rate dropped to {win_rate}% over {total_trades} trades",
        severity=AlertSeverity.WARNING
    )


for alert in system_monitor.get_active_alerts():
    print(alert["title"], "-", alert["message"])
