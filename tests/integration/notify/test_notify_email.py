"""Email through a real SMTP server (aiosmtpd): plain, STARTTLS and implicit TLS, verified."""

from __future__ import annotations

import random
from typing import Any

from aiosmtpd.controller import Controller

from otel_botmon.alerting.model import AlertSeverity, NotificationChannel
from otel_botmon.notify import AttemptRecord, NotificationConfig, NotificationDispatcher
from otel_botmon.notify.email import EmailNotifier
from otel_botmon.notify.message import Notification
from tests.integration.notify.conftest import SmtpInbox, TlsSmtp
from tests.integration.notify.receivers import wait_until_async
from tests.services import free_port

HOSTILE = "<script>alert('x')</script> & friends"


async def send_one(recipients: tuple[str, ...] = ("admin@example.com", "ops@example.com"),
                   **kwargs: Any) -> list[AttemptRecord]:
    """Send one hostile-looking alert by email; return the recorded attempts."""
    config = NotificationConfig(
        console=False, email_from="bot@example.com",
        email_to=list(recipients), smtp_timeout=5.0,
        retry_initial_delay=0.05, retry_max_delay=0.1, give_up_after=2.0, **kwargs)
    dispatcher = NotificationDispatcher(config, rng=random.Random(3))
    dispatcher.enqueue(Notification(
        alert_id="a1", title=f"Order rejected {HOSTILE}", message=HOSTILE, value=3.0,
        severity=AlertSeverity.CRITICAL, channels=[NotificationChannel.EMAIL]))
    await dispatcher.start()
    assert await dispatcher.drain(10)
    await dispatcher.stop()
    records = dispatcher.attempts("a1")
    dispatcher.close()
    return records


async def test_plain_smtp_delivers_text_and_escaped_html(smtp_server: SmtpInbox) -> None:
    records = await send_one(smtp_server=smtp_server.host, smtp_port=smtp_server.port,
                                smtp_use_tls=False)
    assert [r.outcome for r in records] == ["delivered"]
    [message] = smtp_server.messages
    [envelope] = smtp_server.envelopes
    assert sorted(envelope.rcpt_tos) == ["admin@example.com", "ops@example.com"]
    assert message["Subject"].strip().startswith("[CRITICAL] FIRING: Order rejected <script>")
    assert message["From"] == "bot@example.com"
    plain = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    rich = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert HOSTILE in plain and "Value: 3" in plain and "Severity: critical" in plain
    assert "<script>" not in rich and "&lt;script&gt;" in rich


async def test_starttls_with_a_verified_certificate(starttls_smtp_server: TlsSmtp) -> None:
    inbox = starttls_smtp_server.inbox
    records = await send_one(smtp_server=inbox.host, smtp_port=inbox.port,
                                smtp_use_tls=True, smtp_ca_file=str(starttls_smtp_server.ca_file))
    assert [r.outcome for r in records] == ["delivered"]
    assert len(inbox.messages) == 1


async def test_starttls_refuses_an_untrusted_certificate(starttls_smtp_server: TlsSmtp) -> None:
    inbox = starttls_smtp_server.inbox
    records = await send_one(smtp_server=inbox.host, smtp_port=inbox.port, smtp_use_tls=True)
    assert records[-1].outcome == "failed"
    assert "certificate" in records[-1].detail.lower()
    assert inbox.messages == []


async def test_implicit_tls(implicit_tls_smtp_server: TlsSmtp) -> None:
    inbox = implicit_tls_smtp_server.inbox
    records = await send_one(smtp_server=inbox.host, smtp_port=inbox.port, smtp_use_ssl=True,
                                smtp_ca_file=str(implicit_tls_smtp_server.ca_file))
    assert [r.outcome for r in records] == ["delivered"]
    assert len(inbox.messages) == 1


async def test_unknown_recipient_fails_permanently(smtp_server: SmtpInbox) -> None:
    records = await send_one(("nobody@example.com",), smtp_server=smtp_server.host,
                             smtp_port=smtp_server.port, smtp_use_tls=False)
    assert [r.outcome for r in records] == ["failed"]
    assert "550" in records[0].detail and "no such user" in records[0].detail
    assert smtp_server.messages == []


async def test_temporary_refusal_is_retried(smtp_server: SmtpInbox) -> None:
    records = await send_one(("busy@example.com",), smtp_server=smtp_server.host,
                             smtp_port=smtp_server.port, smtp_use_tls=False)
    assert [r.outcome for r in records] == ["retry", "delivered"]
    assert "451" in records[0].detail
    assert len(smtp_server.messages) == 1


async def test_each_recipient_gets_it_once_and_a_deferred_one_is_retried_alone(
    smtp_server: SmtpInbox,
) -> None:
    # one takes it, one refuses it for good (550), one defers it once (451): aiosmtplib
    # raises only when every recipient refuses, so the others' answers must be read
    records = await send_one(("ops@example.com", "nobody@example.com", "busy@example.com"),
                             smtp_server=smtp_server.host, smtp_port=smtp_server.port,
                             smtp_use_tls=False)
    assert [r.outcome for r in records] == ["retry", "delivered"], records
    assert "550" in records[0].detail and "451" in records[0].detail
    assert "taken by 1 of 3" in records[0].detail
    received = [to for envelope in smtp_server.envelopes for to in envelope.rcpt_tos]
    assert sorted(received) == ["busy@example.com", "ops@example.com"]  # once each


class _Sessions:
    """Accepts mail and remembers which SMTP session (connection) carried each."""

    def __init__(self) -> None:
        self.sessions: list[int] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.sessions.append(id(session))
        return "250 OK"


def _mail(n: int) -> Notification:
    return Notification(alert_id=f"a{n}", title=f"alert {n}", severity=AlertSeverity.CRITICAL,
                        channels=[NotificationChannel.EMAIL])


async def test_messages_share_one_smtp_session_and_a_closed_one_is_replaced() -> None:
    handler = _Sessions()
    # the server drops a session idle for 0.3 s (aiosmtpd answers 421 and closes)
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(),
                            timeout=0.3)
    controller.start()
    notifier = EmailNotifier(NotificationConfig(
        console=False, smtp_server="127.0.0.1", smtp_port=controller.port,
        smtp_use_tls=False, email_from="bot@example.com", email_to=["ops@example.com"],
        smtp_timeout=5.0))
    try:
        for n in range(3):
            assert (await notifier.send(_mail(n))).ok
        session = notifier._smtp
        assert session is not None
        await wait_until_async(lambda: not session.is_connected, 5.0,
                               what="the server to close the idle session")
        assert (await notifier.send(_mail(3))).ok
    finally:
        await notifier.aclose()
        controller.stop()
    assert len(handler.sessions) == 4
    assert len(set(handler.sessions[:3])) == 1 and handler.sessions[3] != handler.sessions[0]
