"""Slack channel: an incoming-webhook message with Block Kit blocks and a severity colour."""

from __future__ import annotations

from typing import Any

from otel_botmon.alerting.model import NotificationChannel
from otel_botmon.notify.base import DeliveryResult, HttpClientSlot, Notifier
from otel_botmon.notify.config import Secret
from otel_botmon.notify.message import Notification, cut_escaped, fit_message

__all__ = ["SEVERITY_COLOURS", "SlackNotifier", "slack_payload"]

SEVERITY_COLOURS = {
    "info": "#439FE0", "warning": "#ECB22E", "critical": "#E01E5A", "emergency": "#8B0000",
}
# Block Kit limits (https://api.slack.com/reference/block-kit/blocks): "up to 50 blocks
# in each message"; a section's text at most 3000 characters, its fields at most 10 of
# 2000 characters each; a header's text at most 150 characters.
_MAX_BLOCKS = 50
_SECTION_LIMIT = 3000
_FIELD_LIMIT = 2000
_MAX_FIELDS = 10
_HEADER_LIMIT = 150
# All blocks' text together: Slack answers msg_blocks_too_long from about 13,000
# characters although no such limit is documented (slackapi/bolt-js#2509), so the
# alert list stays under 12,000. Sections packed greedily from it number at most
# 2 * 12000 / 3000 + 1 = 9, well within the 50 blocks.
_BLOCKS_TEXT_BUDGET = 12_000
# The top-level ``text`` (the notification fallback) is only the subject: Slack
# truncates a text over 40,000 characters
# (https://api.slack.com/changelog/2018-04-truncating-really-long-messages).


def escape(text: str) -> str:
    """Slack's mrkdwn escaping: ``&``, ``<`` and ``>`` only (so ``<!channel>`` and links
    in alert text stay text)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _sections(text: str) -> list[str]:
    """``text`` (lines of at most a section's length) packed into as few sections as
    the section limit allows, each cut at a line boundary."""
    sections: list[str] = []
    for line in text.split("\n"):
        if sections and len(sections[-1]) + 1 + len(line) <= _SECTION_LIMIT:
            sections[-1] += "\n" + line
        else:
            sections.append(line)
    return [section for section in sections if section.strip()]  # Slack rejects a blank one


def slack_payload(notification: Notification, channel: str | None = None) -> dict[str, Any]:
    """The JSON body: ``text`` (the fallback shown in notifications), a header and the
    message in section blocks, and an attachment coloured by severity carrying the facts.

    Every part is within Slack's limits: a long message is cut at a line boundary (a
    summary's alert list ends with "… and N more alerts") and split into sections.
    """
    fields = [
        {"type": "mrkdwn", "text": cut_escaped(f"*{escape(name)}*\n{escape(value)}",
                                               _FIELD_LIMIT)}
        for name, value in notification.facts()
    ][:_MAX_FIELDS]
    blocks: list[dict[str, Any]] = [
        {"type": "header",
         "text": {"type": "plain_text", "text": _cut(notification.subject, _HEADER_LIMIT)}},
    ]
    message = fit_message(notification, _BLOCKS_TEXT_BUDGET, line_limit=_SECTION_LIMIT,
                          escape=escape)
    if message:
        blocks += [{"type": "section", "text": {"type": "mrkdwn", "text": section}}
                   for section in _sections(message)][: _MAX_BLOCKS - 1]
    payload: dict[str, Any] = {
        "text": cut_escaped(escape(notification.subject), _SECTION_LIMIT),
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
