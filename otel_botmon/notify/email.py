"""Email channel: SMTP with STARTTLS or implicit TLS (verifying), plain text plus HTML."""

from __future__ import annotations

import asyncio
import html
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from otel_botmon.alerting.model import NotificationChannel
from otel_botmon.notify.base import DeliveryResult, Notifier
from otel_botmon.notify.config import NotificationConfig, Secret
from otel_botmon.notify.message import Notification

__all__ = ["EmailNotifier", "build_email"]

_SEVERITY_COLOURS = {
    "info": "#439FE0", "warning": "#ECB22E", "critical": "#E01E5A", "emergency": "#8B0000",
}


def _one_line(text: str) -> str:
    # A newline in a header would be header injection; EmailMessage refuses it anyway.
    return " ".join(text.split())[:200]


def build_email(notification: Notification, sender: str, recipients: list[str]) -> EmailMessage:
    """The message: subject line, plain-text part and an HTML part in which every value
    from the alert is HTML-escaped. A ``Message-ID`` derived from the notification id
    lets a mailbox spot a redelivery."""
    message = EmailMessage()
    message["Subject"] = _one_line(notification.subject)
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid(idstring=notification.id, domain="otel-botmon")
    message["X-Botmon-Alert-Id"] = _one_line(notification.alert_id)
    message.set_content(notification.text())
    colour = _SEVERITY_COLOURS.get(notification.severity.value, "#888888")
    rows = "".join(
        f"<tr><th align='left'>{html.escape(name)}</th><td>{html.escape(value)}</td></tr>"
        for name, value in notification.facts()
    )
    body = html.escape(notification.message).replace("\n", "<br>")
    message.add_alternative(
        "<!DOCTYPE html><html><body>"
        f"<h2 style='color:{colour}'>{html.escape(notification.subject)}</h2>"
        f"<p>{body}</p><table>{rows}</table></body></html>",
        subtype="html",
    )
    return message


class EmailNotifier(Notifier):
    """Sends through the configured SMTP server with aiosmtplib.

    ``smtp_use_ssl`` gives implicit TLS, else ``smtp_use_tls`` requires STARTTLS; both
    verify the server certificate with ``ssl.create_default_context()`` (plus
    ``smtp_ca_file``). SMTP 4xx answers and connection errors are retried; 5xx answers
    (refused recipients, failed authentication) and certificate errors fail permanently.
    """

    channel = NotificationChannel.EMAIL

    def __init__(self, config: NotificationConfig) -> None:
        self.destination = "email"
        self._config = config
        self._tls: ssl.SSLContext | None = None

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

    async def send(self, notification: Notification) -> DeliveryResult:
        import aiosmtplib  # the "email" extra; imported only when email is configured

        config = self._config
        assert config.email_from is not None
        message = build_email(notification, config.email_from, list(config.email_to))
        context = await self._tls_context()
        password = config.smtp_password
        try:
            await aiosmtplib.send(
                message,
                hostname=config.smtp_server,
                port=config.smtp_port,
                username=config.smtp_username,
                password=password.reveal() if isinstance(password, Secret) else None,
                use_tls=config.smtp_use_ssl,
                start_tls=config.smtp_use_tls and not config.smtp_use_ssl,
                tls_context=context,
                timeout=config.smtp_timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            detail = "recipients refused: " + "; ".join(
                f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
            if codes and all(400 <= code < 500 for code in codes):
                return DeliveryResult.retry(detail)  # greylisting, mailbox busy
            return DeliveryResult.failed(detail)
        except aiosmtplib.SMTPResponseException as exc:
            detail = f"SMTP {exc.code}: {exc.message}"
            if 400 <= exc.code < 500:
                return DeliveryResult.retry(detail)
            return DeliveryResult.failed(detail)
        except ssl.SSLCertVerificationError as exc:
            return DeliveryResult.failed(f"TLS certificate not trusted: {exc.verify_message}")
        except (aiosmtplib.SMTPException, OSError) as exc:
            return DeliveryResult.retry(f"{type(exc).__name__}: {exc}")
        return DeliveryResult.delivered(f"sent to {len(config.email_to)} recipient(s)")
