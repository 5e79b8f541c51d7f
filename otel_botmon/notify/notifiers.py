"""The notifiers a ``NotificationConfig`` asks for, and the alert snapshot a notification
is built from."""

from __future__ import annotations

from types import SimpleNamespace
from typing import TextIO

from otel_botmon.alerting.model import NotificationChannel
from otel_botmon.notify.alertmanager import AlertmanagerNotifier
from otel_botmon.notify.base import Notifier
from otel_botmon.notify.config import NotificationConfig, Secret
from otel_botmon.notify.console import ConsoleNotifier
from otel_botmon.notify.email import EmailNotifier
from otel_botmon.notify.file import FileNotifier
from otel_botmon.notify.outbox import Outbox
from otel_botmon.notify.pagerduty import PagerDutyNotifier
from otel_botmon.notify.slack import SlackNotifier
from otel_botmon.notify.telegram import TelegramNotifier
from otel_botmon.notify.webhook import WebhookNotifier

__all__ = ["build_notifiers", "snapshot"]


def build_notifiers(
    config: NotificationConfig, outbox: Outbox, *, console_stream: TextIO | None = None
) -> list[Notifier]:
    """One notifier per configured destination (one per webhook URL)."""
    notifiers: list[Notifier] = []
    channels = set(config.configured_channels())
    if NotificationChannel.CONSOLE in channels:
        notifiers.append(ConsoleNotifier(console_stream))
    if NotificationChannel.FILE in channels and config.log_file:
        notifiers.append(FileNotifier(config.log_file, config.log_file_max_bytes,
                                      config.log_file_backups))
    if NotificationChannel.EMAIL in channels:
        notifiers.append(EmailNotifier(config))
    hmac_secret = config.webhook_hmac_secret
    for index, url in enumerate(config.webhook_urls):
        assert isinstance(url, Secret)
        notifiers.append(WebhookNotifier(
            url, index, config.webhook_timeout,
            hmac_secret if isinstance(hmac_secret, Secret) else None,
        ))
    if isinstance(config.slack_webhook_url, Secret):
        notifiers.append(SlackNotifier(config.slack_webhook_url, config.slack_channel,
                                       config.webhook_timeout))
    if isinstance(config.telegram_bot_token, Secret) and config.telegram_chat_id:
        notifiers.append(TelegramNotifier(config.telegram_api_url, config.telegram_bot_token,
                                          config.telegram_chat_id, config.webhook_timeout))
    if config.alertmanager_url:
        notifiers.append(AlertmanagerNotifier(
            config.alertmanager_url, outbox, resend_interval=config.alertmanager_resend_interval,
            timeout=config.webhook_timeout, generator_url=config.generator_url,
        ))
    if isinstance(config.pagerduty_routing_key, Secret):
        notifiers.append(PagerDutyNotifier(
            config.pagerduty_url, config.pagerduty_routing_key, config.source,
            config.webhook_timeout, client_url=config.generator_url,
        ))
    return notifiers


_SNAPSHOT_FIELDS = (
    "id", "alert_id", "fingerprint", "title", "name", "message", "description", "severity",
    "alert_type", "value", "fired_at", "first_fired", "started_at", "active_at", "created_at",
    "timestamp", "rule_name", "rule", "acknowledged_by", "resolved_by",
)


def snapshot(alert: object) -> SimpleNamespace:
    """What ``Notification.from_alert`` reads, copied now: the alert object lives on and
    changes, the notification must say how it was at this event."""
    snapshot = SimpleNamespace(**{name: getattr(alert, name, None) for name in _SNAPSHOT_FIELDS})
    snapshot.labels = dict(getattr(alert, "labels", None) or {})
    snapshot.annotations = dict(getattr(alert, "annotations", None) or {})
    snapshot.channels = list(getattr(alert, "channels", None) or [])
    return snapshot
