"""PagerDuty channel: Events API v2 trigger, acknowledge and resolve on one dedup_key."""

from __future__ import annotations

from typing import Any

from otel_botmon.alerting.model import AlertEventKind, AlertSeverity, NotificationChannel
from otel_botmon.notify.base import DeliveryResult, HttpClientSlot, Notifier
from otel_botmon.notify.config import Secret
from otel_botmon.notify.message import Notification

__all__ = ["PagerDutyNotifier", "pagerduty_event"]

_SEVERITY = {
    AlertSeverity.INFO: "info",
    AlertSeverity.WARNING: "warning",
    AlertSeverity.CRITICAL: "critical",
    AlertSeverity.EMERGENCY: "critical",
}
_ACTION = {
    AlertEventKind.FIRED: "trigger",
    AlertEventKind.ESCALATED: "trigger",  # a new trigger on the same key updates severity
    AlertEventKind.ACKNOWLEDGED: "acknowledge",
    AlertEventKind.RESOLVED: "resolve",
}


def pagerduty_event(
    notification: Notification, routing_key: str, source: str, client_url: str | None = None
) -> dict[str, Any]:
    """The Events v2 body. ``dedup_key`` is the alert's fingerprint, so the trigger,
    acknowledge and resolve of one alert act on one PagerDuty incident, and a redelivered
    trigger does not open a second one."""
    action = _ACTION.get(notification.event, "trigger")
    event: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": action,
        "dedup_key": notification.fingerprint[:255],
    }
    if action == "trigger":
        details: dict[str, Any] = dict(notification.facts())
        if notification.message:
            details["Message"] = notification.message
        details.update({f"label.{k}": v for k, v in notification.labels.items()})
        details.update({f"annotation.{k}": v for k, v in notification.annotations.items()})
        event["payload"] = {
            "summary": notification.subject[:1024],
            "severity": _SEVERITY[notification.severity],
            "source": source,
            "timestamp": notification.first_fired.isoformat(),
            "component": notification.labels.get("component", notification.alert_type.value),
            "class": notification.alert_type.value,
            "custom_details": details,
        }
        if client_url:
            event["client"] = "otel_botmon"
            event["client_url"] = client_url
    return event


class PagerDutyNotifier(Notifier):
    """POSTs :func:`pagerduty_event` to the Events v2 endpoint (202 = accepted; 400 =
    invalid event, permanent; 429 = throttled, retried). Sent one by one: each alert
    keeps its own incident, so storms are never collapsed here."""

    channel = NotificationChannel.PAGERDUTY
    collapsible = False

    def __init__(
        self, url: str, routing_key: Secret, source: str, timeout: float,
        client_url: str | None = None,
    ) -> None:
        self.destination = "pagerduty"
        self._url = url
        self._key = routing_key
        self._source = source
        self._timeout = timeout
        self._client_url = client_url
        self._http = HttpClientSlot(timeout)

    async def send(self, notification: Notification) -> DeliveryResult:
        if notification.event not in _ACTION:
            return DeliveryResult.delivered(f"nothing to send for {notification.event.value}")
        body = pagerduty_event(notification, self._key.reveal(), self._source, self._client_url)
        return await self._http.post_json(self._url, body)

    async def aclose(self) -> None:
        await self._http.aclose()
