"""A byte flipped on disk can leave a TEXT value that is not UTF-8. Python's sqlite3
then raises ``OperationalError: Could not decode to UTF-8`` for the whole query: the
store's "rows that cannot be decoded are skipped" did not hold, and the monitor did not
start at all (``load_active`` in the evaluator's constructor), and an outbox row stopped
its destination for good. Such a value is read with the bad bytes replaced: an alert
row is kept when it still parses, skipped when not; an outbox row is failed as damaged."""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otel_botmon.alerting.manager import AlertManager
from otel_botmon.alerting.model import AlertSeverity
from otel_botmon.alerting.store import AlertStore
from otel_botmon.notify.outbox import Outbox

TARGET = [("webhook", "webhook#0")]


def _raw(path: Path, sql: str, *args: object) -> None:
    conn = sqlite3.connect(path)
    conn.execute(sql, args)
    conn.commit()
    conn.close()


def _damage(text: str, at: int, byte: int) -> bytes:
    """``text`` as UTF-8 with the byte at ``at`` replaced by one that is never valid
    UTF-8 on its own."""
    raw = bytearray(text.encode())
    raw[at % len(raw)] = byte
    return bytes(raw)


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(count=st.integers(2, 6), data=st.data(),
       byte=st.sampled_from([0x80, 0xC0, 0xFE, 0xFF]))
def test_an_alert_row_that_is_not_utf8_does_not_stop_the_start(
    count: int, data: st.DataObject, byte: int,
) -> None:
    path = Path(tempfile.mkdtemp()) / "alerts.db"
    manager = AlertManager(store=path)
    ids = [manager.evaluator.create_custom_alert(f"a{i}", "m", AlertSeverity.CRITICAL)[0].id
           for i in range(count)]
    manager.close()
    victim = data.draw(st.sampled_from(ids))
    conn = sqlite3.connect(path)
    (text,) = conn.execute("SELECT data FROM alerts WHERE id = ?", (victim,)).fetchone()
    conn.close()
    at = data.draw(st.integers(0, 10_000))  # taken modulo the length (which varies)
    _raw(path, "UPDATE alerts SET data = CAST(? AS TEXT) WHERE id = ?",
         _damage(text, at, byte), victim)

    restarted = AlertManager(store=path)  # raised OperationalError before the fix
    try:
        active = {alert.id for alert in restarted.get_active_alerts()}
        assert set(ids) - {victim} <= active
        history = {alert.id for alert in restarted.get_alert_history(100)}
        assert set(ids) - {victim} <= history
    finally:
        restarted.close()


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(count=st.integers(2, 6), data=st.data(),
       byte=st.sampled_from([0x80, 0xC0, 0xFE, 0xFF]))
def test_an_outbox_payload_that_is_not_utf8_does_not_stop_the_queue(
    count: int, data: st.DataObject, byte: int,
) -> None:
    path = Path(tempfile.mkdtemp()) / "alerts.db"
    store = AlertStore(path)
    outbox = Outbox(store=store)
    for i in range(count):
        outbox.enqueue(f"n{i}", f"a{i}", {"title": f"t{i}"}, TARGET, now=1000.0 + i)
    outbox.close()
    store.close()
    victim = data.draw(st.integers(0, count - 1))
    text = f'{{"title": "t{victim}"}}'
    at = data.draw(st.integers(0, len(text) - 1))
    _raw(path, "UPDATE notify_messages SET payload = CAST(? AS TEXT) "
               "WHERE notification_id = ?", _damage(text, at, byte), f"n{victim}")

    store = AlertStore(path)
    try:
        outbox = Outbox(store=store)
        pending = outbox.pending("webhook#0", 100)  # raised OperationalError before the fix
        # the damaged one is failed and counted (its id, read with U+FFFD, would go
        # into a request header and fail there on every try); the others go out
        assert [item.notification_id for item in pending] == [
            f"n{i}" for i in range(count) if i != victim]
        assert outbox.skipped_rows == 1
        outbox.close()
    finally:
        store.close()
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT notification_id FROM notify_outbox WHERE state = 'failed'"
                        ).fetchall() == [(f"n{victim}",)]
    conn.close()


@settings(max_examples=10, deadline=None)
@given(byte=st.sampled_from([0x80, 0xC0, 0xEC, 0xFE, 0xFF]), which=st.integers(0, 10_000))
def test_a_schema_that_is_not_utf8_is_moved_aside_not_a_crash(byte: int, which: int) -> None:
    """A byte flipped in an index's name in ``sqlite_master``: SQLite's "malformed
    database schema" message quotes the bad bytes and Python raised UnicodeDecodeError
    from the open, which the store did not take for a damaged file: no start."""
    path = Path(tempfile.mkdtemp()) / "alerts.db"
    store = AlertStore(path)
    outbox = Outbox(store=store)
    outbox.close()
    store.close()
    data = bytearray(path.read_bytes())
    page_size = int.from_bytes(data[16:18], "big")
    names = [b"notify_outbox_queue", b"alerts_state", b"notify_attempts_alert"]
    name = names[which % len(names)]
    # the record's type column ("index") is followed by its name column: damage the name
    at = data.index(b"index" + name, 0, page_size) + len(b"index") + which % len(name)
    data[at] = byte
    path.write_bytes(bytes(data))

    store = AlertStore(path)  # raised UnicodeDecodeError before the fix
    try:
        assert store.moved_aside is not None
        Outbox(store=store).close()
    finally:
        store.close()


@settings(max_examples=10, deadline=None)
@given(count=st.integers(2, 8), data=st.data())
def test_an_outbox_row_whose_message_is_gone_is_failed_not_pending_for_good(
    count: int, data: st.DataObject,
) -> None:
    """A byte flipped in a notification id (of the row or of its message) leaves a row
    with no message: the queue's inner join never read it, so it stayed pending for good
    and the dispatcher's ``drain()`` never found the outbox empty."""
    path = Path(tempfile.mkdtemp()) / "alerts.db"
    store = AlertStore(path)
    outbox = Outbox(store=store)
    for i in range(count):
        outbox.enqueue(f"n{i}", f"a{i}", {"title": f"t{i}"}, TARGET, now=1000.0 + i)
    outbox.close()
    store.close()
    victim = data.draw(st.integers(0, count - 1))
    _raw(path, "UPDATE notify_messages SET notification_id = 'x' || notification_id "
               "WHERE notification_id = ?", f"n{victim}")

    store = AlertStore(path)
    try:
        outbox = Outbox(store=store)
        pending = outbox.pending("webhook#0", 100)
        assert [item.notification_id for item in pending] == [
            f"n{i}" for i in range(count) if i != victim]
        assert outbox.pending_count() == count - 1  # was count: never delivered, never failed
        assert outbox.skipped_rows == 1
        outbox.close()
    finally:
        store.close()
