"""Slack channel: an incoming-webhook message with Block Kit blocks and a severity colour."""

from __future__ import annotations

from typing import Any

from otel_botmon.alerting.model import NotificationChannel
from otel_botmon.notify.base import DeliveryResult, HttpClientSlot, Notifier
from otel_botmon.notify.config import Secret
from otel_botmon.notify.message import Notification

__all__ = ["SEVERITY_COLOURS", "SlackNotifier", "slack_payload"]

SEVERITY_COLOURS = {
    "info": "#439FE0", "warning": "#ECB22E", "critical": "#E01E5A", "emergency": "#8B0000",
}
_SECTION_LIMIT = 3000  # Slack rejects a section text longer than this


def escape(text: str) -> str:
    """Slack's mrkdwn escaping: ``&``, ``<`` and ``>`` only (so ``<!channel>`` and links
    in alert text stay text)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def slack_payload(notification: Notification, channel: str | None = None) -> dict[str, Any]:
    """The JSON body: ``text`` (the fallback shown in notifications), a header and a
    section in ``blocks``, and an attachment coloured by severity carrying the facts."""
    fields = [
        {"type": "mrkdwn", "text": _cut(f"*{escape(name)}*\n{escape(value)}", 2000)}
        for name, value in notification.facts()
    ][:10]  # a section holds at most 10 fields
    blocks: list[dict[str, Any]] = [
        {"type": "header",
         "text": {"type": "plain_text", "text": _cut(notification.subject, 150)}},
    ]
    if notification.message:
        blocks.append({"type": "section",
                       "text": {"type": "mrkdwn",
                                "text": _cut(escape(notification.message), _SECTION_LIMIT)}})
    payload: dict[str, Any] = {
        "text": _cut(escape(notification.subject), _SECTION_LIMIT),
        "blocks": blocks,
        "attachments": [{
            "color": SEVERITY_COLOURS.get(notification.severity.value, "#888888"),
            "blocks": [{"type": "section", "fields": fields}],
        }],
    }
    if channel:
        payload["channel"] = channel
    return payload


class SlackNotifier(Notifier):
    """POSTs :func:`slack_payload` to the incoming-webhook URL. Slack's 429 carries
    ``Retry-After``; its 400/403/404/410 answers (``invalid_payload``, ``no_service``,
    ``channel_is_archived``) fail permanently with that reason."""

    channel = NotificationChannel.SLACK

    def __init__(self, url: Secret, channel: str | None, timeout: float) -> None:
        self.destination = "slack"
        self._url = url
        self._slack_channel = channel
        self._timeout = timeout
        self._http = HttpClientSlot(timeout)

    async def send(self, notification: Notification) -> DeliveryResult:
        return await self._http.post_json(
            self._url.reveal(), slack_payload(notification, self._slack_channel))

    async def aclose(self) -> None:
        await self._http.aclose()
