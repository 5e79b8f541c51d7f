"""A damaged outbox row (a hand edit, a bad sector: text where a number belongs) neither
stops its destination's deliveries nor is delivered again and again. Damage to what it
delivers (its ids, its payload) skips it, counted and marked failed; damage to what only
schedules or describes the delivery (attempts, retry and creation times, the last
detail) is repaired and the notification delivered once. A row whose destination this
process does not have (a channel taken out of the configuration, a name damaged on disk)
stays for a process that has it, and ``drain()`` does not wait for it."""

from __future__ import annotations

import logging
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from otel_botmon.notify import NotificationConfig, NotificationDispatcher
from otel_botmon.notify.message import Notification
from otel_botmon.notify.outbox import FAILED, PENDING
from tests.integration.notify.receivers import Receiver


def _config(db: Path, receiver: Receiver) -> NotificationConfig:
    return NotificationConfig(console=False, webhook_urls=[f"{receiver.url}/hook"],
                              outbox_path=str(db), retry_initial_delay=0.05,
                              retry_max_delay=0.2)


def _queue_three(config: NotificationConfig) -> None:
    first = NotificationDispatcher(config)
    for i in range(3):
        first.enqueue(Notification(alert_id=f"a{i}", title=f"a{i}"))
    assert first.wait_committed(10)
    first.close()


def _damage(db: Path, sql: str, *params: Any) -> None:
    conn = sqlite3.connect(db)
    (row_id,) = conn.execute("SELECT id FROM notify_outbox WHERE alert_id = 'a0'").fetchone()
    conn.execute(sql, (*params, row_id))
    conn.commit()
    conn.close()


async def _deliver(config: NotificationConfig) -> NotificationDispatcher:
    dispatcher = NotificationDispatcher(config)
    await dispatcher.start()
    try:
        assert await dispatcher.drain(20)
    finally:
        await dispatcher.stop()
    return dispatcher


def _state_of_a0(dispatcher: NotificationDispatcher) -> tuple[str]:
    with dispatcher.outbox.store.connection() as conn:
        row: tuple[str] = conn.execute(
            "SELECT state FROM notify_outbox WHERE alert_id = 'a0' OR id = 1").fetchone()
    return row


@settings(max_examples=10, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(column=st.sampled_from(["attempts", "next_attempt_at", "created_at", "last_detail"]),
       value=st.one_of(st.text(max_size=20), st.binary(max_size=20), st.floats()))
@example(column="next_attempt_at", value="garbage")
@example(column="next_attempt_at", value=1e300)  # far away: a flipped exponent bit
@example(column="next_attempt_at", value=float("inf"))
@example(column="attempts", value="garbage")
@example(column="attempts", value=b"\x00\xff")
@example(column="last_detail", value=b"\xff\xfe")  # not UTF-8
@example(column="created_at", value=b"\x00\xff")
async def test_damage_to_how_a_row_is_scheduled_is_repaired_and_it_is_delivered_once(
    tmp_path_factory: pytest.TempPathFactory, webhook_receiver: Receiver, column: str,
    value: object,
) -> None:
    db = tmp_path_factory.mktemp("outbox") / "alerts.db"
    webhook_receiver.requests.clear()
    config = _config(db, webhook_receiver)
    _queue_three(config)
    _damage(db, f"UPDATE notify_outbox SET {column} = ? WHERE id = ?", value)
    dispatcher = await _deliver(config)
    try:
        delivered = Counter(r.json()["alert_id"] for r in webhook_receiver.requests)
        assert delivered == {"a0": 1, "a1": 1, "a2": 1}
        assert dispatcher.outbox.skipped_rows == 0
    finally:
        dispatcher.close()


@pytest.mark.parametrize("column", ["alert_id", "notification_id"])
async def test_a_row_whose_ids_are_not_text_is_skipped_and_the_rest_delivered_once(
    tmp_path: Path, webhook_receiver: Receiver, column: str,
) -> None:
    db = tmp_path / "alerts.db"
    webhook_receiver.requests.clear()
    config = _config(db, webhook_receiver)
    _queue_three(config)
    # a byte flipped on disk: TEXT that is not UTF-8
    _damage(db, f"UPDATE notify_outbox SET {column} = CAST(? AS TEXT) WHERE id = ?",
            b"a\xff0")
    dispatcher = await _deliver(config)
    try:
        delivered = Counter(r.json()["alert_id"] for r in webhook_receiver.requests)
        assert delivered == {"a1": 1, "a2": 1}
        assert dispatcher.outbox.skipped_rows == 1
        assert _state_of_a0(dispatcher) == (FAILED,)  # kept, out of the queue
    finally:
        dispatcher.close()


@pytest.mark.parametrize("destination", ["slack", "webhook#9", b"web\xffhook#0"])
async def test_a_row_for_a_destination_not_configured_waits_and_drain_does_not(
    tmp_path: Path, webhook_receiver: Receiver, destination: object,
    caplog: pytest.LogCaptureFixture,
) -> None:
    db = tmp_path / "alerts.db"
    webhook_receiver.requests.clear()
    config = _config(db, webhook_receiver)
    _queue_three(config)
    _damage(db, "UPDATE notify_outbox SET destination = CAST(? AS TEXT) WHERE id = ?",
            destination)
    caplog.set_level(logging.WARNING, logger="otel_botmon.notify")
    dispatcher = await _deliver(config)  # drain() returns: the others are delivered
    try:
        delivered = Counter(r.json()["alert_id"] for r in webhook_receiver.requests)
        assert delivered == {"a1": 1, "a2": 1}
        assert _state_of_a0(dispatcher) == (PENDING,)  # kept for a process that has it
        assert dispatcher.pending_count() == 1
        assert "not configured here" in caplog.text
    finally:
        dispatcher.close()
