"""SQLite persistence: restarts keep state and timers; a corrupt file is moved aside."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from otel_botmon.alerting.model import AlertEventKind, AlertRule, AlertState
from otel_botmon.alerting.store import AlertStore, StoreVersionError

from .conftest import Clock, Conditions, Recorder


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "alerts.db"


def test_restart_does_not_fire_again_and_keeps_the_acknowledgement(
    make_evaluator, conditions: Conditions, clock: Clock, db: Path,
) -> None:
    cond = conditions.add("x > 1", ">", 1)
    rule = AlertRule("x", "x > 1", escalation_minutes=5)
    store = AlertStore(db)
    ev = make_evaluator(rule, store=store)
    cond.set(5, symbol="BTC")
    (fired,) = ev.evaluate()
    ev.acknowledge(fired.alert_id, "trader_john")
    store.close()

    clock.advance(3600)
    store = AlertStore(db)
    ev2 = make_evaluator(rule, store=store)
    sent = Recorder()
    ev2.add_listener(sent, notifiable_only=False)
    assert ev2.evaluate() == []  # still firing: no duplicate FIRED, and acked: no escalation
    (alert,) = ev2.firing()
    assert alert.id == fired.alert_id
    assert alert.acknowledged_by == "trader_john"
    assert [e.kind for e in alert.events] == [AlertEventKind.FIRED, AlertEventKind.ACKNOWLEDGED]
    cond.set(0, symbol="BTC")
    cond.set(None, symbol="BTC")
    clock.advance(10)
    assert sent.kinds() == []
    ev2.evaluate()
    assert sent.kinds() == ["resolved"]
    assert store.get_alert(fired.alert_id).state is AlertState.RESOLVED
    store.close()


# The for and keep_firing_for timers across a restart: test_for_state_restore.py.


def test_restart_keeps_cooldowns_and_silences(make_evaluator, conditions: Conditions,
                                              clock: Clock, db: Path) -> None:
    cond = conditions.add("x > 1", ">", 1)
    rule = AlertRule("x", "x > 1", cooldown_minutes=10)
    store = AlertStore(db)
    ev = make_evaluator(rule, store=store)
    cond.set(5)
    ev.evaluate()
    cond.set(0)
    clock.advance(10)
    ev.evaluate()
    from otel_botmon.alerting.model import LabelMatcher, Silence

    ev.add_silence(Silence("s1", [LabelMatcher("alertname", "=", "other")], 0, clock.now + 99))
    store.close()
    store = AlertStore(db)
    ev = make_evaluator(rule, store=store)
    assert [s.id for s in ev.silences()] == ["s1"]
    cond.set(5)
    clock.advance(60)
    (refired,) = ev.evaluate()
    assert refired.suppressed == "cooldown"
    store.close()


def test_pending_alert_that_never_fired_leaves_no_trace(make_evaluator, conditions: Conditions,
                                                        clock: Clock) -> None:
    cond = conditions.add("x > 1", ">", 1)
    store = AlertStore()
    ev = make_evaluator(AlertRule("x", "x > 1", for_=60), store=store)
    cond.set(5)
    ev.evaluate()
    assert len(store.history()) == 1
    cond.set(0)
    clock.advance(10)
    ev.evaluate()
    assert store.history() == []


def test_history_and_events_are_stored(make_evaluator, conditions: Conditions,
                                       clock: Clock) -> None:
    cond = conditions.add("x > 1", ">", 1)
    store = AlertStore()
    ev = make_evaluator(AlertRule("x", "x > 1"), store=store)
    cond.set(5)
    (fired,) = ev.evaluate()
    event_id = store.add_event(fired.alert_id, "notified", {"channel": "slack", "ok": True},
                               at=clock.now)
    assert event_id > (fired.id or 0)
    stored = store.get_alert(fired.alert_id)
    assert [e.kind.value for e in stored.events] == ["fired", "notified"]
    assert stored.events[1].detail == {"channel": "slack", "ok": True}
    assert ev.get(fired.alert_id).to_dict()["state"] == "firing"


def test_other_modules_can_keep_tables_in_the_same_file(db: Path) -> None:
    store = AlertStore(db)
    with store.connection() as conn:
        conn.execute("CREATE TABLE outbox (id INTEGER PRIMARY KEY, body TEXT)")
        conn.execute("INSERT INTO outbox(body) VALUES ('hi')")
    store.close()
    again = AlertStore(db)
    with again.connection() as conn:
        assert conn.execute("SELECT body FROM outbox").fetchall() == [("hi",)]
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    again.close()


def test_corrupt_file_is_moved_aside_loudly_and_a_fresh_store_created(
    db: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    db.write_bytes(b"this is not a database" * 500)
    with caplog.at_level(logging.ERROR, logger="otel_botmon.alerting.store"):
        store = AlertStore(db)
    assert store.moved_aside is not None and store.moved_aside.exists()
    assert store.moved_aside.read_bytes().startswith(b"this is not a database")
    assert "ALERT STORE CORRUPT" in caplog.text and str(store.moved_aside) in caplog.text
    assert store.history() == []
    store.add_event("a", "fired", {})
    store.close()


def test_truncated_database_is_moved_aside(db: Path) -> None:
    store = AlertStore(db)
    for i in range(200):
        store.add_event(f"alert{i}", "fired", {"pad": "x" * 200})
    store.close()
    data = db.read_bytes()
    db.write_bytes(data[:100] + b"\xff" * 4000 + data[4100:8000])
    store = AlertStore(db)
    assert store.moved_aside is not None
    store.close()


def test_newer_schema_is_refused_not_destroyed(db: Path) -> None:
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA user_version=99")
    conn.close()
    with pytest.raises(StoreVersionError, match="schema version 99"):
        AlertStore(db)
    assert db.exists()


async def test_resolved_alerts_past_retention_are_pruned(clock: Clock, tmp_path: Path) -> None:
    from otel_botmon.alerting.manager import AlertManager

    manager = AlertManager(store=tmp_path / "a.db", clock=clock, retention_days=1)
    old = await manager.create_custom_alert("old", "x")
    await manager.resolve_alert(old)
    active = await manager.create_custom_alert("still firing", "x")
    clock.advance(2 * 86400)
    manager.evaluate_once()
    assert manager.get_alert(old) is None
    assert manager.get_alert(active) is not None
    manager.close()


def test_restored_alert_waits_for_its_rule_then_resolves_if_it_never_returns(
    make_evaluator, conditions: Conditions, clock: Clock, db: Path,
) -> None:
    cond = conditions.add("x > 1", ">", 1)
    rule = AlertRule("x", "x > 1")
    store = AlertStore(db)
    cond.set(5)
    (fired,) = make_evaluator(rule, store=store).evaluate()
    store.close()

    store = AlertStore(db)
    late = make_evaluator(store=store)
    assert late.evaluate() == []  # rule not registered yet: the alert waits
    clock.advance(60)
    late.add_rule(rule)
    assert late.evaluate() == [] and late.firing()[0].id == fired.alert_id
    store.close()

    store = AlertStore(db)
    never = make_evaluator(store=store)
    clock.advance(599)
    assert never.evaluate() == []
    clock.advance(1)
    (resolved,) = never.evaluate()
    assert resolved.detail["reason"] == "rule no longer registered"
    store.close()


def test_a_locked_database_is_not_mistaken_for_a_corrupt_one(db: Path) -> None:
    """A rollback-journal file (not yet in WAL mode) locked EXCLUSIVE cannot even be read:
    "locked" is raised, the file is not moved aside. Our own WAL store opens while another
    process holds its write lock (opening writes nothing)."""
    sqlite3.connect(db).close()
    holder = sqlite3.connect(db, timeout=0)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            AlertStore(db, timeout_s=0.05)
    finally:
        holder.rollback()
        holder.close()
    assert not list(db.parent.glob("*.corrupt-*"))
    AlertStore(db).close()
    holder = sqlite3.connect(db, timeout=0)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        AlertStore(db, timeout_s=0.05).close()
    finally:
        holder.rollback()
        holder.close()
    assert not list(db.parent.glob("*.corrupt-*"))


def test_an_unreadable_row_is_skipped_not_fatal(
    make_evaluator, conditions: Conditions, db: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    cond = conditions.add("x > 1", ">", 1)
    rule = AlertRule("x", "x > 1")
    store = AlertStore(db)
    cond.set(5, s="a")
    cond.set(5, s="b")
    first, second = make_evaluator(rule, store=store).evaluate()
    with store.connection() as conn:
        conn.execute("UPDATE alerts SET data=? WHERE id=?", ('{"broken": ', first.alert_id))
    store.close()
    store = AlertStore(db)
    ev = make_evaluator(rule, store=store)
    assert [a.id for a in ev.firing()] == [second.alert_id]
    assert "unreadable alert row" in caplog.text
    store.close()


def test_a_failed_transaction_stores_nothing(db: Path) -> None:
    store = AlertStore(db)
    with pytest.raises(RuntimeError), store.transaction():
        store.add_event("a1", "fired", {})
        with store.transaction():  # nested: part of the outer one
            store.add_event("a1", "resolved", {})
        raise RuntimeError("disk went away")
    assert store.events("a1") == []
    with store.transaction():
        store.add_event("a1", "fired", {})
    assert [e.kind.value for e in store.events("a1")] == ["fired"]
    store.close()
