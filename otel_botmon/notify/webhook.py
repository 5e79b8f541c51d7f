"""Generic webhook channel: the notification as JSON, optionally HMAC-signed."""

from __future__ import annotations

import hashlib
import hmac
import json

from otel_botmon.alerting.model import NotificationChannel
from otel_botmon.notify.base import DeliveryResult, HttpClientSlot, Notifier
from otel_botmon.notify.config import Secret
from otel_botmon.notify.message import Notification

__all__ = ["SIGNATURE_HEADER", "WebhookNotifier", "sign"]

SIGNATURE_HEADER = "X-Botmon-Signature"


def sign(secret: str, body: bytes) -> str:
    """The signature header value: ``sha256=`` + hex HMAC-SHA256 of the exact body bytes.

    A receiver recomputes it over the raw request body and compares with
    ``hmac.compare_digest``.
    """
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookNotifier(Notifier):
    """POSTs ``notification.to_dict()`` (for a storm summary, with an ``alerts`` list of
    every notification it stands for) to one URL.

    Headers: ``Idempotency-Key`` (the notification id, stable across redeliveries) and,
    when a secret is configured, ``X-Botmon-Signature``. Status handling is
    :func:`~otel_botmon.notify.base.classify_response`.
    """

    channel = NotificationChannel.WEBHOOK

    def __init__(
        self, url: Secret, index: int, timeout: float, hmac_secret: Secret | None = None
    ) -> None:
        self.destination = f"webhook#{index}"
        self._url = url
        self._timeout = timeout
        self._secret = hmac_secret
        self._http = HttpClientSlot(timeout)

    async def send(self, notification: Notification) -> DeliveryResult:
        body = json.dumps(notification.to_dict(), ensure_ascii=False).encode()
        headers = {"Idempotency-Key": notification.id}
        if self._secret is not None:
            headers[SIGNATURE_HEADER] = sign(self._secret.reveal(), body)
        return await self._http.post_json(self._url.reveal(), headers=headers, content=body)

    async def aclose(self) -> None:
        await self._http.aclose()
