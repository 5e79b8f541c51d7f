"""Telegram channel: Bot API ``sendMessage`` with HTML formatting, cut at 4096 characters."""

from __future__ import annotations

import html
from typing import Final

from otel_botmon.alerting.model import NotificationChannel
from otel_botmon.notify.base import DeliveryResult, HttpClientSlot, Notifier
from otel_botmon.notify.config import Secret
from otel_botmon.notify.message import Notification

__all__ = ["MAX_MESSAGE_LENGTH", "TelegramNotifier", "telegram_text"]

MAX_MESSAGE_LENGTH: Final = 4096
_ELLIPSIS: Final = "…"


def _cut_escaped(text: str, limit: int) -> str:
    """Cut HTML-escaped text to ``limit`` characters without splitting an entity."""
    if len(text) <= limit:
        return text
    cut = text[: max(0, limit - len(_ELLIPSIS))]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]  # never leave half of "&amp;" behind: Telegram rejects it
    return cut + _ELLIPSIS


def telegram_text(notification: Notification, limit: int = MAX_MESSAGE_LENGTH) -> str:
    """The message in Telegram's HTML mode: the subject in bold, then the message and
    the facts, every value HTML-escaped. The result is at most ``limit`` characters
    (counting markup, which Telegram does not, so it is always accepted); longer text is
    cut and ends with an ellipsis."""
    subject = notification.subject
    if len(subject) > 200:
        subject = subject[:199] + _ELLIPSIS
    head = f"<b>{html.escape(subject)}</b>\n"
    body_lines = [notification.message] if notification.message else []
    body_lines.extend(f"{name}: {value}" for name, value in notification.facts())
    body = html.escape("\n".join(body_lines), quote=False)
    return head + _cut_escaped(body, limit - len(head))


class TelegramNotifier(Notifier):
    """POSTs ``{chat_id, text, parse_mode: "HTML"}`` to ``{api}/bot{token}/sendMessage``.

    Telegram's 429 carries ``parameters.retry_after`` in the JSON body, which the
    dispatcher honours; 400 (chat not found), 401 (bad token) and 403 (bot blocked)
    fail permanently with Telegram's description.
    """

    channel = NotificationChannel.TELEGRAM

    def __init__(self, api_url: str, token: Secret, chat_id: str, timeout: float) -> None:
        self.destination = "telegram"
        self._api_url = api_url.rstrip("/")
        self._token = token
        self._chat_id = chat_id
        self._timeout = timeout
        self._http = HttpClientSlot(timeout)

    async def send(self, notification: Notification) -> DeliveryResult:
        url = f"{self._api_url}/bot{self._token.reveal()}/sendMessage"
        payload = {
            "chat_id": self._chat_id,
            "text": telegram_text(notification),
            "parse_mode": "HTML",
            "disable_web_page_preview": True,
        }
        return await self._http.post_json(url, payload)

    async def aclose(self) -> None:
        await self._http.aclose()
