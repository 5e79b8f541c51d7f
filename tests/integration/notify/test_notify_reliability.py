"""Crash, outage and storm: nothing queued is lost, order holds, rate limits hold."""

from __future__ import annotations

import bisect
import itertools
import random
import signal
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from otel_botmon.alerting.model import AlertSeverity
from otel_botmon.notify import NotificationConfig, NotificationDispatcher
from otel_botmon.notify.message import Notification
from tests.integration.notify.conftest import SmtpInbox
from tests.integration.notify.receivers import Receiver, Reply, wait_until_async
from tests.services import ManagedProcess, free_port

CHILD = Path(__file__).with_name("outbox_child.py")
FAST: dict[str, Any] = {"console": False, "retry_initial_delay": 0.05, "retry_max_delay": 0.3,
                        "webhook_timeout": 2.0}


async def test_sigkill_with_queued_notifications_loses_none(
    tmp_path: Path, webhook_receiver: Receiver,
) -> None:
    outbox = tmp_path / "alerts.db"
    count = 20
    webhook_receiver.delay = 0.2  # slow receiver: the kill lands mid-delivery
    child = ManagedProcess(
        [sys.executable, str(CHILD), str(outbox), f"{webhook_receiver.url}/hook", str(count)],
        tmp_path / "child.log",
    ).start()
    try:
        await wait_until_async(lambda: "QUEUED" in child.log() or not child.running(), 60,
                               what="child to queue")
        assert "QUEUED" in child.log(), child.log()
        try:
            await webhook_receiver.until(2, 10)
        except AssertionError:
            raise AssertionError(child.log()) from None
        assert child.process is not None
        child.process.send_signal(signal.SIGKILL)
        child.process.wait(10)
    finally:
        child.stop()
    before = len(webhook_receiver.requests)
    assert before < count, "the child delivered everything before the kill; nothing tested"

    webhook_receiver.delay = 0.0
    restarted = NotificationDispatcher(NotificationConfig(
        **FAST, webhook_urls=[f"{webhook_receiver.url}/hook"], outbox_path=str(outbox),
        storm_threshold=1000))
    await restarted.start()
    try:
        assert await restarted.drain(20)
    finally:
        await restarted.stop()
        restarted.close()
    keys = Counter(r.headers["idempotency-key"] for r in webhook_receiver.requests)
    assert len(keys) == count
    # at-least-once: only a delivery cut short by the kill may arrive twice, and with
    # the same idempotency key, so the receiver can drop the duplicate
    assert sum(keys.values()) - count <= 1
    firsts = list(dict.fromkeys(r.json()["alert_id"] for r in webhook_receiver.requests))
    assert firsts == [f"a{i:03d}" for i in range(count)]


async def test_receivers_down_then_back_get_everything_in_order() -> None:
    hook = Receiver("webhook", port=free_port())
    telegram = Receiver("telegram", port=free_port())
    config = NotificationConfig(
        **FAST, webhook_urls=[f"{hook.url}/hook"], telegram_bot_token="42:tok-down-up",
        telegram_chat_id="7", telegram_api_url=telegram.url, rate_limits={},
        storm_threshold=1000)
    dispatcher = NotificationDispatcher(config, rng=random.Random(5))
    await dispatcher.start()
    try:
        for i in range(15):
            dispatcher.enqueue(Notification(alert_id=f"a{i:02d}", title=f"alert {i}"))
        # both receivers are down: connection refused, retried with backoff
        await wait_until_async(lambda: sum(
            r.outcome == "retry" for r in dispatcher.attempts("a00")) >= 4, 10)
        assert dispatcher.pending_count() == 30
        hook.start()
        telegram.start()
        assert await dispatcher.drain(20)
    finally:
        await dispatcher.stop()
        dispatcher.close()
        hook.stop()
        telegram.stop()
    expected = [f"a{i:02d}" for i in range(15)]
    assert [r.json()["alert_id"] for r in hook.requests] == expected
    texts = [r.json()["text"] for r in telegram.requests]
    assert [t.split("Alert: ")[1].split("\n")[0] for t in texts] == expected


def _gaps(receiver: Receiver) -> list[float]:
    times = sorted(r.at for r in receiver.requests)
    return [b - a for a, b in itertools.pairwise(times)]


def _busiest_second(receiver: Receiver) -> int:
    """The most requests that arrived within any one-second window."""
    times = sorted(r.at for r in receiver.requests)
    return max(bisect.bisect_left(times, t + 1.0) - i for i, t in enumerate(times))


async def test_a_thousand_alerts_respect_rate_limits_and_none_is_dropped(
    tmp_path: Path, smtp_server: SmtpInbox, slack_receiver: Receiver,
    telegram_receiver: Receiver, pagerduty_receiver: Receiver, webhook_receiver: Receiver,
) -> None:
    am = Receiver("webhook").start()
    rates = {"slack": 10.0, "telegram": 10.0, "pagerduty": 250.0, "webhook": 10.0}
    config = NotificationConfig(
        **FAST, slack_webhook_url=f"{slack_receiver.url}/s", telegram_bot_token="1:storm-tok",
        telegram_chat_id="9", telegram_api_url=telegram_receiver.url,
        pagerduty_routing_key="stormroutingkey", pagerduty_url=f"{pagerduty_receiver.url}/v2",
        webhook_urls=[f"{webhook_receiver.url}/w"], alertmanager_url=am.url,
        log_file=str(tmp_path / "alerts.jsonl"), email_from="bot@example.com",
        email_to=["ops@example.com"], smtp_server=smtp_server.host, smtp_port=smtp_server.port,
        smtp_use_tls=False, rate_limits=rates, storm_threshold=10,
        outbox_path=str(tmp_path / "outbox.db"))
    slack_receiver.respond(Reply(429, {"Retry-After": "0.3"}, b"rate_limited"))
    dispatcher = NotificationDispatcher(config, rng=random.Random(9))
    await dispatcher.start()
    try:
        for i in range(1000):  # one evaluation cycle: no awaits in between
            dispatcher.enqueue(Notification(alert_id=f"a{i:04d}", title=f"storm {i}",
                                            severity=AlertSeverity.CRITICAL, value=float(i)))
        drained = await dispatcher.drain(45)
        assert drained, Counter(i.destination for i in dispatcher.outbox.items("pending"))
        items = dispatcher.outbox.items()
    finally:
        await dispatcher.stop()
        dispatcher.close()
        am.stop()
    destinations = Counter(i.destination for i in items if i.state == "delivered")
    assert set(destinations.values()) == {1000} and len(destinations) == 7
    assert not [i for i in items if i.state != "delivered"]
    # rate limits, measured at the receivers (the limiter counts from the previous
    # request's completion, so arrivals are at least 1/rate apart; 1 ms for rounding)
    for receiver, channel in ((slack_receiver, "slack"), (telegram_receiver, "telegram"),
                              (webhook_receiver, "webhook")):
        gaps = _gaps(receiver)
        assert len(gaps) >= 1 and min(gaps) >= 1 / rates[channel] - 0.001, (channel, gaps)
    assert min(_gaps(pagerduty_receiver)) >= 1 / rates["pagerduty"] - 0.001
    busiest = _busiest_second(pagerduty_receiver)
    assert busiest <= rates["pagerduty"] + 1, busiest
    # collapsed, not dropped: the summaries account for every alert
    # (rows the worker saw before the storm built up may go out one by one: a summary
    # has an ``alerts`` list, a single notification is the alert itself)
    webhook_ids = [a["alert_id"] for r in webhook_receiver.requests
                   for a in r.json().get("alerts", [r.json()])]
    assert sorted(webhook_ids) == [f"a{i:04d}" for i in range(1000)]
    assert len(webhook_receiver.requests) < 100  # collapsed: far fewer requests than alerts
    slack_texts = [r.json()["text"] for r in slack_receiver.delivered()]
    slack_total = sum(int(t.split("] FIRING: ")[1].split(" ")[0])
                      if "alert storm summary" in t else 1 for t in slack_texts)
    assert slack_total == 1000 and len(slack_texts) < 100
    assert len(pagerduty_receiver.requests) == 1000
    am_ids = [a["labels"]["alertname"] for r in am.requests for a in r.json()]
    assert len(set(am_ids)) == 1000
    lines = (tmp_path / "alerts.jsonl").read_text().splitlines()
    assert len(lines) == 1000
    assert len(smtp_server.messages) >= 1
