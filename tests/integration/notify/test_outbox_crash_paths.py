"""Every way an alert event can reach the store after its first write failed, each followed
by a simulated crash: the file is read as it is on disk at that instant (a reader of its
own, so only committed rows count), without letting the dispatcher run any further.

Invariant: a notifiable FIRED is never committed without its outbox rows, and no
notification is queued twice. (The SIGKILL test in test_store_durability.py checks the
same at random instants; these pin each path down deterministically.)
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from otel_botmon.alerting.evaluator import AlertEvaluator
from otel_botmon.alerting.model import AlertEvent, AlertEventKind, AlertSeverity
from otel_botmon.alerting.store import AlertStore
from otel_botmon.notify import NotificationConfig, NotificationDispatcher


@dataclass
class Setup:
    db: Path
    store: AlertStore
    evaluator: AlertEvaluator
    dispatcher: NotificationDispatcher
    holder: sqlite3.Connection

    def lock(self) -> None:
        """Another connection takes the write lock (the store's busy timeout is 50 ms)."""
        self.holder.execute("BEGIN IMMEDIATE")

    def unlock(self) -> None:
        self.holder.execute("ROLLBACK")

    def on_disk(self) -> tuple[set[str], list[str]]:
        """(alerts with a notifiable FIRED, alert ids of queued FIRED notifications), as
        committed: what a process killed now would find."""
        conn = sqlite3.connect(self.db)
        try:
            fired = {r[0] for r in conn.execute(
                "SELECT alert_id FROM alert_events WHERE kind = 'fired' AND notify = 1")}
            queued = [r[0] for r in conn.execute(
                "SELECT o.alert_id FROM notify_outbox AS o JOIN notify_messages AS m"
                " ON m.notification_id = o.notification_id"
                " WHERE json_extract(m.payload, '$.event') = 'fired'")]
        finally:
            conn.close()
        return fired, queued


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    db = tmp_path / "alerts.db"
    store = AlertStore(db, timeout_s=0.05)
    evaluator = AlertEvaluator(store=store, publish_telemetry=False)
    dispatcher = NotificationDispatcher(
        NotificationConfig(console=False, webhook_urls=["http://127.0.0.1:9/hook"]),
        store=store)
    evaluator.add_listener(dispatcher.on_alert_event)
    holder = sqlite3.connect(db, timeout=0, isolation_level=None)
    yield Setup(db, store, evaluator, dispatcher, holder)
    holder.close()
    dispatcher.close()
    evaluator.close()
    store.close()


def fire_while_locked(setup: Setup) -> tuple[str, list[AlertEvent]]:
    setup.lock()
    alert, events = setup.evaluator.create_custom_alert(
        "disk low", "m", AlertSeverity.CRITICAL, dispatch=False)
    assert [e.kind for e in events] == [AlertEventKind.FIRED]
    assert setup.on_disk() == (set(), [])  # the write failed: nothing stored
    return alert.id, events


def test_the_retry_stores_the_fired_with_its_notification(setup: Setup) -> None:
    """The listener never ran (the process dies before it would): the next write of the
    evaluator retries the event, and its notification goes in the same transaction."""
    alert_id, _ = fire_while_locked(setup)
    setup.unlock()
    setup.evaluator.evaluate(dispatch=False)  # the next cycle retries the failed write
    assert setup.on_disk() == ({alert_id}, [alert_id])  # crash here: nothing lost


def test_a_notification_spooled_by_the_listener_is_not_queued_twice(setup: Setup) -> None:
    """The listener ran while the lock was held: its commit failed too and the
    notification waits in the spool. The retry then stores both; the spool's later
    write finds the notification queued already."""
    alert_id, events = fire_while_locked(setup)
    setup.evaluator.dispatch(events)
    assert setup.dispatcher.wait_committed(10)
    assert len(setup.dispatcher.spool) == 1
    setup.unlock()
    setup.evaluator.evaluate(dispatch=False)
    assert setup.on_disk() == ({alert_id}, [alert_id])  # crash here: nothing lost
    setup.dispatcher.close()  # writes the spool one last time
    assert len(setup.dispatcher.spool) == 0
    assert setup.on_disk() == ({alert_id}, [alert_id])  # still once


def test_a_notification_committed_by_the_listener_first_is_not_queued_twice(
    setup: Setup,
) -> None:
    """The lock went before the listener's commit: the notification is queued before
    its alert is stored (never the other way round), and the retry does not queue it
    again."""
    alert_id, events = fire_while_locked(setup)
    setup.unlock()
    setup.evaluator.dispatch(events)
    assert setup.dispatcher.wait_committed(10)
    assert setup.on_disk() == (set(), [alert_id])  # crash here: notified, alert not stored
    setup.evaluator.evaluate(dispatch=False)
    assert setup.on_disk() == ({alert_id}, [alert_id])


def test_the_retry_still_finds_an_alert_that_left_memory(setup: Setup) -> None:
    """The failed write's alert is kept with its event: even when the evaluator no longer
    holds the alert when the retry runs, the notification is built and queued with it."""
    alert_id, _ = fire_while_locked(setup)
    resolved, _ = setup.evaluator.resolve(alert_id, "ops", dispatch=False)  # still locked
    assert resolved
    setup.evaluator._alerts.resolved.clear()  # out of memory (as after 500 others)
    setup.unlock()
    setup.evaluator.evaluate(dispatch=False)
    assert setup.on_disk() == ({alert_id}, [alert_id])
