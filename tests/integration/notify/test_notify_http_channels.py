"""Slack, Telegram, PagerDuty and webhooks against local servers speaking their wire format."""

from __future__ import annotations

import hashlib
import hmac
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from otel_botmon.alerting.model import AlertEventKind, AlertSeverity, NotificationChannel
from otel_botmon.notify import NotificationConfig, NotificationDispatcher
from otel_botmon.notify.message import Notification
from tests.integration.notify.receivers import TELEGRAM_LIMIT, Receiver, Reply

FAST = {"console": False, "retry_initial_delay": 0.05, "retry_max_delay": 0.2,
        "webhook_timeout": 1.0, "rate_limits": {}}


@asynccontextmanager
async def dispatching(**kwargs: Any) -> AsyncIterator[NotificationDispatcher]:
    dispatcher = NotificationDispatcher(NotificationConfig(**{**FAST, **kwargs}),
                                        rng=random.Random(1))
    await dispatcher.start()
    try:
        yield dispatcher
    finally:
        await dispatcher.stop()
        dispatcher.close()


def alert(i: int = 0, **kwargs: Any) -> Notification:
    fields: dict[str, Any] = {"alert_id": f"a{i}", "title": f"Exchange errors {i}",
                              "message": "5 errors in 1 minute", "value": 5.0,
                              "severity": AlertSeverity.CRITICAL, "fingerprint": f"fp{i}"}
    fields.update(kwargs)
    return Notification(**fields)


async def test_slack_gets_blocks_and_429_retry_after_is_honoured(
    slack_receiver: Receiver,
) -> None:
    slack_receiver.respond(Reply(429, {"Retry-After": "1"}, b"rate_limited"))
    async with dispatching(slack_webhook_url=f"{slack_receiver.url}/services/T/B/xyz",
                           slack_channel="#alerts") as dispatcher:
        dispatcher.enqueue(alert(channels=[NotificationChannel.SLACK]))
        assert await dispatcher.drain(10)
        records = dispatcher.attempts("a0")
    first, second = slack_receiver.requests
    assert second.at - first.at >= 0.95  # waited for Retry-After, not the 0.05 s backoff
    body = second.json()
    assert body["channel"] == "#alerts" and body["blocks"][0]["type"] == "header"
    assert body["attachments"][0]["color"] == "#E01E5A"
    assert [(r.outcome, r.status_code) for r in records] == [("retry", 429),
                                                             ("delivered", 200)]


async def test_slack_404_fails_permanently_with_the_reason(slack_receiver: Receiver) -> None:
    slack_receiver.respond(Reply(404, {}, b"no_service"))
    async with dispatching(slack_webhook_url=f"{slack_receiver.url}/services/x") as dispatcher:
        dispatcher.enqueue(alert(channels=[NotificationChannel.SLACK]))
        assert await dispatcher.drain(10)
        [record] = dispatcher.attempts("a0")
    assert len(slack_receiver.requests) == 1
    assert record.outcome == "failed" and record.status_code == 404
    assert "no_service" in record.detail


async def test_telegram_send_message_and_json_retry_after(telegram_receiver: Receiver) -> None:
    telegram_receiver.respond(Reply.json(429, {
        "ok": False, "error_code": 429, "description": "Too Many Requests: retry after 1",
        "parameters": {"retry_after": 1}}))
    async with dispatching(telegram_bot_token="123:tg-token-abc", telegram_chat_id="-100",
                           telegram_api_url=telegram_receiver.url) as dispatcher:
        dispatcher.enqueue(alert(title="<b>x</b> & y", channels=[NotificationChannel.TELEGRAM]))
        assert await dispatcher.drain(10)
    first, second = telegram_receiver.requests
    assert second.at - first.at >= 0.95
    assert second.path == "/bot123:tg-token-abc/sendMessage"
    body = second.json()
    assert body["chat_id"] == "-100" and body["parse_mode"] == "HTML"
    assert "&lt;b&gt;x&lt;/b&gt; &amp; y" in body["text"]


async def test_telegram_storm_summary_of_emoji_alerts_is_accepted(
    telegram_receiver: Receiver,
) -> None:
    """Telegram counts UTF-16 code units: a summary cut to 4096 code points is refused
    ("message is too long") when its alerts carry emoji; the one sent is accepted."""
    async with dispatching(telegram_bot_token="123:tg-emoji", telegram_chat_id="-100",
                           telegram_api_url=telegram_receiver.url,
                           storm_threshold=2) as dispatcher:
        dispatcher.enqueue_many([
            alert(i, title=f"\U0001F6A8 Exchange errors \U0001F4C9 {i}",
                  channels=[NotificationChannel.TELEGRAM])  # a summary lists the titles
            for i in range(120)])
        assert await dispatcher.drain(10)
        records = dispatcher.attempts()
    [request] = telegram_receiver.requests
    assert request.status == 200, request.text
    text = request.json()["text"]
    assert len(text) < len(text.encode("utf-16-le")) // 2 <= TELEGRAM_LIMIT
    assert "more alert" in text  # the list was cut, so the budget was in play
    assert {r.outcome for r in records} == {"delivered"} and len(records) == 120


async def test_the_telegram_stand_in_refuses_what_telegram_refuses(
    telegram_receiver: Receiver,
) -> None:
    import httpx

    url = f"{telegram_receiver.url}/bot1:x/sendMessage"
    html_mode = {"chat_id": 1, "parse_mode": "HTML"}
    async with httpx.AsyncClient() as client:
        async def answer(**body: object) -> tuple[int, str]:
            response = await client.post(url, json={"chat_id": 1, **body})
            return response.status_code, response.json().get("description", "")

        assert await answer(text="\U0001F6A8" * 2048) == (200, "")  # 4096 UTF-16 units
        assert await answer(text="\U0001F6A8" * 2049) == (
            400, "Bad Request: message is too long")
        # markup and entities do not count: 4096 characters shown
        assert (await answer(**html_mode, text="<b>x</b>" + "&amp;" * 4095))[0] == 200
        assert (await answer(**html_mode, text="<b>x</b>" + "&amp;" * 4096))[0] == 400
        # without parse_mode the text is shown as it is: "&amp;" is five characters
        assert (await answer(text="&amp;" * 820))[0] == 400
        for blank in ("<b></b>", "<b> </b>\n", "   "):
            assert await answer(**html_mode, text=blank) == (
                400, "Bad Request: message text is empty"), blank
        for broken in ("<b>x", "x</b>", "a<foo>b</foo>", "&am x", "a & b"):
            status, description = await answer(**html_mode, text=broken)
            assert status == 400, broken
            assert description.startswith("Bad Request: can't parse entities: "), broken


async def test_pagerduty_5xx_then_success_and_one_dedup_key(
    pagerduty_receiver: Receiver,
) -> None:
    pagerduty_receiver.respond(Reply(500, {}, b"oops"), Reply(502, {}, b"bad gateway"))
    async with dispatching(pagerduty_routing_key="R0UTINGKEY0123",
                           pagerduty_url=f"{pagerduty_receiver.url}/v2/enqueue") as dispatcher:
        for event in (AlertEventKind.FIRED, AlertEventKind.ACKNOWLEDGED, AlertEventKind.RESOLVED):
            dispatcher.enqueue(alert(event=event, channels=[NotificationChannel.PAGERDUTY]))
        assert await dispatcher.drain(10)
    accepted = [r.json() for r in pagerduty_receiver.delivered()]
    assert [e["event_action"] for e in accepted] == ["trigger", "acknowledge", "resolve"]
    assert {e["dedup_key"] for e in accepted} == {"fp0"}
    assert accepted[0]["payload"]["severity"] == "critical"
    assert [r.status for r in pagerduty_receiver.requests][:3] == [500, 502, 202]


async def test_webhook_timeout_then_success_with_hmac_signature(
    webhook_receiver: Receiver,
) -> None:
    webhook_receiver.respond(Reply(200, {}, b"late", delay=1.5))  # longer than the 1 s timeout
    async with dispatching(webhook_urls=[f"{webhook_receiver.url}/hook"],
                           webhook_hmac_secret="shared-hmac-key") as dispatcher:
        dispatcher.enqueue(alert(channels=[NotificationChannel.WEBHOOK]))
        assert await dispatcher.drain(10)
        records = dispatcher.attempts("a0")
    assert records[0].outcome == "retry" and "Timeout" in records[0].detail
    assert records[-1].outcome == "delivered"
    last = webhook_receiver.requests[-1]
    expected = hmac.new(b"shared-hmac-key", last.body, hashlib.sha256).hexdigest()
    assert last.headers["x-botmon-signature"] == f"sha256={expected}"
    body = last.json()
    assert (body["alert_id"], body["event"], body["severity"]) == ("a0", "fired", "critical")
    assert last.headers["idempotency-key"] == body["id"]


async def test_each_webhook_url_is_its_own_destination(webhook_receiver: Receiver) -> None:
    down = Receiver("webhook").start()
    down.stop()  # nobody listens there: connection refused, retried forever
    async with dispatching(webhook_urls=[f"{down.url}/x", f"{webhook_receiver.url}/y"]
                           ) as dispatcher:
        for i in range(3):
            dispatcher.enqueue(alert(i, channels=[NotificationChannel.WEBHOOK]))
        await webhook_receiver.until(3)
        assert dispatcher.pending_count("webhook#0") == 3
    assert [r.json()["alert_id"] for r in webhook_receiver.requests] == ["a0", "a1", "a2"]
