"""The dispatcher with scripted notifiers and a virtual clock: order, retries, limits."""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest

from otel_botmon.alerting.model import (
    AlertEvent,
    AlertEventKind,
    AlertSeverity,
    NotificationChannel,
)
from otel_botmon.notify.base import DeliveryOutcome, DeliveryResult, Notifier
from otel_botmon.notify.config import NotificationConfig
from otel_botmon.notify.dispatcher import NotificationDispatcher
from otel_botmon.notify.message import Notification
from tests.integration.notify.receivers import wait_until_async
from tests.unit.notify.fakes import FakeClock, FakeNotifier, make_notification
from tests.unit.notify.test_notify_message import firing_alert

SLACK = NotificationChannel.SLACK
WEBHOOK = NotificationChannel.WEBHOOK


def config(**kwargs: object) -> NotificationConfig:
    base: dict[str, object] = {"console": False, "rate_limits": {}, "storm_threshold": 1000,
                               "group_wait": 0.0,
                               "retry_initial_delay": 1.0, "retry_max_delay": 60.0}
    base.update(kwargs)
    return NotificationConfig(**base)  # type: ignore[arg-type]


@asynccontextmanager
async def running(
    notifiers: list[Notifier], clock: FakeClock, *, attempts: list[tuple[str, str, str]] | None
    = None, **kwargs: object,
) -> AsyncIterator[NotificationDispatcher]:
    def record(alert_id: str, channel: NotificationChannel, result: DeliveryResult) -> None:
        if attempts is not None:
            attempts.append((alert_id, channel.value, result.outcome.value))

    dispatcher = NotificationDispatcher(
        config(**kwargs), notifiers=notifiers, clock=clock, rng=random.Random(7),
        on_attempt=record,
    )
    try:
        yield dispatcher
    finally:
        await dispatcher.stop()
        dispatcher.close()


async def test_enqueue_only_queues_and_workers_deliver_in_order(clock: FakeClock) -> None:
    slack = FakeNotifier(SLACK)
    async with running([slack], clock) as dispatcher:
        for i in range(5):
            assert dispatcher.enqueue(make_notification(i, channels=[SLACK])) == 1
        assert dispatcher.pending_count() == 5 and slack.sent == []
        await dispatcher.start()
        assert await dispatcher.drain(5)
    assert [n.alert_id for n in slack.sent] == [f"alert-{i}" for i in range(5)]


async def test_transient_failures_back_off_exponentially_with_jitter(clock: FakeClock) -> None:
    hook = FakeNotifier(WEBHOOK)
    hook.script = [DeliveryResult.retry("HTTP 502", 502)] * 3
    async with running([hook], clock) as dispatcher:
        dispatcher.enqueue(make_notification(channels=[WEBHOOK]))
        await dispatcher.start()
        assert await dispatcher.drain(5)
        records = dispatcher.attempts("alert-0")
    assert [r.outcome for r in records] == ["retry", "retry", "retry", "delivered"]
    gaps = [b.at - a.at for a, b in itertools.pairwise(records)]
    for gap, base in zip(gaps, (1.0, 2.0, 4.0), strict=False):
        assert base / 2 <= gap <= base


async def test_retry_after_is_honoured_exactly(clock: FakeClock) -> None:
    hook = FakeNotifier(WEBHOOK, clock=clock)
    hook.script = [DeliveryResult.retry("HTTP 429", 429, retry_after=7.0)]
    async with running([hook], clock) as dispatcher:
        dispatcher.enqueue(make_notification(channels=[WEBHOOK]))
        await dispatcher.start()
        assert await dispatcher.drain(5)
    assert hook.sent_at[1] - hook.sent_at[0] == pytest.approx(7.0)


async def test_a_retry_after_longer_than_a_day_waits_a_day_not_a_hot_loop(
    clock: FakeClock,
) -> None:
    # a custom notifier may pass on any Retry-After: past the longest wait the worker
    # keeps it would read as a damaged retry time (due at once) again and again
    from otel_botmon.notify.base import MAX_RETRY_AFTER_S

    hook = FakeNotifier(WEBHOOK, clock=clock)
    hook.script = [DeliveryResult.retry("quota", 429, retry_after=2 * 86_400.0)] * 3
    async with running([hook], clock, give_up_after=10 * 86_400.0) as dispatcher:
        dispatcher.enqueue(make_notification(channels=[WEBHOOK]))
        await dispatcher.start()
        assert await dispatcher.drain(5)
    assert len(hook.sent_at) == 4  # three answers to wait, then delivered
    gaps = [b - a for a, b in itertools.pairwise(hook.sent_at)]
    assert gaps == [pytest.approx(MAX_RETRY_AFTER_S)] * 3


async def test_a_retry_after_that_is_not_a_number_backs_off_as_usual(clock: FakeClock) -> None:
    hook = FakeNotifier(WEBHOOK, clock=clock)
    hook.script = [DeliveryResult.retry("odd", 503, retry_after=float("nan"))]
    async with running([hook], clock) as dispatcher:
        dispatcher.enqueue(make_notification(channels=[WEBHOOK]))
        await dispatcher.start()
        assert await dispatcher.drain(5)
    assert len(hook.sent_at) == 2
    assert 0.5 <= hook.sent_at[1] - hook.sent_at[0] <= 1.0  # the first backoff (1 s, jitter)


async def test_permanent_failure_is_recorded_and_the_queue_moves_on(clock: FakeClock) -> None:
    hook = FakeNotifier(WEBHOOK)
    hook.script = [DeliveryResult.failed("HTTP 404 Not Found: no_service", 404)]
    attempts: list[tuple[str, str, str]] = []
    async with running([hook], clock, attempts=attempts) as dispatcher:
        dispatcher.enqueue(make_notification(0, channels=[WEBHOOK]))
        dispatcher.enqueue(make_notification(1, channels=[WEBHOOK]))
        await dispatcher.start()
        assert await dispatcher.drain(5)
        failed = dispatcher.outbox.items("failed")
    assert len(hook.sent) == 2
    assert [(f.alert_id, f.last_detail) for f in failed] == [
        ("alert-0", "HTTP 404 Not Found: no_service")]
    assert attempts == [("alert-0", "webhook", "failed"), ("alert-1", "webhook", "delivered")]


async def test_rate_limit_spaces_sends(clock: FakeClock) -> None:
    slack = FakeNotifier(SLACK, clock=clock)
    async with running([slack], clock, rate_limits={"slack": 2.0}) as dispatcher:
        for i in range(6):
            dispatcher.enqueue(make_notification(i, channels=[SLACK]))
        await dispatcher.start()
        assert await dispatcher.drain(5)
    gaps = [b - a for a, b in zip(slack.sent_at, slack.sent_at[1:], strict=False)]
    assert len(gaps) == 5 and min(gaps) >= 0.5 - 1e-9


async def test_a_clock_stepped_back_holds_a_channel_one_interval_at_most(
    clock: FakeClock,
) -> None:
    slack = FakeNotifier(SLACK, clock=clock)
    async with running([slack], clock, rate_limits={"slack": 1.0}) as dispatcher:
        await dispatcher.start()
        dispatcher.enqueue(make_notification(0, channels=[SLACK]))
        assert await dispatcher.drain(5)
        clock.now -= 3600.0  # NTP steps a fast clock back an hour
        clock.sleeps.clear()
        dispatcher.enqueue(make_notification(1, channels=[SLACK]))
        assert await dispatcher.drain(5)
    assert len(slack.sent) == 2
    assert max(clock.sleeps, default=0.0) <= 1.0  # not an hour


async def test_storm_is_collapsed_into_one_summary_and_nothing_dropped(clock: FakeClock) -> None:
    slack = FakeNotifier(SLACK)
    pager = FakeNotifier(NotificationChannel.PAGERDUTY, collapsible=False)
    routes = [SLACK, NotificationChannel.PAGERDUTY]
    async with running([slack, pager], clock, storm_threshold=10) as dispatcher:
        for i in range(30):
            dispatcher.enqueue(make_notification(i, channels=routes))
        await dispatcher.start()
        assert await dispatcher.drain(5)
        delivered = dispatcher.outbox.items("delivered")
    assert len(slack.sent) == 1
    assert [m.alert_id for m in slack.sent[0].summary_of] == [f"alert-{i}" for i in range(30)]
    assert len(pager.sent) == 30
    assert len(delivered) == 60
    assert all("summary of 30" in d.last_detail for d in delivered if d.destination == "slack")


async def test_a_stuck_channel_never_delays_another(clock: FakeClock) -> None:
    stuck = FakeNotifier(WEBHOOK)
    stuck.block = asyncio.Event()  # never set: the receiver hangs
    slack = FakeNotifier(SLACK)
    async with running([stuck, slack], clock) as dispatcher:
        await dispatcher.start()
        for i in range(3):
            dispatcher.enqueue(make_notification(i, channels=[WEBHOOK, SLACK]))
        await wait_until_async(lambda: len(slack.sent) == 3, 10, what="slack deliveries")
        assert dispatcher.pending_count("webhook") == 3
        assert len(stuck.sent) == 0


async def test_routing_by_severity_and_unconfigured_channels_are_recorded(
    clock: FakeClock,
) -> None:
    slack, hook = FakeNotifier(SLACK), FakeNotifier(WEBHOOK)
    attempts: list[tuple[str, str, str]] = []
    routes = {"critical": ["slack"], "info": ["webhook"]}
    async with running([slack, hook], clock, attempts=attempts,
                       severity_channels=routes) as dispatcher:
        dispatcher.enqueue(make_notification(0, severity=AlertSeverity.CRITICAL))
        dispatcher.enqueue(make_notification(1, severity=AlertSeverity.INFO))
        dispatcher.enqueue(make_notification(2, severity=AlertSeverity.WARNING))  # to all
        assert dispatcher.enqueue(make_notification(
            3, channels=[NotificationChannel.TELEGRAM])) == 0
        await dispatcher.start()
        assert await dispatcher.drain(5)
        not_configured = dispatcher.attempts("alert-3")
    assert [n.alert_id for n in slack.sent] == ["alert-0", "alert-2"]
    assert [n.alert_id for n in hook.sent] == ["alert-1", "alert-2"]
    assert not_configured[0].outcome == "failed"
    assert "telegram is not configured" in not_configured[0].detail
    assert ("alert-3", "telegram", "failed") in attempts


async def test_gives_up_after_the_configured_age(clock: FakeClock) -> None:
    hook = FakeNotifier(WEBHOOK)
    hook.script = [DeliveryResult.retry("connection refused")] * 100
    async with running([hook], clock, give_up_after=10.0) as dispatcher:
        dispatcher.enqueue(make_notification(channels=[WEBHOOK]))
        await dispatcher.start()
        assert await dispatcher.drain(5)
        [item] = dispatcher.outbox.items("failed")
    assert item.last_detail.startswith("gave up after")


class BrokenNotifier(FakeNotifier):
    """A custom notifier with a bug: raises (or answers None) for ``alert-0``."""

    def __init__(self, answer: str) -> None:
        super().__init__(WEBHOOK)
        self.answer = answer

    async def send(self, notification: Notification) -> DeliveryResult:
        if notification.alert_id != "alert-0":
            return await super().send(notification)
        self.sent.append(notification)
        if self.answer == "raise":
            raise RuntimeError("custom notifier bug, api_key=sk_live_0123456789abcdef")
        return None  # type: ignore[return-value]


class BrokenSyncNotifier(BrokenNotifier):
    """The same bug in a ``send`` that is a plain function, not a coroutine."""

    def send(self, notification: Notification) -> DeliveryResult:  # type: ignore[override]
        if notification.alert_id != "alert-0":
            return DeliveryResult.delivered("ok")  # not awaitable either: a retry
        self.sent.append(notification)
        raise RuntimeError("custom notifier bug, api_key=sk_live_0123456789abcdef")


async def test_a_plain_function_send_that_raises_is_retried_then_given_up(
    clock: FakeClock,
) -> None:
    hook = BrokenSyncNotifier("raise")
    async with running([hook], clock, give_up_after=10.0) as dispatcher:
        dispatcher.enqueue(make_notification(0, channels=[WEBHOOK]))
        await dispatcher.start()
        assert await dispatcher.drain(5)
        [failed] = dispatcher.outbox.items("failed")
    assert failed.alert_id == "alert-0" and "RuntimeError" in failed.last_detail
    assert "sk_live_0123456789abcdef" not in failed.last_detail


@pytest.mark.parametrize("answer", ["raise", "none"])
async def test_a_notifier_that_raises_is_retried_then_given_up_and_its_queue_moves_on(
    clock: FakeClock, answer: str,
) -> None:
    hook = BrokenNotifier(answer)
    async with running([hook], clock, give_up_after=10.0) as dispatcher:
        dispatcher.enqueue(make_notification(0, channels=[WEBHOOK]))
        dispatcher.enqueue(make_notification(1, channels=[WEBHOOK]))
        await dispatcher.start()
        assert await dispatcher.drain(5)
        [failed] = dispatcher.outbox.items("failed")
        tries = dispatcher.attempts("alert-0")
    assert failed.alert_id == "alert-0"
    assert failed.last_detail.startswith("gave up after")
    assert "RuntimeError" in failed.last_detail if answer == "raise" \
        else "not a DeliveryResult" in failed.last_detail
    assert "sk_live_0123456789abcdef" not in failed.last_detail
    assert len(tries) > 1 and all(t.outcome != "delivered" for t in tries)  # retried
    assert [n.alert_id for n in hook.sent].count("alert-1") == 1  # the queue moved on


async def test_batching_destination_gets_one_request(clock: FakeClock) -> None:
    am = FakeNotifier(NotificationChannel.ALERTMANAGER, collapsible=False, batches=True)
    async with running([am], clock) as dispatcher:
        for i in range(25):
            dispatcher.enqueue(make_notification(i, channels=[NotificationChannel.ALERTMANAGER]))
        await dispatcher.start()
        assert await dispatcher.drain(5)
    assert [len(b) for b in am.batches_sent] == [25]


@pytest.mark.parametrize(
    ("make_event", "queued"),
    [
        (lambda a: AlertEvent(a.id, AlertEventKind.FIRED, at=1.0), 1),
        (lambda a: AlertEventKind.RESOLVED, 1),
        (lambda a: AlertEvent(a.id, AlertEventKind.PENDING, at=1.0), 0),
        (lambda a: AlertEvent(a.id, AlertEventKind.NOTIFIED, at=1.0), 0),
        (lambda a: AlertEvent(a.id, AlertEventKind.FIRED, at=1.0, notify=False), 0),
        (lambda a: "not-an-event", 0),
    ],
)
async def test_alert_listener_queues_only_notifiable_events(
    clock: FakeClock, make_event: Callable[[object], object], queued: int,
) -> None:
    slack = FakeNotifier(SLACK)
    async with running([slack], clock) as dispatcher:
        alert = firing_alert()
        dispatcher.on_alert_event(alert, make_event(alert))  # never raises
        assert dispatcher.pending_count() == queued


async def test_same_notification_is_queued_once(clock: FakeClock) -> None:
    async with running([FakeNotifier(SLACK)], clock) as dispatcher:
        n = make_notification(channels=[SLACK])
        assert dispatcher.enqueue(n) == 1
        assert dispatcher.enqueue(n) == 0
        assert dispatcher.pending_count() == 1


def test_delivery_result_as_event_detail() -> None:
    detail = DeliveryResult.retry("HTTP 429", 429, 3.0).as_event_detail(SLACK)
    assert detail == {"channel": "slack", "ok": False, "outcome": "retry",
                      "detail": "HTTP 429", "status_code": 429, "retry_after": 3.0}
    assert DeliveryOutcome("delivered") is DeliveryOutcome.DELIVERED


async def test_settled_rows_are_pruned_after_the_retention(clock: FakeClock) -> None:
    hook = FakeNotifier(WEBHOOK)
    hook.script = [DeliveryResult.failed("HTTP 410 Gone", 410)]
    async with running([hook], clock, outbox_retention=60.0) as dispatcher:
        for i in range(3):
            dispatcher.enqueue(make_notification(i, channels=[WEBHOOK]))
        await dispatcher.start()
        assert await dispatcher.drain(5)
        hook.block = asyncio.Event()  # the next one stays pending
        dispatcher.enqueue(make_notification(9, channels=[WEBHOOK]))
        assert await asyncio.to_thread(dispatcher.wait_committed, 5)  # committed behind
        clock.now += 61
        assert dispatcher.outbox.prune(clock.time() - 60.0) == 3
        assert [i.alert_id for i in dispatcher.outbox.items()] == ["alert-9"]
        assert dispatcher.attempts() == []


async def test_alert_events_of_one_loop_step_are_committed_together_after_it(
    clock: FakeClock,
) -> None:
    slack = FakeNotifier(SLACK)
    async with running([slack], clock) as dispatcher:
        await dispatcher.start()
        alerts = [firing_alert() for _ in range(3)]
        for alert in alerts:  # an evaluation cycle: synchronous, on the loop
            dispatcher.on_alert_event(alert, AlertEvent(alert.id, AlertEventKind.FIRED, at=1.0))
        alerts[0].title = "changed after the event"
        assert dispatcher.outbox.pending_count() == 0  # nothing written inside the cycle
        await asyncio.sleep(0)  # the cycle returns to the loop: one commit for all three
        async with asyncio.timeout(5):  # ... which runs on the committer thread
            # rows in any state: a row may already be delivered (or on its way)
            while (seen := len(dispatcher.outbox.items())) == 0:
                await asyncio.sleep(0.001)
        assert seen == 3  # all three in one transaction: never one or two of them
        assert await dispatcher.drain(5)
    assert sorted(n.alert_id for n in slack.sent) == sorted(a.id for a in alerts)
    assert {n.title for n in slack.sent} == {"High CPU"}  # the snapshot, not the live alert


def _outage(i: int, exchange: str, **overrides: object) -> Notification:
    """The exchange_down alert of bot ``i`` on ``exchange``."""
    fields: dict[str, object] = {
        "rule_name": "exchange_down", "severity": AlertSeverity.CRITICAL,
        "labels": {"alertname": "exchange_down", "exchange.name": exchange,
                   "bot_name": f"bot-{i:03d}", "severity": "critical"},
        "channels": [SLACK, NotificationChannel.PAGERDUTY],
    }
    fields.update(overrides)
    return make_notification(i, **fields)


async def test_one_exchange_outage_across_bots_is_one_message_per_exchange(
    clock: FakeClock,
) -> None:
    slack = FakeNotifier(SLACK, clock=clock)
    pager = FakeNotifier(NotificationChannel.PAGERDUTY, collapsible=False, clock=clock)
    async with running([slack, pager], clock, group_wait=5.0) as dispatcher:
        start = clock.now
        for i in range(40):
            dispatcher.enqueue(_outage(i, "binance"))
        for i in range(3):
            dispatcher.enqueue(_outage(i, "kraken"))
        dispatcher.enqueue(make_notification(99, channels=[SLACK]))  # no rule: alone
        await dispatcher.start()
        assert await dispatcher.drain(5)
        delivered = dispatcher.outbox.items("delivered")
    by_title = {m.title: m for m in slack.sent}
    assert set(by_title) == {"exchange_down on binance: 40 alerts",
                             "exchange_down on kraken: 3 alerts", "CPU high 99"}
    binance = by_title["exchange_down on binance: 40 alerts"]
    assert [m.alert_id for m in binance.summary_of] == [f"alert-{i}" for i in range(40)]
    assert binance.message.splitlines()[0] == (
        "Labels: exchange.name=binance, severity=critical")
    assert [line.split(" ")[1] for line in binance.message.splitlines()[1:]] == [
        f"bot_name=bot-{i:03d}" for i in range(40)]
    assert binance.event is AlertEventKind.FIRED and binance.severity is AlertSeverity.CRITICAL
    # the groups waited group_wait from their first alert; the lone one did not wait
    sent_at = dict(zip((m.title for m in slack.sent), slack.sent_at, strict=True))
    assert sent_at["CPU high 99"] < start + 5.0
    assert sent_at["exchange_down on binance: 40 alerts"] >= start + 5.0
    assert len(pager.sent) == 43  # a paging channel keeps one event per alert
    assert len(delivered) == 87  # nothing dropped: every row settled as delivered
    assert sum("group of 40" in d.last_detail for d in delivered) == 40


async def test_resolved_and_fired_are_grouped_apart_and_late_ones_go_later(
    clock: FakeClock,
) -> None:
    slack = FakeNotifier(SLACK, clock=clock)
    async with running([slack], clock, group_wait=5.0) as dispatcher:
        await dispatcher.start()
        # one commit: enqueued one by one, the worker could see alert-0 before alert-2
        # was written, and the fake clock's sleep closes the window at once
        dispatcher.enqueue_many([
            _outage(0, "binance", channels=[SLACK]),
            _outage(1, "binance", channels=[SLACK], event=AlertEventKind.RESOLVED),
            _outage(2, "binance", channels=[SLACK]),
        ])
        assert await dispatcher.drain(5)
        clock.now += 60.0  # the group has been sent: a later alert starts a new one
        dispatcher.enqueue(_outage(3, "binance", channels=[SLACK]))
        assert await dispatcher.drain(5)
    assert [(m.event, [n.alert_id for n in m.summary_of] or [m.alert_id])
            for m in slack.sent] == [
        (AlertEventKind.FIRED, ["alert-0", "alert-2"]),
        (AlertEventKind.RESOLVED, ["alert-1"]),
        (AlertEventKind.FIRED, ["alert-3"]),
    ]


def test_group_wait_is_validated() -> None:
    with pytest.raises(ValueError, match="group_wait"):
        config(group_wait=-1)


async def test_a_storm_of_one_outage_is_still_the_outage_message_listing_the_bots(
    clock: FakeClock,
) -> None:
    slack = FakeNotifier(SLACK, clock=clock)
    async with running([slack], clock, group_wait=5.0, storm_threshold=10) as dispatcher:
        for i in range(200):
            dispatcher.enqueue(_outage(i, "binance", channels=[SLACK]))
        await dispatcher.start()
        assert await dispatcher.drain(5)
    [message] = slack.sent
    assert message.title == "exchange_down on binance: 200 alerts"
    assert all(f"bot_name=bot-{i:03d}" in message.message for i in range(200))
