"""Prometheus Alertmanager channel: ``POST /api/v2/alerts``, re-sent while firing.

Alertmanager treats an alert it stops hearing about as resolved once its ``endsAt``
passes, so, like Prometheus, we send ``endsAt = now + 4 x resend interval`` and re-send
every firing alert each interval; a resolve sends ``endsAt`` = the resolve time. The set
of firing alerts is kept in the outbox database so a restarted process keeps re-sending.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from otel_botmon.alerting.model import AlertEventKind, NotificationChannel
from otel_botmon.notify.base import DeliveryResult, HttpClientSlot, Notifier
from otel_botmon.notify.message import Notification
from otel_botmon.notify.outbox import Outbox

__all__ = ["AlertmanagerNotifier", "alertmanager_alert"]

logger = logging.getLogger("otel_botmon.notify")

_LABEL_NAME = re.compile(r"[^A-Za-z0-9_]")


def _label_name(name: str) -> str:
    # Alertmanager label names follow Prometheus: [a-zA-Z_][a-zA-Z0-9_]*.
    cleaned = _LABEL_NAME.sub("_", name) or "_"
    return f"_{cleaned}" if cleaned[0].isdigit() else cleaned


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def alertmanager_alert(
    notification: Notification, *, now: datetime, hold: float, generator_url: str | None
) -> dict[str, Any]:
    """One element of the ``POST /api/v2/alerts`` body.

    Labels are the alert's labels (names made Prometheus-safe) plus ``alertname`` and
    ``severity`` when missing; annotations carry the title, message, value and event.
    A resolved alert ends at its resolve time, a firing one ``hold`` seconds from now.
    """
    labels = {_label_name(k): v for k, v in notification.labels.items() if v != ""}
    labels.setdefault("alertname", notification.rule_name or notification.title)
    labels.setdefault("severity", notification.severity.value)
    labels.setdefault("alert_type", notification.alert_type.value)
    annotations = {_label_name(k): v for k, v in notification.annotations.items()}
    annotations.setdefault("summary", notification.title)
    if notification.message:
        annotations.setdefault("description", notification.message)
    annotations["value"] = notification.value_text()
    annotations["current_severity"] = notification.severity.value
    annotations["event"] = notification.event.value
    if notification.actor and notification.event is AlertEventKind.ACKNOWLEDGED:
        annotations["acknowledged_by"] = notification.actor
    if notification.event is AlertEventKind.RESOLVED:
        ends = max(notification.occurred_at, notification.first_fired)
        starts = notification.first_fired
    else:
        ends = now + timedelta(seconds=hold)
        # a start after now (the wall clock was stepped back since the alert fired)
        # would end before it starts, which Alertmanager refuses for the whole request
        starts = min(notification.first_fired, now)
    alert: dict[str, Any] = {
        "labels": labels,
        "annotations": annotations,
        "startsAt": _iso(starts),
        "endsAt": _iso(ends),
    }
    if generator_url:
        alert["generatorURL"] = generator_url
    return alert


class AlertmanagerNotifier(Notifier):
    """Posts alerts in batches to one Alertmanager and keeps firing ones alive.

    ``background()`` (run by the dispatcher) re-sends every firing alert each
    ``resend_interval`` seconds; a failed re-send is logged and tried again next time.
    """

    channel = NotificationChannel.ALERTMANAGER
    collapsible = False

    def __init__(
        self,
        base_url: str,
        outbox: Outbox,
        *,
        resend_interval: float,
        timeout: float,
        generator_url: str | None = None,
    ) -> None:
        self.destination = "alertmanager"
        self._url = base_url.rstrip("/") + "/api/v2/alerts"
        self._outbox = outbox
        self._interval = resend_interval
        self._timeout = timeout
        self._generator_url = generator_url
        self._http = HttpClientSlot(timeout)

    @property
    def batches(self) -> bool:
        return True

    def _body(self, notifications: Sequence[Notification]) -> list[dict[str, Any]]:
        now = datetime.now(UTC)
        hold = 4 * self._interval
        return [
            alertmanager_alert(n, now=now, hold=hold, generator_url=self._generator_url)
            for n in notifications
        ]

    async def _post(self, notifications: Sequence[Notification]) -> DeliveryResult:
        return await self._http.post_json(self._url, self._body(notifications))

    async def send(self, notification: Notification) -> DeliveryResult:
        return await self.send_many([notification])

    async def send_many(self, notifications: Sequence[Notification]) -> DeliveryResult:
        relevant = [n for n in notifications if n.event is not AlertEventKind.PENDING]
        if not relevant:
            return DeliveryResult.delivered("nothing to send")
        result = await self._post(relevant)
        if result.ok:
            await asyncio.to_thread(self._remember, relevant)  # SQLite: off the loop
        return result

    def _remember(self, notifications: Sequence[Notification]) -> None:
        with self._outbox.transaction():  # one commit for the whole batch
            for n in notifications:
                if n.event is AlertEventKind.RESOLVED:
                    self._outbox.active_delete(self.destination, n.fingerprint)
                else:
                    self._outbox.active_put(self.destination, n.fingerprint,
                                            json.dumps(n.to_dict()))

    async def resend_firing(self) -> DeliveryResult | None:
        """Re-send every alert still firing here; None when there is none."""
        stored = await asyncio.to_thread(self._outbox.active, self.destination)
        firing = [Notification.from_dict(json.loads(p)) for p in stored]
        if not firing:
            return None
        return await self._post(firing)

    async def background(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                result = await self.resend_firing()
            except (ValueError, KeyError) as exc:  # a corrupt stored alert
                logger.warning("alertmanager: cannot re-send firing alerts: %s", exc)
                continue
            if result is not None and not result.ok:
                logger.warning("alertmanager: re-sending firing alerts failed: %s", result.detail)

    async def aclose(self) -> None:
        await self._http.aclose()
