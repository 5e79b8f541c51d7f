"""Alert notifications: channels, and a durable dispatcher that delivers off the bot's path.

```python
from otel_botmon.notify import NotificationConfig, NotificationDispatcher

dispatcher = NotificationDispatcher(NotificationConfig(slack_webhook_url=...),
                                    outbox_path="alerts.db")
alert_manager.add_listener(dispatcher.on_alert_event)
await dispatcher.start()
```
"""

from __future__ import annotations

from otel_botmon.notify.base import DeliveryOutcome, DeliveryResult, Notifier
from otel_botmon.notify.config import NotificationConfig, Secret
from otel_botmon.notify.dispatcher import (
    Clock,
    NotificationDispatcher,
    SystemClock,
    build_notifiers,
)
from otel_botmon.notify.message import Notification
from otel_botmon.notify.outbox import AttemptRecord, Outbox, OutboxItem

__all__ = [
    "AttemptRecord",
    "Clock",
    "DeliveryOutcome",
    "DeliveryResult",
    "Notification",
    "NotificationConfig",
    "NotificationDispatcher",
    "Notifier",
    "Outbox",
    "OutboxItem",
    "Secret",
    "SystemClock",
    "build_notifiers",
]
