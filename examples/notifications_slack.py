"""Guide: Notification Channels / Slack Notifications."""

from otel_botmon import NotificationConfig

notification_config = NotificationConfig(
    slack_webhook_url="https://hooks.slack.com/services/YOUR/SLACK/WEBHOOK",
    slack_channel="#trading-alerts"
)

print(notification_config.configured_channels())
