"""Guide: Notification Channels / Telegram Notifications."""

from otel_botmon import NotificationConfig

notification_config = NotificationConfig(
    telegram_bot_token="YOUR_BOT_TOKEN",
    telegram_chat_id="YOUR_CHAT_ID"
)

print(notification_config.configured_channels())
