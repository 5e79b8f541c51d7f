"""Console channel: one readable block per notification on standard error."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO

from otel_botmon.alerting.model import NotificationChannel
from otel_botmon.notify.base import DeliveryResult, Notifier
from otel_botmon.notify.message import Notification

__all__ = ["ConsoleNotifier"]


class ConsoleNotifier(Notifier):
    """Writes ``notification.text()`` to ``stream`` (standard error unless given).

    A closed or broken stream is a permanent failure, not an exception.
    """

    channel = NotificationChannel.CONSOLE

    def __init__(self, stream: TextIO | None = None) -> None:
        self.destination = "console"
        self._stream = stream

    @property
    def batches(self) -> bool:
        # what waits goes out in one write (the same text as one write each); an alert
        # storm is still one summary (the dispatcher summarises before batching)
        return True

    async def send(self, notification: Notification) -> DeliveryResult:
        return await self.send_many([notification])

    async def send_many(self, notifications: Sequence[Notification]) -> DeliveryResult:
        stream = self._stream if self._stream is not None else sys.stderr
        try:
            stream.write("".join(f"ALERT {n.text()}\n" for n in notifications))
            stream.flush()
        except (OSError, ValueError) as exc:
            return DeliveryResult.failed(f"console write failed: {type(exc).__name__}: {exc}")
        return DeliveryResult.delivered()
