"""Guide: Notification Channels / Email Notifications."""

from otel_botmon import NotificationConfig

notification_config = NotificationConfig(
    smtp_server="smtp.gmail.com",
    smtp_port=587,
    smtp_use_tls=True,
    smtp_username="your-email@gmail.com",
    smtp_password="your-app-password",  # Use app password for Gmail
    email_from="trading-bot@yourcompany.com",
    email_to=["admin@yourcompany.com"]
)

print(notification_config.configured_channels())
