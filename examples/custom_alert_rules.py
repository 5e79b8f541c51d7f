"""Guide: Alert Rules / Custom Alert Rules."""

from otel_botmon import SystemMonitor

alert_manager = SystemMonitor().alert_manager

from otel_botmon import AlertRule, AlertSeverity, AlertType, NotificationChannel

custom_rule = AlertRule(
    name="custom_trading_rule",
    condition="win_rate < 50",
    severity=AlertSeverity.WARNING,
    alert_type=AlertType.TRADING,
    description="Trading win rate is below 50%",
    cooldown_minutes=30,
    escalation_minutes=60,
    channels=[NotificationChannel.EMAIL, NotificationChannel.SLACK]
)

alert_manager.register_rule(custom_rule)


print([rule.name for rule in alert_manager.rules])
