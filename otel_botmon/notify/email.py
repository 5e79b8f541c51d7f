"""Email channel: SMTP with STARTTLS or implicit TLS (verifying), plain text plus HTML."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import html
import secrets
import ssl
from collections import OrderedDict
from email.header import Header
from email.message import EmailMessage
from email.policy import SMTP as _SMTP_POLICY
from email.utils import formatdate
from typing import Any

from otel_botmon.alerting.model import NotificationChannel
from otel_botmon.notify.base import DeliveryResult, Notifier
from otel_botmon.notify.config import NotificationConfig, Secret
from otel_botmon.notify.message import Notification

__all__ = ["EmailNotifier", "build_email", "email_bytes"]

_SESSION_IDLE = 30.0
_DEFERRED_KEPT = 1000  # notifications whose deferred recipients are remembered
"""Seconds an SMTP session stays open after its last message, for the next one (a
storm's messages then share one connection, TLS handshake and login)."""

_SEVERITY_COLOURS = {
    "info": "#439FE0", "warning": "#ECB22E", "critical": "#E01E5A", "emergency": "#8B0000",
}


def _one_line(text: str) -> str:
    # A newline in a header would be header injection; EmailMessage refuses it anyway.
    return " ".join(text.split())[:200]


def _html(notification: Notification) -> str:
    colour = _SEVERITY_COLOURS.get(notification.severity.value, "#888888")
    rows = "".join(
        f"<tr><th align='left'>{html.escape(name)}</th><td>{html.escape(value)}</td></tr>"
        for name, value in notification.facts()
    )
    body = html.escape(notification.message).replace("\n", "<br>")
    return ("<!DOCTYPE html><html><body>"
            f"<h2 style='color:{colour}'>{html.escape(notification.subject)}</h2>"
            f"<p>{body}</p><table>{rows}</table></body></html>")


def message_id(notification: Notification) -> str:
    """``<notification id@otel-botmon>``: the same for every delivery of one notification
    (a redelivery after a crash is recognisable), unlike ``make_msgid``, which adds the
    time and a random number. An id with other characters than letters, digits, ``.``,
    ``_`` and ``-`` is replaced by its SHA-256."""
    ident = notification.id
    if not ident or not all(c.isascii() and (c.isalnum() or c in "._-") for c in ident):
        ident = hashlib.sha256(ident.encode()).hexdigest()[:32]
    return f"<{ident}@otel-botmon>"


def build_email(notification: Notification, sender: str, recipients: list[str]) -> EmailMessage:
    """The message: subject line, plain-text part and an HTML part in which every value
    from the alert is HTML-escaped. A ``Message-ID`` derived from the notification id
    lets a mailbox spot a redelivery. (:func:`email_bytes` is the same message, built
    for sending.)"""
    message = EmailMessage()
    message["Subject"] = _one_line(notification.subject)
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = message_id(notification)
    message["X-Botmon-Alert-Id"] = _one_line(notification.alert_id)
    message.set_content(notification.text())
    message.add_alternative(_html(notification), subtype="html")
    return message


def _header(name: str, value: str) -> bytes:
    """One header line; a value that is not plain ASCII (or looks like an encoded word)
    as RFC 2047 encoded words, by the standard library."""
    if value.isascii() and value.isprintable() and "=?" not in value:
        return f"{name}: {value}\r\n".encode("ascii")
    encoded = Header(value, "utf-8", header_name=name).encode(linesep="\r\n")
    return f"{name}: {encoded}\r\n".encode("ascii")


def _part(subtype: str, text: str) -> bytes:
    # line ends made CRLF and a final one added, as the email package does
    lines = b"\r\n".join(text.encode("utf-8").splitlines()) + b"\r\n"
    body = base64.encodebytes(lines).replace(b"\n", b"\r\n")
    return (f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
            "Content-Transfer-Encoding: base64\r\n\r\n").encode("ascii") + body


def email_bytes(notification: Notification, sender: str, recipients: list[str]) -> bytes:
    """:func:`build_email`'s message as the bytes sent (CRLF lines, both parts base64),
    assembled directly: the ``email`` package's policy machinery takes ~2.5 ms of CPU a
    message, this a small fraction. Header values are single lines (``_one_line``) and
    addresses come validated from the configuration; any non-ASCII address falls back
    to :func:`build_email`."""
    to = ", ".join(recipients)
    if not (sender.isascii() and to.isascii() and sender.isprintable() and to.isprintable()):
        return build_email(notification, sender, recipients).as_bytes(policy=_SMTP_POLICY)
    boundary = f"==botmon-{secrets.token_hex(12)}=="
    head = b"".join((
        _header("Subject", _one_line(notification.subject)),
        _header("From", sender),
        _header("To", to),
        _header("Date", formatdate(usegmt=True)),
        _header("Message-ID", message_id(notification)),
        _header("X-Botmon-Alert-Id", _one_line(notification.alert_id)),
        b"MIME-Version: 1.0\r\n",
        f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n\r\n'.encode(),
    ))
    marker = f"--{boundary}\r\n".encode()
    return b"".join((head, marker, _part("plain", notification.text()), marker,
                     _part("html", _html(notification)), f"--{boundary}--\r\n".encode()))


class EmailNotifier(Notifier):
    """Sends through the configured SMTP server with aiosmtplib, keeping the session
    (connection, TLS, login) open for ``_SESSION_IDLE`` seconds after a message for the
    next one; a kept session the server closed meanwhile is replaced once.

    ``smtp_use_ssl`` gives implicit TLS, else ``smtp_use_tls`` requires STARTTLS; both
    verify the server certificate with ``ssl.create_default_context()`` (plus
    ``smtp_ca_file``). SMTP 4xx answers and connection errors are retried; 5xx answers
    (refused recipients, failed authentication) and certificate errors fail permanently.

    Recipients are answered one by one: a message some take and others refuse is
    delivered to those that took it, says which refused it, and is sent again (to the
    ones a 4xx deferred, greylisting or a busy mailbox, only) until each has taken or
    refused it for good. Which recipients are left is kept in memory: after a restart
    the retry goes to every recipient again (at-least-once).
    """

    channel = NotificationChannel.EMAIL

    def __init__(self, config: NotificationConfig) -> None:
        self.destination = "email"
        self._config = config
        self._tls: ssl.SSLContext | None = None
        self._smtp: Any = None  # the kept session (aiosmtplib.SMTP)
        self._lock = asyncio.Lock()
        self._expiry: asyncio.TimerHandle | None = None
        self._closing: set[asyncio.Future[None]] = set()
        # notification id -> (recipients a 4xx deferred, whether another one took it)
        self._deferred: OrderedDict[str, tuple[list[str], bool]] = OrderedDict()

    def after_fork_in_child(self) -> None:
        """Forget the parent's SMTP session (its socket is the parent's) and the
        asyncio primitives of the parent's event loop."""
        self._smtp = None
        self._lock = asyncio.Lock()
        self._expiry = None
        self._closing = set()

    async def _tls_context(self) -> ssl.SSLContext | None:
        """The TLS context, built once (loading the CA bundle takes tens of ms of CPU:
        done on a worker thread, never per message, never on the event loop); None when
        the connection is not encrypted."""
        config = self._config
        if not (config.smtp_use_ssl or config.smtp_use_tls):
            return None
        if self._tls is None:
            self._tls = await asyncio.to_thread(ssl.create_default_context,
                                                cafile=config.smtp_ca_file)
        return self._tls

    async def _session(self, context: ssl.SSLContext | None) -> tuple[Any, bool]:
        """The open SMTP session (connected, TLS, logged in), or a new one; and whether
        it is new."""
        import aiosmtplib  # the "email" extra; imported only when email is configured

        if self._smtp is not None and self._smtp.is_connected:
            return self._smtp, False
        self._drop()
        config = self._config
        password = config.smtp_password
        smtp = aiosmtplib.SMTP(
            hostname=config.smtp_server,
            port=config.smtp_port,
            username=config.smtp_username,
            password=password.reveal() if isinstance(password, Secret) else None,
            use_tls=config.smtp_use_ssl,
            start_tls=config.smtp_use_tls and not config.smtp_use_ssl,
            tls_context=context,
            timeout=config.smtp_timeout,
        )
        await smtp.connect()
        self._smtp = smtp
        return smtp, True

    def _drop(self) -> None:
        """Forget the session without a word to the server (it broke, or an answer left
        it in doubt)."""
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            smtp.close()

    def _keep_open(self) -> None:
        """Close the session once it has been idle for ``_SESSION_IDLE`` seconds."""
        if self._expiry is not None:
            self._expiry.cancel()
        self._expiry = asyncio.get_running_loop().call_later(_SESSION_IDLE, self._expire)

    def _expire(self) -> None:
        self._expiry = None
        task = asyncio.ensure_future(self._quit())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _quit(self) -> None:
        async with self._lock:
            smtp, self._smtp = self._smtp, None
            if smtp is not None and smtp.is_connected:
                try:
                    await smtp.quit()
                except Exception:  # a session the server already dropped: nothing to do
                    smtp.close()

    async def send(self, notification: Notification) -> DeliveryResult:
        import aiosmtplib  # the "email" extra; imported only when email is configured

        config = self._config
        assert config.email_from is not None
        message = email_bytes(notification, config.email_from, list(config.email_to))
        recipients, taken_before = self._deferred.get(
            notification.id, (list(config.email_to), False))
        context = await self._tls_context()
        refused: dict[str, tuple[int, str]] = {}
        async with self._lock:
            try:
                smtp, fresh = await self._session(context)
                try:
                    answers = await smtp.sendmail(config.email_from, recipients, message)
                except aiosmtplib.SMTPServerDisconnected:
                    if fresh:
                        raise
                    # the server closed the kept session while it was idle: a new one
                    self._drop()
                    smtp, _ = await self._session(context)
                    answers = await smtp.sendmail(config.email_from, recipients, message)
                # the recipients refused while others took it (aiosmtplib raises only
                # when every one is refused)
                errors = answers[0] if isinstance(answers, tuple) and answers else {}
                refused = {str(r): (int(a.code), str(a.message)) for r, a in errors.items()}
            except aiosmtplib.SMTPRecipientsRefused as exc:
                refused = {str(r.recipient): (int(r.code), str(r.message))
                           for r in exc.recipients}
            except aiosmtplib.SMTPResponseException as exc:
                self._drop()  # e.g. failed authentication: start clean next time
                detail = f"SMTP {exc.code}: {exc.message}"
                if 400 <= exc.code < 500:
                    return DeliveryResult.retry(detail)
                return DeliveryResult.failed(detail)
            except ssl.SSLCertVerificationError as exc:
                self._drop()
                return DeliveryResult.failed(
                    f"TLS certificate not trusted: {exc.verify_message}")
            except (aiosmtplib.SMTPException, OSError) as exc:
                self._drop()
                return DeliveryResult.retry(f"{type(exc).__name__}: {exc}")
            finally:
                if self._smtp is not None:
                    self._keep_open()
        return self._outcome(notification.id, recipients, refused, taken_before)

    def _outcome(self, notification_id: str, recipients: list[str],
                 refused: dict[str, tuple[int, str]], taken_before: bool) -> DeliveryResult:
        """The result of one send to ``recipients`` of which ``refused`` refused it; the
        ones a 4xx deferred are kept for the next attempt."""
        self._deferred.pop(notification_id, None)
        if not refused:
            return DeliveryResult.delivered(f"sent to {len(recipients)} recipient(s)")
        later = [r for r in recipients if r in refused and 400 <= refused[r][0] < 500]
        taken = taken_before or len(refused) < len(recipients)
        detail = "; ".join(f"{r}: {code} {text}" for r, (code, text) in refused.items())
        earlier = " (the others took it earlier)" if taken_before else ""
        detail = (f"taken by {len(recipients) - len(refused)} of {len(recipients)} "
                  f"recipient(s){earlier}; refused: {detail}")
        if later:
            self._deferred[notification_id] = (later, taken)
            while len(self._deferred) > _DEFERRED_KEPT:
                self._deferred.popitem(last=False)
            return DeliveryResult.retry(detail)  # greylisting, a busy mailbox
        return DeliveryResult.delivered(detail) if taken else DeliveryResult.failed(detail)

    async def aclose(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        await self._quit()
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
