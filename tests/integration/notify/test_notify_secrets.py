"""No configured secret appears in any log line, message, stored detail or repr."""

from __future__ import annotations

import io
import logging
import random
from pathlib import Path

import pytest

from otel_botmon.alerting.model import AlertEventKind, AlertSeverity
from otel_botmon.notify import NotificationConfig, NotificationDispatcher
from otel_botmon.notify.message import Notification
from tests.integration.notify.conftest import SmtpInbox
from tests.integration.notify.receivers import Receiver, Reply

SMTP_PASSWORD = "smtp-pass-Zq81"
SLACK_SECRET = "slackSECRETpath77"
TELEGRAM_TOKEN = "555:telegramSECRETtoken"
PD_KEY = "pdSECRETroutingkey9"
HMAC_SECRET = "hmacSECRETshared"
HOOK_SECRET = "hookSECRETpath31"
SECRETS = [SMTP_PASSWORD, SLACK_SECRET, TELEGRAM_TOKEN, PD_KEY, HMAC_SECRET, HOOK_SECRET]


async def test_no_secret_in_logs_messages_or_records(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, smtp_server: SmtpInbox,
    slack_receiver: Receiver, telegram_receiver: Receiver, pagerduty_receiver: Receiver,
    webhook_receiver: Receiver,
) -> None:
    caplog.set_level(logging.DEBUG)
    failing = Receiver("webhook").start()
    failing_url = f"{failing.url}/hooks/{HOOK_SECRET}/b"
    # a receiver that echoes our URL (and so the secret in it) back in its error, whole,
    # as the path alone (an Apache-style "requested URL"), and as the token alone
    failing.respond(Reply(400, {}, (
        f"bad request to {failing_url}; The requested URL /hooks/{HOOK_SECRET}/b was not "
        f"found; unknown hook id {HOOK_SECRET}").encode()))
    console = io.StringIO()
    config = NotificationConfig(
        smtp_server=smtp_server.host, smtp_port=smtp_server.port, smtp_use_tls=False,
        smtp_password=SMTP_PASSWORD, email_from="bot@example.com", email_to=["a@example.com"],
        webhook_urls=[f"{webhook_receiver.url}/hooks/{HOOK_SECRET}/a", failing_url],
        webhook_hmac_secret=HMAC_SECRET, log_file=str(tmp_path / "alerts.jsonl"),
        slack_webhook_url=f"{slack_receiver.url}/services/T/B/{SLACK_SECRET}",
        telegram_bot_token=TELEGRAM_TOKEN, telegram_chat_id="1",
        telegram_api_url=telegram_receiver.url, pagerduty_routing_key=PD_KEY,
        pagerduty_url=f"{pagerduty_receiver.url}/v2/enqueue", rate_limits={},
        retry_initial_delay=0.05, outbox_path=str(tmp_path / "outbox.db"))
    logging.getLogger("app").info("starting with %r", config)
    dispatcher = NotificationDispatcher(config, console_stream=console, rng=random.Random(4))
    await dispatcher.start()
    try:
        for event in (AlertEventKind.FIRED, AlertEventKind.RESOLVED):
            dispatcher.enqueue(Notification(
                alert_id="a1", title="API errors", severity=AlertSeverity.CRITICAL,
                event=event, message=f"POST failed: token={TELEGRAM_TOKEN} key {PD_KEY}"))
        assert await dispatcher.drain(15)
        records = dispatcher.attempts()
        items = dispatcher.outbox.items()
    finally:
        await dispatcher.stop()
        dispatcher.close()
        failing.stop()

    assert any(r.outcome == "failed" and r.status_code == 400 for r in records)
    receivers = (slack_receiver, telegram_receiver, webhook_receiver, failing)
    seen = [caplog.text, console.getvalue(), repr(config), str(config),
            (tmp_path / "alerts.jsonl").read_text()]
    seen += [r.getMessage() for r in caplog.records]
    seen += [m.as_string() for m in smtp_server.messages]
    seen += [f"{r.detail} {r.destination}" for r in records]
    seen += [f"{i.payload} {i.last_detail} {i.destination}" for i in items]
    for receiver in receivers:
        seen += [f"{r.text} {sorted(r.headers.items())}" for r in receiver.requests]
    # PagerDuty must get its own routing key (that is the protocol), and nothing else secret
    for request in pagerduty_receiver.requests:
        event = request.json()
        assert event.pop("routing_key") == PD_KEY
        seen.append(f"{event} {sorted(request.headers.items())}")
    assert len(webhook_receiver.requests) == 2 and len(smtp_server.messages) == 2
    for text in seen:
        for secret in SECRETS:
            assert secret not in text
