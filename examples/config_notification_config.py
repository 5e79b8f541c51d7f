"""Guide: Configuration / NotificationConfig (secrets never print: see the repr)."""
# ruff: noqa: W293  (the guide's snippet, kept verbatim)

from otel_botmon import NotificationConfig

notification_config = NotificationConfig(
    # Email configuration
    smtp_server="smtp.gmail.com",
    smtp_port=587,
    smtp_use_tls=True,
    smtp_username="your-email@gmail.com",
    smtp_password="your-app-password",
    email_from="your-email@gmail.com",
    email_to=["admin@yourcompany.com", "ops@yourcompany.com"],
    
    # Webhook configuration
    webhook_urls=["https://your-webhook-url.com/alerts"],
    webhook_timeout=10.0,
    
    # File logging
    log_file="alerts.log",
    
    # Slack integration
    slack_webhook_url="https://hooks.slack.com/services/YOUR/SLACK/WEBHOOK",
    slack_channel="#trading-alerts",
    
    # Telegram integration
    telegram_bot_token="YOUR_BOT_TOKEN",
    telegram_chat_id="YOUR_CHAT_ID"
)

print(notification_config)
