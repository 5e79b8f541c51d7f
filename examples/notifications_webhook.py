"""Guide: Notification Channels / Webhook Notifications."""

from otel_botmon import NotificationConfig

notification_config = NotificationConfig(
    webhook_urls=[
        "https://your-monitoring-system.com/webhooks/alerts",
        "https://your-pagerduty-integration.com/webhook"
    ]
)

print(notification_config.configured_channels())
