"""What a delivery costs: work shared by destinations is done once, settles are grouped,
the file channel writes a batch in one go, email builds its TLS context once."""

from __future__ import annotations

import asyncio
import io
import json
import random
import threading
from pathlib import Path
from typing import Any

import pytest

from otel_botmon.alerting.model import NotificationChannel
from otel_botmon.notify.committer import GroupCaller
from otel_botmon.notify.config import NotificationConfig
from otel_botmon.notify.dispatcher import NotificationDispatcher
from otel_botmon.notify.email import EmailNotifier
from otel_botmon.notify.file import FileNotifier
from otel_botmon.notify.message import Notification
from tests.unit.notify.fakes import FakeClock, FakeNotifier, make_notification


async def test_a_stored_notification_is_decoded_once_for_every_destination(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch,
) -> None:
    decoded: list[str] = []
    original = Notification.from_dict.__func__  # type: ignore[attr-defined]

    def counting(cls: type[Notification], data: dict[str, Any]) -> Notification:
        decoded.append(str(data["id"]))
        return original(cls, data)  # type: ignore[no-any-return]

    monkeypatch.setattr(Notification, "from_dict", classmethod(counting))
    notifiers = [FakeNotifier(NotificationChannel.SLACK),
                 FakeNotifier(NotificationChannel.WEBHOOK),
                 FakeNotifier(NotificationChannel.TELEGRAM)]
    dispatcher = NotificationDispatcher(
        NotificationConfig(console=False, rate_limits={}), notifiers=notifiers, clock=clock,
        rng=random.Random(1))
    try:
        sent = [make_notification(i) for i in range(4)]
        dispatcher.enqueue_many(sent)
        await dispatcher.start()
        assert await dispatcher.drain(5)
        for notifier in notifiers:
            assert [n.id for n in notifier.sent] == [n.id for n in sent]
        assert sorted(decoded) == sorted(n.id for n in sent)  # 4 decodes, not 12
    finally:
        await dispatcher.stop()
        dispatcher.close()


async def test_group_caller_batches_calls_that_wait_together_and_answers_each() -> None:
    gate = threading.Event()
    batches: list[list[int]] = []

    def run(requests: list[Any]) -> list[Any]:
        gate.wait(5)
        batches.append(list(requests))
        return [ValueError(r) if r < 0 else r * 10 for r in requests]

    caller = GroupCaller(run, name="test-group")
    try:
        first = asyncio.ensure_future(caller.call(1))
        await asyncio.sleep(0.05)  # the first batch is running (held by the gate)
        rest = [asyncio.ensure_future(caller.call(r)) for r in (2, -3, 4)]
        gate.set()
        assert await first == 10
        outcomes = await asyncio.gather(*rest, return_exceptions=True)
        assert outcomes[0] == 20 and outcomes[2] == 40
        assert isinstance(outcomes[1], ValueError)
        assert batches == [[1], [2, -3, 4]]
    finally:
        caller.close()


async def test_group_caller_raises_a_failed_batch_in_each_caller() -> None:
    def run(requests: list[Any]) -> list[Any]:
        raise OSError("disk gone")

    caller = GroupCaller(run, name="test-group")
    try:
        results = await asyncio.gather(caller.call(1), caller.call(2), return_exceptions=True)
        assert all(isinstance(r, OSError) for r in results)
    finally:
        caller.close()


async def test_file_writes_a_batch_in_order_and_still_rotates(tmp_path: Path) -> None:
    path = tmp_path / "alerts.jsonl"
    line_size = len(json.dumps(make_notification(0).to_dict(), ensure_ascii=False)) + 1
    notifier = FileNotifier(path, max_bytes=line_size * 2 + 10, backups=5)
    assert notifier.batches
    assert (await notifier.send_many([make_notification(i) for i in range(5)])).ok

    def ids(file: Path) -> list[str]:
        return [json.loads(x)["alert_id"] for x in file.read_text().splitlines()]

    assert ids(path) == ["alert-4"]
    assert ids(tmp_path / "alerts.jsonl.1") == ["alert-2", "alert-3"]
    assert ids(tmp_path / "alerts.jsonl.2") == ["alert-0", "alert-1"]


async def test_email_builds_a_tls_context_only_for_tls_and_only_once() -> None:
    plain = EmailNotifier(NotificationConfig(
        console=False, smtp_server="127.0.0.1", smtp_use_tls=False,
        email_from="bot@example.com", email_to=["ops@example.com"]))
    assert await plain._tls_context() is None
    tls = EmailNotifier(NotificationConfig(
        console=False, smtp_server="127.0.0.1", smtp_use_tls=True,
        email_from="bot@example.com", email_to=["ops@example.com"]))
    first = await tls._tls_context()
    assert first is not None and await tls._tls_context() is first


class _CountingStream(io.StringIO):
    """A console stream that counts its writes."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


@pytest.mark.parametrize("count", [1, 2, 7, 10])
async def test_console_writes_what_waits_in_one_go_with_the_same_text(
    clock: FakeClock, count: int,
) -> None:
    stream = _CountingStream()
    dispatcher = NotificationDispatcher(
        NotificationConfig(console=True, rate_limits={}, storm_threshold=10),
        clock=clock, rng=random.Random(1), console_stream=stream)
    try:
        sent = [make_notification(i) for i in range(count)]
        dispatcher.enqueue_many(sent)
        await dispatcher.start()
        assert await dispatcher.drain(5)
        assert stream.getvalue() == "".join(f"ALERT {n.text()}\n" for n in sent)
        assert stream.writes == 1
        assert [a.outcome for a in dispatcher.attempts()] == ["delivered"] * count
    finally:
        await dispatcher.stop()
        dispatcher.close()


async def test_console_storm_is_still_one_summary(clock: FakeClock) -> None:
    stream = _CountingStream()
    dispatcher = NotificationDispatcher(
        NotificationConfig(console=True, rate_limits={}, storm_threshold=3),
        clock=clock, rng=random.Random(1), console_stream=stream)
    try:
        dispatcher.enqueue_many([make_notification(i) for i in range(5)])
        await dispatcher.start()
        assert await dispatcher.drain(5)
        text = stream.getvalue()
        assert text.count("ALERT ") == 1 and "5 alert notifications" in text
        assert all("alert-storm summary of 5" in a.detail for a in dispatcher.attempts())
    finally:
        await dispatcher.stop()
        dispatcher.close()


async def test_drain_is_woken_when_workers_go_idle_not_at_every_delivery(
    clock: FakeClock,
) -> None:
    notifiers = [FakeNotifier(NotificationChannel.WEBHOOK, f"webhook#{i}") for i in range(2)]
    dispatcher = NotificationDispatcher(
        NotificationConfig(console=False, rate_limits={}, storm_threshold=100),
        notifiers=notifiers, clock=clock, rng=random.Random(1))
    try:
        await dispatcher.start()
        assert await dispatcher.drain(5)
        progress = dispatcher._progress
        assert progress is not None
        signals = 0
        original = progress.set

        def counting() -> None:
            nonlocal signals
            signals += 1
            original()

        progress.set = counting  # type: ignore[method-assign]
        dispatcher.enqueue_many([make_notification(i) for i in range(20)])
        assert await dispatcher.drain(5)
        assert all(len(n.sent) == 20 for n in notifiers)  # one by one: 40 deliveries
        assert signals <= 2 * len(notifiers)  # each worker going idle (maybe twice)
    finally:
        await dispatcher.stop()
        dispatcher.close()
