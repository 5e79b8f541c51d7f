"""A damaged index that ``PRAGMA quick_check`` does not see (it checks the b-trees, not
that each index matches its table) must not silently stop deliveries: the store finds it
on open, rebuilds the indexes (no row is lost) and says so in the log."""

from __future__ import annotations

import logging
import sqlite3
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otel_botmon.alerting.store import AlertStore
from otel_botmon.notify.outbox import Outbox

TARGET = [("webhook", "webhook#0")]


def _queue(path: Path, rows: int) -> None:
    store = AlertStore(path)
    outbox = Outbox(store=store)
    for i in range(rows):
        outbox.enqueue(f"n{i}", f"a{i}", {"i": i}, TARGET, now=1000.0 + i)
    outbox.close()
    store.close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def _damage_index_entry(path: Path, index: str, entry: int, byte: int) -> None:
    """Change one byte of the ``entry``-th ``pending`` key in the root page of ``index``
    (a bit flip on disk): the table keeps the row, the index no longer finds it."""
    conn = sqlite3.connect(path)
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    (root,) = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?",
                           (index,)).fetchone()
    conn.close()
    data = bytearray(path.read_bytes())
    start = (root - 1) * page_size
    at = -1
    for _ in range(entry + 1):
        at = data.index(b"pending", at + 1, start + page_size) if at >= 0 else data.index(
            b"pending", start, start + page_size)
    data[at + 6] = byte
    path.write_bytes(bytes(data))
    check = sqlite3.connect(path)
    assert check.execute("PRAGMA quick_check").fetchone()[0] == "ok"  # unseen by it
    check.close()


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.integers(5, 60), data=st.data(),
       byte=st.sampled_from([ord("h"), ord("a"), ord("z"), 0, 0xFF]))
def test_a_damaged_outbox_index_is_rebuilt_and_every_pending_row_is_delivered(
    rows: int, data: st.DataObject, byte: int, caplog: pytest.LogCaptureFixture,
) -> None:
    entry = data.draw(st.integers(0, rows - 1))
    path = Path(tempfile.mkdtemp()) / "alerts.db"
    _queue(path, rows)
    _damage_index_entry(path, "notify_outbox_queue", entry, byte)
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="otel_botmon.alerting.store"):
        store = AlertStore(path)
    try:
        outbox = Outbox(store=store)
        pending = outbox.pending("webhook#0", 1000)
        assert [item.notification_id for item in pending] == [f"n{i}" for i in range(rows)]
        assert outbox.pending_count() == rows
        assert store.moved_aside is None  # nothing was lost: the rows are all there
        assert any("index" in r.getMessage() and "rebuil" in r.getMessage()
                   for r in caplog.records), [r.getMessage() for r in caplog.records]
        outbox.close()
    finally:
        store.close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
