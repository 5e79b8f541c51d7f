"""Telegram channel: Bot API ``sendMessage`` with HTML formatting, cut at 4096 UTF-16 units."""

from __future__ import annotations

import html
from typing import Final

from otel_botmon.alerting.model import NotificationChannel
from otel_botmon.notify.base import DeliveryResult, HttpClientSlot, Notifier
from otel_botmon.notify.config import Secret
from otel_botmon.notify.message import Notification, cut_escaped, fit_message

__all__ = ["MAX_MESSAGE_LENGTH", "TelegramNotifier", "telegram_text", "utf16_length"]

# sendMessage: "Text of the message to be sent, 1-4096 characters after entities
# parsing" (https://core.telegram.org/bots/api#sendmessage). Telegram measures text in
# UTF-16 code units (its entity offsets and lengths are documented so): an emoji outside
# the BMP is two. Counting the HTML markup too keeps every text under the limit.
MAX_MESSAGE_LENGTH: Final = 4096
_ELLIPSIS: Final = "…"


def utf16_length(text: str) -> int:
    """Length of ``text`` as Telegram counts it: UTF-16 code units."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _escape(text: str) -> str:
    return html.escape(text, quote=False)


def telegram_text(notification: Notification, limit: int = MAX_MESSAGE_LENGTH) -> str:
    """The message in Telegram's HTML mode: the subject in bold, then the message and
    the facts, every value HTML-escaped. The result is at most ``limit`` UTF-16 code
    units, counting markup, which Telegram does not (the subject line, at most about
    1,200 characters once escaped, is never cut, so a limit must leave room for it; the
    default does). A long message is cut at a line boundary (a summary's alert list ends
    with "… and N more alerts"); the facts take what the message leaves, at least half,
    and are cut with an ellipsis.
    """
    text = _fit(notification, limit)
    if utf16_length(text) <= limit:
        return text
    # Characters outside the BMP count twice. Fitting to half the limit in characters
    # always fits; search for the largest budget in characters that fits (at most
    # log2(limit) more fits, and only for such text).
    fits, over = limit // 2, limit
    best = _fit(notification, fits)
    while over - fits > 1:
        budget = (fits + over) // 2
        candidate = _fit(notification, budget)
        if utf16_length(candidate) <= limit:
            fits, best = budget, candidate
        else:
            over = budget
    return best


def _fit(notification: Notification, limit: int) -> str:
    """:func:`telegram_text` counting characters (code points)."""
    subject = notification.subject
    if len(subject) > 200:
        subject = subject[:199] + _ELLIPSIS
    head = f"<b>{html.escape(subject)}</b>\n"
    room = limit - len(head)
    facts = _escape("\n".join(f"{name}: {value}" for name, value in notification.facts()))
    # one long alert line must not crowd the others out of a summary
    line_limit = room // 4 if notification.summary_of else None
    message = fit_message(notification, room - min(len(facts), room // 2) - 1,
                          line_limit=line_limit, escape=_escape)
    if not message:
        return head + cut_escaped(facts, room)
    return f"{head}{message}\n{cut_escaped(facts, room - len(message) - 1)}"


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
