"""What every channel implements, and how an HTTP answer becomes a delivery outcome.

A *notifier* delivers to one destination (one webhook URL, one Slack webhook, one
Telegram chat ...). It never raises for a delivery problem: it returns a
:class:`DeliveryResult` saying delivered, retry (with an optional ``retry_after``) or
failed (permanently, with the reason).
"""

from __future__ import annotations

import abc
import asyncio
import email.utils
import enum
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

import httpx

from otel_botmon._log_redaction import install_log_redaction
from otel_botmon.alerting.model import NotificationChannel
from otel_botmon.notify.message import Notification
from otel_botmon.notify.transport import LeanHttpClient, TransportError, proxied
from otel_botmon.redaction import redact_text

__all__ = [
    "DeliveryOutcome",
    "DeliveryResult",
    "HttpClientSlot",
    "Notifier",
    "classify_response",
    "classify_transport_error",
    "parse_retry_after",
]


class DeliveryOutcome(str, enum.Enum):
    """How one attempt ended."""

    DELIVERED = "delivered"
    RETRY = "retry"
    """Transient: the dispatcher tries again later (after ``retry_after`` if given)."""
    FAILED = "failed"
    """Permanent: retrying cannot help (a 4xx other than 429, a bad address)."""


@dataclass(frozen=True)
class DeliveryResult:
    """The outcome of one delivery attempt; ``detail`` is redacted, safe to store and show."""

    outcome: DeliveryOutcome
    detail: str = ""
    status_code: int | None = None
    retry_after: float | None = None

    @classmethod
    def delivered(cls, detail: str = "", status_code: int | None = None) -> DeliveryResult:
        return cls(DeliveryOutcome.DELIVERED, redact_text(detail), status_code)

    @classmethod
    def retry(
        cls, detail: str, status_code: int | None = None, retry_after: float | None = None
    ) -> DeliveryResult:
        return cls(DeliveryOutcome.RETRY, redact_text(detail), status_code, retry_after)

    @classmethod
    def failed(cls, detail: str, status_code: int | None = None) -> DeliveryResult:
        return cls(DeliveryOutcome.FAILED, redact_text(detail), status_code)

    @property
    def ok(self) -> bool:
        return self.outcome is DeliveryOutcome.DELIVERED

    def as_event_detail(self, channel: NotificationChannel | str) -> dict[str, Any]:
        """The detail of a ``notified`` alert event: channel, ok, outcome, reason."""
        return {
            "channel": getattr(channel, "value", channel),
            "ok": self.ok,
            "outcome": self.outcome.value,
            "detail": self.detail,
            "status_code": self.status_code,
            "retry_after": self.retry_after,
        }


class Notifier(abc.ABC):
    """Delivers notifications to one destination of one channel.

    ``destination`` names it in the outbox and in events (``"webhook#1"``, ``"slack"``),
    never with a secret in it. ``collapsible`` says whether an alert storm may be sent as
    one summary (chat and mail) or must go one by one (PagerDuty, Alertmanager keep
    per-alert state).
    """

    channel: NotificationChannel
    destination: str
    collapsible: bool = True

    @abc.abstractmethod
    async def send(self, notification: Notification) -> DeliveryResult:
        """Deliver one notification. Never raises for a delivery problem."""

    async def send_many(self, notifications: Sequence[Notification]) -> DeliveryResult:
        """Deliver several in one request where the receiver takes batches; the default
        sends them one by one and stops at the first non-delivered result."""
        result = DeliveryResult.delivered()
        for notification in notifications:
            result = await self.send(notification)
            if not result.ok:
                return result
        return result

    @property
    def batches(self) -> bool:
        """Whether :meth:`send_many` sends one request (the dispatcher then batches)."""
        return False

    async def background(self) -> None:
        """Work the destination needs besides deliveries (Alertmanager's re-sends). The
        dispatcher runs it as a task while started when a subclass overrides it."""
        return None

    async def aclose(self) -> None:
        """Release connections; the default has none."""
        return None

    def after_fork_in_child(self) -> None:
        """In a forked child: forget the parent's kept-alive connections without using
        them (the two processes would read each other's answers on one socket). The
        default does so for every :class:`HttpClientSlot` among the attributes."""
        for value in vars(self).values():
            if isinstance(value, HttpClientSlot):
                value.forget()


MAX_RETRY_AFTER_S: Final = 86_400.0
"""The longest wait a receiver's ``Retry-After`` gets: a day (then it is asked again)."""


def _bounded_wait(value: float) -> float | None:
    """``value`` seconds between 0 and :data:`MAX_RETRY_AFTER_S`, or None when it is not
    a finite number (a JSON ``1e999`` is infinite, an int of 400 digits overflows)."""
    try:
        seconds = float(value)
    except OverflowError:
        return MAX_RETRY_AFTER_S if value > 0 else None
    return min(MAX_RETRY_AFTER_S, max(0.0, seconds)) if math.isfinite(seconds) else None


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP-date.

    Returns None for a missing or unparseable value (``inf``, ``nan``, ``1e999`` too:
    the dispatcher's own backoff applies); never negative, at most
    :data:`MAX_RETRY_AFTER_S`.
    """
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return _bounded_wait(seconds)
    if len(value) > 64:  # an HTTP-date is 29 characters
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    current = time.time() if now is None else now
    return min(MAX_RETRY_AFTER_S, max(0.0, when.timestamp() - current))


class HttpAnswer(Protocol):
    """What classification reads of an answer (``httpx.Response`` or the lean client's)."""

    @property
    def status_code(self) -> int: ...
    @property
    def reason_phrase(self) -> str: ...
    @property
    def content(self) -> bytes: ...
    @property
    def text(self) -> str: ...
    @property
    def headers(self) -> Any: ...
    def json(self) -> Any: ...


def _json_retry_after(response: HttpAnswer) -> float | None:
    # Telegram answers 429 with {"ok": false, "parameters": {"retry_after": 5}}.
    try:
        body: Any = response.json()
    except (ValueError, UnicodeDecodeError):
        return None
    if isinstance(body, dict):
        params = body.get("parameters")
        if isinstance(params, dict):
            value = params.get("retry_after")
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return _bounded_wait(value)
    return None


def _reason(response: HttpAnswer) -> str:
    # Redacted whole (redact_text keeps its first 16 KB), then cut: cut first, a
    # registered secret the cut split would keep its first part.
    text = redact_text(response.text) if response.content else ""
    try:
        body = json.loads(text) if text else None
    except ValueError:
        body = None
    if isinstance(body, dict):
        # Slack/Telegram/PagerDuty put the useful words in one of these.
        for key in ("description", "message", "error", "errors", "status"):
            if key in body:
                text = redact_text(f"{key}: {body[key]}")
                break
    text = text[:300].strip()
    reason = f"HTTP {response.status_code} {response.reason_phrase}".strip()
    return f"{reason}: {text}" if text else reason


def classify_response(response: HttpAnswer) -> DeliveryResult:
    """Map an HTTP answer to an outcome: 2xx delivered; 429 and 503 retry honouring
    ``Retry-After`` (header, or Telegram's ``parameters.retry_after``); other 5xx, 408
    and 425 retry; any other status fails permanently with the answer as reason."""
    status = response.status_code
    if 200 <= status < 300:
        return DeliveryResult.delivered(f"HTTP {status}", status)
    if status in (429, 503):
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        if retry_after is None:
            retry_after = _json_retry_after(response)
        return DeliveryResult.retry(_reason(response), status, retry_after)
    if status >= 500 or status in (408, 425):
        return DeliveryResult.retry(_reason(response), status)
    return DeliveryResult.failed(_reason(response), status)


def classify_transport_error(exc: BaseException) -> DeliveryResult:
    """A network error or timeout is transient. The message is redacted (httpx puts the
    URL, which may hold a token, into some of its messages)."""
    kind = type(exc).__name__
    return DeliveryResult.retry(f"{kind}: {exc}" if str(exc) else kind)


async def post_json(
    client: httpx.AsyncClient,
    url: str,
    payload: object,
    *,
    headers: dict[str, str] | None = None,
    content: bytes | None = None,
) -> DeliveryResult:
    """POST JSON (``payload``, or pre-encoded ``content``) and classify the answer."""
    body = content if content is not None else json.dumps(payload).encode()
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    try:
        response = await client.post(url, content=body, headers=all_headers)
    except httpx.HTTPError as exc:
        return classify_transport_error(exc)
    return classify_response(response)


def new_http_client(timeout: float) -> httpx.AsyncClient:
    """An HTTP client for notifiers: the given timeout, no redirects followed (a
    redirect of a webhook is a configuration error worth seeing), secrets kept out of
    httpx's log lines."""
    install_log_redaction()
    return httpx.AsyncClient(timeout=timeout, follow_redirects=False)


class HttpClientSlot:
    """A notifier's HTTP client: POSTs JSON and classifies the answer.

    Requests go through :class:`~otel_botmon.notify.transport.LeanHttpClient` (h11 over
    asyncio, kept-alive connections: a fraction of httpx's CPU per request). A URL the
    environment routes through a proxy (``HTTPS_PROXY``, ``HTTP_PROXY``, ``ALL_PROXY``,
    minus ``NO_PROXY``) goes through httpx instead, which speaks to proxies; that
    client is built on first use on a worker thread (it loads a CA bundle: 0.3 to 1.2 s
    measured, which on the event loop would stall every task, trades included).
    """

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._client: httpx.AsyncClient | None = None
        self._lean: LeanHttpClient | None = None
        self._proxied: dict[str, bool] = {}

    async def get(self) -> httpx.AsyncClient:
        """The httpx client (for proxied URLs)."""
        client = self._client
        if client is None:
            built = await asyncio.to_thread(new_http_client, self._timeout)
            if self._client is None:
                self._client = built
            else:  # another task of this notifier built one meanwhile: keep the first
                await built.aclose()
            client = self._client
        return client

    def _via_proxy(self, url: str) -> bool:
        known = self._proxied.get(url)
        if known is None:
            known = proxied(url)
            if len(self._proxied) < 64:
                self._proxied[url] = known
        return known

    async def post_json(
        self,
        url: str,
        payload: object = None,
        *,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
    ) -> DeliveryResult:
        """POST JSON (``payload``, or pre-encoded ``content``) and classify the answer."""
        if self._via_proxy(url):
            return await post_json(await self.get(), url, payload, headers=headers,
                                   content=content)
        body = content if content is not None else json.dumps(payload).encode()
        lean = self._lean
        if lean is None:
            lean = self._lean = LeanHttpClient(self._timeout)
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        try:
            response = await lean.post(url, body, all_headers)
        except TransportError as exc:
            return classify_transport_error(exc)
        return classify_response(response)

    def forget(self) -> None:
        """Drop the clients without closing their connections (the parent's, after a
        fork: closing would send a TLS close on the parent's socket); new ones are made
        on first use."""
        self._client = None
        self._lean = None

    async def aclose(self) -> None:
        client, self._client = self._client, None
        lean, self._lean = self._lean, None
        if lean is not None:
            await lean.aclose()
        if client is not None:
            await client.aclose()
