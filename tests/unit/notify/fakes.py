"""Fakes for dispatcher tests: a virtual clock and scriptable notifiers."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from otel_botmon.alerting.model import AlertSeverity, NotificationChannel
from otel_botmon.notify.base import DeliveryResult, Notifier
from otel_botmon.notify.message import Notification


class FakeClock:
    """Virtual time: ``sleep`` advances the clock instead of waiting (and yields)."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(0.0, seconds)
        await asyncio.sleep(0)


class FakeNotifier(Notifier):
    """Records what it was asked to send; answers from a script, then delivered."""

    def __init__(self, channel: NotificationChannel, destination: str | None = None,
                 clock: FakeClock | None = None, *, collapsible: bool = True,
                 batches: bool = False) -> None:
        self.channel = channel
        self.destination = destination or channel.value
        self.collapsible = collapsible
        self._batches = batches
        self.clock = clock
        self.sent: list[Notification] = []
        self.sent_at: list[float] = []
        self.batches_sent: list[list[Notification]] = []
        self.script: list[DeliveryResult] = []
        self.block: asyncio.Event | None = None

    @property
    def batches(self) -> bool:
        return self._batches

    async def send(self, notification: Notification) -> DeliveryResult:
        if self.block is not None:
            await self.block.wait()
        self.sent.append(notification)
        if self.clock is not None:
            self.sent_at.append(self.clock.time())
        return self.script.pop(0) if self.script else DeliveryResult.delivered("ok")

    async def send_many(self, notifications: Sequence[Notification]) -> DeliveryResult:
        self.batches_sent.append(list(notifications))
        return await self.send(notifications[0])


def make_notification(i: int = 0, **overrides: object) -> Notification:
    fields: dict[str, object] = {
        "alert_id": f"alert-{i}", "title": f"CPU high {i}", "message": "cpu above 90%",
        "severity": AlertSeverity.WARNING, "value": 93.5, "labels": {"host": "bot-1"},
    }
    fields.update(overrides)
    return Notification(**fields)  # type: ignore[arg-type]
