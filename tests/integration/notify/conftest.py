"""Real peers for notification tests: HTTP receivers, an SMTP server, Alertmanager 0.25."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from otel_botmon import redaction
from tests.integration.fleet.alertmanager import Alertmanager, alertmanager_binary
from tests.integration.notify.receivers import Receiver
from tests.integration.notify.tls_cert import make_cert
from tests.services import free_port


@pytest.fixture(autouse=True)
def _forget_secrets() -> Iterator[None]:
    yield
    redaction.forget_secrets()


def _receiver(kind: str) -> Iterator[Receiver]:
    receiver = Receiver(kind).start()
    yield receiver
    receiver.stop()


@pytest.fixture
def slack_receiver() -> Iterator[Receiver]:
    yield from _receiver("slack")


@pytest.fixture
def telegram_receiver() -> Iterator[Receiver]:
    yield from _receiver("telegram")


@pytest.fixture
def pagerduty_receiver() -> Iterator[Receiver]:
    yield from _receiver("pagerduty")


@pytest.fixture
def webhook_receiver() -> Iterator[Receiver]:
    yield from _receiver("webhook")


@dataclass
class SmtpInbox:
    """Messages an aiosmtpd server accepted, parsed."""

    host: str
    port: int
    messages: list[Message] = field(default_factory=list)
    envelopes: list[Any] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)

    def wait_for(self, count: int, timeout: float = 10.0) -> None:
        with self.cond:
            if not self.cond.wait_for(lambda: len(self.messages) >= count, timeout):
                raise AssertionError(f"SMTP server got {len(self.messages)} messages")


class _Handler:
    """Accepts mail; refuses ``nobody@`` for good and ``busy@`` once (451, try later)."""

    def __init__(self, inbox: SmtpInbox) -> None:
        self.inbox = inbox
        self.busy_refused = False

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        if address.startswith("nobody@"):
            return "550 5.1.1 no such user"
        if address.startswith("busy@") and not self.busy_refused:
            self.busy_refused = True
            return "451 4.3.0 mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=default_policy)
        with self.inbox.cond:
            self.inbox.envelopes.append(envelope)
            self.inbox.messages.append(message)
            self.inbox.cond.notify_all()
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server() -> Iterator[SmtpInbox]:
    """aiosmtpd on 127.0.0.1 (plain SMTP, no STARTTLS offered)."""
    inbox = SmtpInbox("127.0.0.1", free_port())
    controller = Controller(_Handler(inbox), hostname=inbox.host, port=inbox.port)
    controller.start()
    yield inbox
    controller.stop()


@dataclass
class AlertmanagerServer:
    node: Alertmanager
    hook: Receiver

    @property
    def url(self) -> str:
        return self.node.url


def _am_config(hook_url: str) -> dict[str, Any]:
    return {
        "route": {"receiver": "hook", "group_by": ["alertname"], "group_wait": "100ms",
                  "group_interval": "1s", "repeat_interval": "1h"},
        "receivers": [{"name": "hook", "webhook_configs": [
            {"url": f"{hook_url}/am-webhook", "send_resolved": True}]}],
    }


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[AlertmanagerServer]:
    """Alertmanager 0.25 on a free port, forwarding its notifications to a receiver."""
    binary = alertmanager_binary()
    hook = Receiver("webhook").start()
    node = Alertmanager(binary, tmp_path / "am", _am_config(hook.url))
    try:
        yield AlertmanagerServer(node.start(), hook)
    finally:
        node.stop()
        hook.stop()


@dataclass
class TlsSmtp:
    inbox: SmtpInbox
    ca_file: Path


def _tls_server(tmp_path: Path, *, implicit: bool) -> Iterator[TlsSmtp]:
    cert, key = make_cert(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    inbox = SmtpInbox("127.0.0.1", free_port())
    if implicit:
        controller = Controller(_Handler(inbox), hostname=inbox.host, port=inbox.port,
                                ssl_context=context, auth_require_tls=False)
    else:
        controller = Controller(_Handler(inbox), hostname=inbox.host, port=inbox.port,
                                tls_context=context, require_starttls=True)
    controller.start()
    yield TlsSmtp(inbox, cert)
    controller.stop()


@pytest.fixture
def starttls_smtp_server(tmp_path: Path) -> Iterator[TlsSmtp]:
    """aiosmtpd requiring STARTTLS with a certificate for 127.0.0.1 from a private CA."""
    yield from _tls_server(tmp_path, implicit=False)


@pytest.fixture
def implicit_tls_smtp_server(tmp_path: Path) -> Iterator[TlsSmtp]:
    """aiosmtpd speaking TLS from the first byte (port-465 style)."""
    yield from _tls_server(tmp_path, implicit=True)
