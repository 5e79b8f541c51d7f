"""The durable outbox: every notification to every destination is a row in SQLite first.

Rows live in their own tables (``notify_outbox``, ``notify_attempts``, ``notify_active``)
so the file can be the alert store's: then the outbox uses the store's connection and
its rows join the store's transactions (an alert and its notifications commit together).
WAL journaling with ``synchronous=NORMAL`` makes a committed row survive the process
being killed; the dispatcher delivers rows in ``id`` order per destination and marks
them delivered or failed, so after a restart whatever was still pending is delivered (at
least once). A file of its own is opened through an ``AlertStore`` too, so it gets the
same protection: one process per file, a corrupt file moved aside, a read-only location
falling back to memory.
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from otel_botmon import _fork
from otel_botmon.alerting.store import AlertStore, Undecodable
from otel_botmon.alerting.store_file import rollback_quietly
from otel_botmon.notify.base import DeliveryResult

__all__ = ["AttemptRecord", "Outbox", "OutboxItem"]

logger = logging.getLogger("otel_botmon.notify")

PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"

# Plain INTEGER PRIMARY KEY (no AUTOINCREMENT, one page write less per insert): a new
# row always gets max(id) + 1, so ids follow queue order even after pruning.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS notify_outbox (
    id INTEGER PRIMARY KEY,
    notification_id TEXT NOT NULL,
    alert_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    destination TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    next_attempt_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    last_detail TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS notify_messages (
    notification_id TEXT PRIMARY KEY,
    payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS notify_outbox_queue ON notify_outbox (destination, state, id);
CREATE TABLE IF NOT EXISTS notify_attempts (
    id INTEGER PRIMARY KEY,
    outbox_id INTEGER,
    alert_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    destination TEXT NOT NULL,
    at REAL NOT NULL,
    attempt INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL,
    status_code INTEGER
);
CREATE INDEX IF NOT EXISTS notify_attempts_alert ON notify_attempts (alert_id, id);
CREATE TABLE IF NOT EXISTS notify_active (
    destination TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    payload TEXT NOT NULL,
    PRIMARY KEY (destination, fingerprint)
);
"""


@dataclass(frozen=True)
class OutboxItem:
    """One notification waiting for (or done with) one destination."""

    id: int
    notification_id: str
    alert_id: str
    channel: str
    destination: str
    payload: str
    state: str
    attempts: int
    created_at: float
    next_attempt_at: float
    last_detail: str


@dataclass(frozen=True)
class AttemptRecord:
    """One delivery attempt as stored: what, where, when, and how it ended."""

    outbox_id: int | None
    alert_id: str
    channel: str
    destination: str
    at: float
    attempt: int
    outcome: str
    detail: str
    status_code: int | None


# The payload is stored once per notification and joined in, not copied per destination.
_ITEM_COLUMNS = (
    "o.id, o.notification_id, o.alert_id, o.channel, o.destination, m.payload, o.state, "
    "o.attempts, o.created_at, o.next_attempt_at, o.last_detail"
)
# LEFT: a row whose message is gone (a byte flipped in either key) is read, and failed as
# damaged (:meth:`Outbox._item`); an inner join never returned it, so it stayed pending
# for good and ``drain()`` never found the outbox empty.
_ITEMS_FROM = (
    "FROM notify_outbox AS o LEFT JOIN notify_messages AS m "
    "ON m.notification_id = o.notification_id"
)


def _finite(value: Any, default: float) -> float:
    """``value`` as a finite float, else ``default``."""
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return default
    return number if math.isfinite(number) else default


def _count(value: Any) -> int:
    """``value`` as a count >= 0, else 0."""
    try:
        return max(0, int(value))
    except (TypeError, ValueError, OverflowError):
        return 0


class Outbox:
    """SQLite-backed queue of notification deliveries; safe to use from several threads.

    ``path`` is a file (created with its directory) or ``":memory:"``; ``store`` shares
    an open alert store's file and connection instead.

    Raises:
        sqlite3.Error: the file cannot be opened (locked by another connection).
        StoreInUseError: another process has the file open.
    """

    def __init__(self, path: str | Path = ":memory:", *, store: AlertStore | None = None) -> None:
        self._owns_store = store is None
        self.store = store if store is not None else AlertStore(path, timeout_s=10.0)
        self.path = self.store.path
        self._db, self._lock = self.store.share()
        self._skipped: set[int] = set()
        self._skip_lock = threading.Lock()
        self._create_tables()
        _fork.register(self)

    def _create_tables(self) -> None:
        with self._lock:
            # NORMAL in WAL mode: a commit survives a killed process (not a power cut).
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)

    def _after_fork_in_child(self) -> None:
        """A forked child has a store of its own in memory (see
        :meth:`AlertStore.leave_parent`): the outbox goes on in it, empty. The parent's
        rows are the parent's to deliver."""
        self.store.leave_parent()  # whichever hook runs first does it
        self._skip_lock = threading.Lock()
        self._skipped = set()
        conn, lock = self.store.share()
        if conn is not self._db:
            self._db, self._lock = conn, lock
            self.path = self.store.path
            self._create_tables()

    def close(self) -> None:
        if self._owns_store:
            self.store.close()

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """A write transaction, or part of the one already open on this connection (the
        alert store's, when the outbox joins it)."""
        with self._lock:
            if self._db.in_transaction:
                yield
                return
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
                self._db.execute("COMMIT")
            except BaseException:
                rollback_quietly(self._db)
                raise

    # ----- the queue -----

    def enqueue(
        self,
        notification_id: str,
        alert_id: str,
        payload: dict[str, object],
        targets: Sequence[tuple[str, str]],
        now: float,
    ) -> list[int]:
        """Insert one row per ``(channel, destination)`` in one transaction and return
        the new row ids. A notification already queued (same ``notification_id``) is not
        queued again."""
        return self.enqueue_many([(notification_id, alert_id, payload, targets)], now)

    def enqueue_many(
        self,
        entries: Sequence[tuple[str, str, dict[str, object], Sequence[tuple[str, str]]]],
        now: float,
        unconfigured: Sequence[tuple[str, str, DeliveryResult]] = (),
    ) -> list[int]:
        """Like :meth:`enqueue` for several notifications, in ONE transaction (one commit
        for a whole evaluation cycle). ``unconfigured`` (alert id, channel, result):
        attempts at channels that are not configured, recorded in the same transaction."""
        encoded = [(nid, aid, json.dumps(payload, ensure_ascii=False), targets)
                   for nid, aid, payload, targets in entries]
        ids: list[int] = []
        with self._transaction():
            for alert_id, channel, result in unconfigured:
                self._insert_attempt(None, alert_id, channel, channel, now, 0, result,
                                     result.detail)
            for notification_id, alert_id, text, targets in encoded:
                fresh = self._db.execute(
                    "INSERT OR IGNORE INTO notify_messages (notification_id, payload) "
                    "VALUES (?, ?)",
                    (notification_id, text),
                ).rowcount
                # The message table's key is the dedup: a notification queued before
                # is not queued again (one index less to maintain per outbox row).
                for channel, destination in targets if fresh else ():
                    cursor = self._db.execute(
                        "INSERT INTO notify_outbox (notification_id, alert_id, channel, "
                        "destination, created_at, next_attempt_at, updated_at) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (notification_id, alert_id, channel, destination, now, now, now),
                    )
                    if cursor.lastrowid is not None:
                        ids.append(cursor.lastrowid)
        return ids

    def pending(self, destination: str, limit: int) -> list[OutboxItem]:
        """The oldest pending rows of one destination, in queue order. A damaged row
        (see :func:`_item`) is marked failed, logged and counted (``skipped_rows``):
        as the head of the queue it would stop the destination, or be delivered again
        on every try."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_ITEM_COLUMNS} {_ITEMS_FROM} WHERE o.destination = ? "
                "AND o.state = ? ORDER BY o.id LIMIT ?",
                (destination, PENDING, limit),
            ).fetchall()
            items = [item for item in map(self._item, rows) if item is not None]
            if len(items) < len(rows):
                self._fail_damaged({row[0] for row in rows} - {item.id for item in items})
        return items

    def _item(self, row: tuple[Any, ...]) -> OutboxItem | None:
        """The row as an item, or None (logged and counted once) when what it delivers
        is damaged: an id, the destination or the payload is not UTF-8 text (a byte
        flipped on disk: see ``Undecodable``), or its message is missing. Damage to what
        only schedules or describes the delivery is repaired instead (the notification
        itself is intact): a retry time that is not a finite number becomes 0 (due at
        once), such a creation time the retry time, an attempt count that is not a
        number 0, a last detail that is not text empty."""
        row_id, nid, alert_id, channel, destination, payload, state, tries, created, due, \
            detail = row
        try:
            bad = next((value for value in row[:7] if isinstance(value, Undecodable)), None)
            if bad is not None:  # an id with U+FFFD in a header, a payload half read
                raise ValueError(f"stored text is not UTF-8: {bad[:60]!r}")
            if payload is None:
                raise ValueError(f"its message {nid!r} is missing")
            due_at = _finite(due, 0.0)
            return OutboxItem(row_id, nid, alert_id, channel, destination, payload, state,
                              _count(tries), _finite(created, due_at), due_at,
                              detail if type(detail) is str else "")
        except (TypeError, ValueError) as exc:
            with self._skip_lock:
                fresh = row[0] not in self._skipped
                self._skipped.add(row[0])
            if fresh:
                logger.error("notification outbox %s: skipping damaged row %s (%s: %s)",
                             self.path, row[0], type(exc).__name__, exc)
            return None

    def _fail_damaged(self, ids: set[int]) -> None:
        """Mark damaged rows failed, so they leave the queue (kept, for inspection)."""
        try:
            with self._transaction():
                self._db.executemany(
                    "UPDATE notify_outbox SET state = ?, last_detail = ? WHERE id = ?",
                    [(FAILED, "stored row is damaged", row_id) for row_id in sorted(ids)])
        except sqlite3.Error as exc:  # skipped all the same; marked on a later read
            logger.debug("notification outbox %s: cannot mark damaged rows: %s",
                         self.path, exc)

    @property
    def skipped_rows(self) -> int:
        """Damaged rows skipped (and marked failed) since the outbox was opened."""
        return len(self._skipped)

    def pending_count(self, destination: str | None = None) -> int:
        """How many rows wait for delivery (for one destination, or for all)."""
        query = "SELECT COUNT(*) FROM notify_outbox WHERE state = ?"
        params: tuple[str, ...] = (PENDING,)
        if destination is not None:
            query += " AND destination = ?"
            params = (PENDING, destination)
        with self._lock:
            return int(self._db.execute(query, params).fetchone()[0])

    def pending_by_destination(self) -> dict[str, int]:
        """How many rows wait for delivery, per destination (undecodable names as
        ``Undecodable`` text)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT destination, COUNT(*) FROM notify_outbox WHERE state = ? "
                "GROUP BY destination", (PENDING,)).fetchall()
        return {str(destination): int(count) for destination, count in rows}

    def items(self, state: str | None = None) -> list[OutboxItem]:
        """Every row (or those in one state), oldest first."""
        query = f"SELECT {_ITEM_COLUMNS} {_ITEMS_FROM}"
        params: tuple[str, ...] = ()
        if state is not None:
            query += " WHERE o.state = ?"
            params = (state,)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY o.id", params).fetchall()
        return [item for item in map(self._item, rows) if item is not None]

    def settle(
        self,
        items: Iterable[OutboxItem],
        result: DeliveryResult,
        now: float,
        *,
        state: str,
        next_attempt_at: float | None = None,
        detail: str | None = None,
    ) -> None:
        """Record one attempt on each row and move it to ``state`` (pending with a new
        ``next_attempt_at``, delivered or failed), in one transaction."""
        text = detail if detail is not None else result.detail
        due = next_attempt_at if next_attempt_at is not None else now
        rows = list(items)
        with self._transaction():
            self._db.executemany(
                "UPDATE notify_outbox SET state = ?, attempts = ?, next_attempt_at = ?, "
                "updated_at = ?, last_detail = ? WHERE id = ?",
                [(state, item.attempts + 1, due, now, text, item.id) for item in rows],
            )
            self._db.executemany(
                "INSERT INTO notify_attempts (outbox_id, alert_id, channel, destination, "
                "at, attempt, outcome, detail, status_code) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(item.id, item.alert_id, item.channel, item.destination, now,
                  item.attempts + 1, result.outcome.value, text, result.status_code)
                 for item in rows],
            )

    def transaction(self) -> AbstractContextManager[None]:
        """One write transaction for several calls (each joins it), e.g. the settles of
        every destination that finished at about the same time."""
        return self._transaction()

    def record_attempt(
        self, alert_id: str, channel: str, destination: str, result: DeliveryResult, now: float
    ) -> None:
        """Record an attempt that has no outbox row (a channel that is not configured)."""
        with self._lock:
            self._insert_attempt(None, alert_id, channel, destination, now, 0, result,
                                 result.detail)

    def _insert_attempt(
        self, outbox_id: int | None, alert_id: str, channel: str, destination: str,
        now: float, attempt: int, result: DeliveryResult, detail: str,
    ) -> None:
        self._db.execute(
            "INSERT INTO notify_attempts (outbox_id, alert_id, channel, destination, at, "
            "attempt, outcome, detail, status_code) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (outbox_id, alert_id, channel, destination, now, attempt, result.outcome.value,
             detail, result.status_code),
        )

    def attempts(self, alert_id: str | None = None) -> list[AttemptRecord]:
        """Every recorded attempt (for one alert, or all), oldest first."""
        query = (
            "SELECT outbox_id, alert_id, channel, destination, at, attempt, outcome, detail, "
            "status_code FROM notify_attempts"
        )
        params: tuple[str, ...] = ()
        if alert_id is not None:
            query += " WHERE alert_id = ?"
            params = (alert_id,)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY id", params).fetchall()
        return [AttemptRecord(*row) for row in rows]

    def prune(self, before: float) -> int:
        """Delete delivered and failed rows last touched before ``before`` (epoch s),
        their attempts and unreferenced messages; return how many rows went. Pending
        rows are never pruned."""
        with self._transaction():
            removed = self._db.execute(
                "DELETE FROM notify_outbox WHERE state != ? AND updated_at < ?",
                (PENDING, before),
            ).rowcount
            self._db.execute("DELETE FROM notify_attempts WHERE at < ?", (before,))
            self._db.execute(
                "DELETE FROM notify_messages WHERE notification_id NOT IN "
                "(SELECT notification_id FROM notify_outbox)"
            )
        return int(removed)

    # ----- alerts a destination must keep re-sending (Alertmanager) -----

    def active_put(self, destination: str, fingerprint: str, payload: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO notify_active (destination, fingerprint, payload) "
                "VALUES (?, ?, ?)",
                (destination, fingerprint, payload),
            )

    def active_delete(self, destination: str, fingerprint: str) -> None:
        with self._lock:
            self._db.execute(
                "DELETE FROM notify_active WHERE destination = ? AND fingerprint = ?",
                (destination, fingerprint),
            )

    def active(self, destination: str) -> list[str]:
        """Payloads of the alerts still firing at ``destination``."""
        with self._lock:
            rows = self._db.execute(
                "SELECT payload FROM notify_active WHERE destination = ? ORDER BY fingerprint",
                (destination,),
            ).fetchall()
        return [str(row[0]) for row in rows]
