"""SQLite persistence of alert instances, their events and silences.

One file, WAL journal, one connection guarded by a lock (the evaluator thread, the event
loop and the notification dispatcher all write through it). The schema version is kept
in ``PRAGMA user_version``. Other modules may keep their own tables in the same file
(the notification outbox does): use :meth:`AlertStore.connection` for that.

A file that is not a readable SQLite database, or whose alert tables have other columns
(a foreign schema), is moved aside (``<name>.corrupt-<time>``: never over an earlier
one, owner-only, finished by the next start-up if a kill cut it short) with one loud
log line and a fresh store is created, so the monitor always starts. A location that cannot be
written (read-only directory or file, or a full disk at start-up: the file is then left
as it was), or that is not a regular file (``/dev/null``, a pipe, a directory; such a
path is left as it is), falls back to an in-memory store with a warning naming the file.
Rows that cannot be decoded are skipped and counted (``skipped_rows``).

One file serves one process: the store holds an exclusive lock on ``<name>.lock`` while
open, and a second process opening the same file gets ``StoreInUseError`` naming the
holder (two processes delivering one outbox would notify twice). A child forked from the
process that opened it never uses the parent's connections (SQLite forbids it; the
child would write into the parent's file, or corrupt it when the fork came amid a
transaction): it goes on with a fresh store IN MEMORY, with one warning naming the
file (see :meth:`AlertStore.leave_parent`).

Writes inside :meth:`AlertStore.transaction` can be joined by *commit hooks* (the
notification outbox adds its rows to the same transaction, so an alert state is never
committed without its notifications).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from otel_botmon import _fork
from otel_botmon.alerting.model import Alert, AlertEvent, AlertEventKind, AlertState, Silence
from otel_botmon.alerting.store_file import (
    check_regular,
    drop_kept_wal,
    finish_move_aside,
    is_corruption,
    is_full,
    is_unwritable,
    keep_wal,
    lock_file,
    make_private,
    move_aside,
    rollback_quietly,
    unlock_file,
)
from otel_botmon.alerting.store_writer import WriteBehind

logger = logging.getLogger("otel_botmon.alerting.store")

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    id TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    rule_name TEXT NOT NULL,
    state TEXT NOT NULL,
    started_at REAL NOT NULL,
    resolved_at REAL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_state ON alerts(state);
CREATE INDEX IF NOT EXISTS alerts_fingerprint ON alerts(fingerprint, resolved_at);
CREATE INDEX IF NOT EXISTS alerts_started ON alerts(started_at);
CREATE TABLE IF NOT EXISTS alert_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    at REAL NOT NULL,
    notify INTEGER NOT NULL DEFAULT 1,
    suppressed TEXT,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alert_events_alert ON alert_events(alert_id, id);
CREATE TABLE IF NOT EXISTS silences (
    id TEXT PRIMARY KEY,
    ends_at REAL NOT NULL,
    data TEXT NOT NULL
);
"""


# The columns each of our tables must have; a table of that name without them is a
# foreign schema (another program's file, or a hand-edited one).
_COLUMNS = {
    "alerts": {"id", "fingerprint", "rule_name", "state", "started_at", "resolved_at", "data"},
    "alert_events": {"id", "alert_id", "kind", "at", "notify", "suppressed", "detail"},
    "silences": {"id", "ends_at", "data"},
    "evaluation_marks": {"evaluator", "at"},
}

# Made on the first mark, not at open: opening an existing store writes nothing, so a
# restart never waits for (or fails on) another holder of the write lock.
_MARKS_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS evaluation_marks (evaluator TEXT PRIMARY KEY, at REAL NOT NULL)"
)


def _is_corruption(exc: sqlite3.DatabaseError) -> bool:
    if not isinstance(exc, sqlite3.OperationalError):
        return True  # "file is not a database", "database disk image is malformed", quick_check
    text = str(exc).lower()
    return "malformed" in text or "not a database" in text


class Undecodable(str):
    """A TEXT value read from the file that was not UTF-8 (a byte flipped on disk), with
    the bad bytes replaced by U+FFFD. A reader that must not use such a value as it is
    (the outbox: a notification id goes into a request header) treats the row as
    damaged."""

    __slots__ = ()


def _text(raw: bytes) -> str:
    """The connections' text factory. The default raises OperationalError ("Could not
    decode to UTF-8") for the whole query, so one byte flipped on disk in one row stopped
    the monitor's start (the active alerts' query) or a destination's queue (its head
    row is read again on every try); with this, the row is skipped as unreadable when it
    no longer parses, and kept when it does."""
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return Undecodable(raw.decode(errors="replace"))


def _integrity_problems(conn: sqlite3.Connection) -> list[str]:
    """What ``PRAGMA integrity_check`` finds (at most 20 lines), [] when the file is ok."""
    rows = [str(row[0]) for row in conn.execute("PRAGMA integrity_check(20)")]
    return [] if rows == ["ok"] else rows or ["no answer"]


def _is_index_problem(problem: str) -> bool:
    """An index entry missing, extra or out of step with its table row: what REINDEX
    rebuilds from the table. ("non-unique entry in index" is not: two rows then break a
    UNIQUE constraint, and REINDEX fails on them.)"""
    return (" missing from index " in problem
            or problem.startswith("wrong # of entries in index "))


class ForeignSchemaError(sqlite3.DatabaseError):
    """The file is a SQLite database whose alert tables are not ours."""


class CommitHook(Protocol):
    """Joins :meth:`AlertStore.transaction`: ``write`` runs inside the transaction (on
    the store's connection, before COMMIT) with the events saved in it and their alerts;
    ``done`` runs after it, with whether it committed."""

    def write(self, conn: sqlite3.Connection, saved: list[tuple[Alert, AlertEvent]]) -> None:
        ...

    def done(self, saved: list[tuple[Alert, AlertEvent]], committed: bool) -> None: ...


class StoreVersionError(RuntimeError):
    """The file was written by a newer otel_botmon (schema version above ours)."""


class AlertStore:
    """Alerts, events and silences in one SQLite file (``":memory:"`` for tests).

    Every method is thread-safe. ``sqlite3.Error`` from a full or read-only disk is
    raised to the caller (the evaluator reports it as an internal error and goes on).
    """

    def __init__(
        self, path: str | os.PathLike[str] = ":memory:", *, timeout_s: float = 5.0,
    ) -> None:
        self.path = str(path)
        self.timeout_s = timeout_s
        """How long a statement waits for another process's lock before failing."""
        self._lock = threading.RLock()
        self._hooks: list[CommitHook] = []
        self._saved: list[AlertEvent] = []  # events saved in the open transaction
        self._saved_alerts: dict[str, Alert] = {}
        self.moved_aside: Path | None = None
        """Where a corrupt file was moved on open, else None."""
        self._skipped: set[tuple[str, str]] = set()
        self._skip_lock = threading.Lock()
        self.fallback_reason: str | None = None
        """Why the store is in memory although a file was asked for, else None."""
        self._lock_fd: str | None = None
        # Reads of a file store use a connection of their own: in WAL mode they never
        # wait for a writer, so a read on the event loop does not stall behind a write
        # that waits for another process's lock (the writer holds ``_lock`` meanwhile).
        self._reader: sqlite3.Connection | None = None
        self._read_lock = threading.RLock()
        self._writer: int | None = None  # thread inside transaction()
        self._behind = WriteBehind(self.path)
        self._pid = os.getpid()
        self._closed = False
        try:
            self._conn = self._open_file()
        except (sqlite3.OperationalError, OSError) as exc:
            full = is_full(exc)
            if self.path == ":memory:" or not (full or is_unwritable(exc)):
                raise  # locked: another process works on it, not ours to replace
            logger.warning(
                "alert store %s cannot be written (%s); keeping alerts and the "
                "notification outbox IN MEMORY for this run (they will not survive a "
                "restart). %s", self.path, exc,
                "Free disk space and restart: the file is left as it was." if full else
                "Fix the permissions or set alert_store_path.")
            self.fallback_reason = f"{type(exc).__name__}: {exc}"
            unlock_file(self._lock_fd)
            self._lock_fd = None
            self.path = ":memory:"
            self._conn = self._open()
        if self.path != ":memory:":
            self._reader = sqlite3.connect(
                self.path, timeout=self.timeout_s, check_same_thread=False,
                isolation_level=None)
            self._reader.text_factory = _text
            self._reader.execute("PRAGMA query_only=1")
        _fork.register(self)

    def _fork_locks(self) -> tuple[threading.RLock, threading.RLock]:
        """The locks every SQLite call of this store (and of the outbox sharing it)
        runs under: a fork waits for them (otel_botmon._fork), so no thread is inside
        SQLite when the child is made."""
        return self._lock, self._read_lock

    def _after_fork_in_child(self) -> None:
        self.leave_parent()

    def leave_parent(self) -> bool:
        """In a process forked from the one that opened this store: let go of the
        parent's connections and go on with an empty store in memory; False (nothing
        done) in the process that opened it. Called by the fork hook; idempotent.

        The parent's connections are abandoned, never used nor closed through SQLite
        (see :func:`otel_botmon._fork.abandon`); its file, write-ahead log and lock stay
        the parent's. The writes the parent had queued are the parent's to make. What
        the child stores from now on is lost when it exits, and the log says so once.
        """
        pid = os.getpid()
        if pid == self._pid:
            return False
        parent, self._pid = self._pid, pid
        if self._closed:  # nothing of the parent's left to let go of
            return False
        _fork.abandon(self._conn, self._reader)
        self._lock = threading.RLock()
        self._read_lock = threading.RLock()
        self._skip_lock = threading.Lock()
        self._reader = None
        self._writer = None
        self._saved, self._saved_alerts = [], {}
        self._behind.after_fork_in_child(parent)
        self._lock_fd = None  # the child's copy of the descriptor is closed at the fork
        if self.path != ":memory:":
            logger.warning(
                "alert store %s belongs to the parent process (pid %d): this forked "
                "process (pid %d) keeps its alerts, silences and notification outbox IN "
                "MEMORY; they are NOT persisted and are lost when it exits. Give the "
                "child a MonitoringConfig with its own alert_store_path to keep them.",
                self.path, parent, pid)
            self.fallback_reason = (f"forked from pid {parent}: the file is the parent "
                                    "process's")
            self.path = ":memory:"
            self._behind.where = self.path
        self._conn = self._open()
        return True

    @property
    def in_memory(self) -> bool:
        return self.path == ":memory:"

    def _open_file(self) -> sqlite3.Connection:
        if self.path != ":memory:":
            check_regular(self.path)  # before the lock file is made beside it
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._lock_fd = lock_file(self.path)
        try:
            if self.path != ":memory:":
                finished = finish_move_aside(self.path)  # a move a kill cut short
                if finished is not None:
                    self.moved_aside = finished
                    logger.error("ALERT STORE CORRUPT: finished moving %s to %s (a process "
                                 "was killed while moving it aside)", self.path, finished)
                keep_wal(self.path)
            try:
                return self._open()
            except sqlite3.DatabaseError as exc:
                if self.path == ":memory:" or not is_corruption(exc):
                    raise
                self.moved_aside = self._move_aside(exc)
                return self._open()
            finally:
                if self.path != ":memory:":
                    drop_kept_wal(self.path)
        except BaseException:
            unlock_file(self._lock_fd)
            self._lock_fd = None
            raise

    # --- opening -------------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        if self.path != ":memory:":
            with contextlib.suppress(OSError):  # read-only places fall back below
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            make_private(self.path)
        conn = sqlite3.connect(
            self.path, timeout=self.timeout_s, check_same_thread=False, isolation_level=None,
        )
        conn.text_factory = _text
        try:
            # integrity_check reads every page: a truncated or garbage file fails here
            # rather than on the first write hours later. quick_check is not enough: it
            # does not see an index that no longer matches its table (a flipped byte in
            # an index page), with which the outbox's queue query silently skips pending
            # rows for good. A damage only in indexes is repaired (REINDEX: the rows are
            # all in the tables); any other is a corrupt file.
            problems = _integrity_problems(conn)
            if problems and self.path != ":memory:" and all(map(_is_index_problem, problems)):
                logger.error(
                    "ALERT STORE INDEX DAMAGED: %s has indexes that do not match their "
                    "tables (%s); rebuilding the indexes (REINDEX), no row is lost",
                    self.path, "; ".join(problems[:3]))
                conn.execute("REINDEX")
                problems = _integrity_problems(conn)
            if problems:
                raise sqlite3.DatabaseError(f"integrity_check: {problems[0]}")
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                raise StoreVersionError(
                    f"alert store {self.path} has schema version {version}, newer than this "
                    f"otel_botmon's {SCHEMA_VERSION}; upgrade otel_botmon or use another file"
                )
            self._check_columns(conn)
            if self.path != ":memory:":
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(_SCHEMA)  # no write lock when the tables exist
            if version != SCHEMA_VERSION:
                # the one write of an open: not needed again, so a restart does not
                # wait for (or fail on) a backup tool holding the write lock
                conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except UnicodeDecodeError as exc:
            # a schema whose text is not UTF-8 (a byte flipped in sqlite_master): SQLite's
            # error message quotes it and Python fails to decode that message, so the
            # damage surfaced as UnicodeDecodeError and the monitor did not start
            conn.close()
            raise sqlite3.DatabaseError(f"unreadable text in the schema: {exc}") from exc
        except BaseException:
            conn.close()
            raise
        return conn

    def _check_columns(self, conn: sqlite3.Connection) -> None:
        for table, wanted in _COLUMNS.items():
            found = {str(row[1]) for row in conn.execute(f"PRAGMA table_info({table})")}
            if found and not wanted <= found:
                raise ForeignSchemaError(
                    f"table {table} has columns {sorted(found)}, not an otel_botmon "
                    "alert store")

    def _move_aside(self, exc: BaseException) -> Path:
        target = move_aside(self.path)
        logger.error(
            "ALERT STORE CORRUPT: %s is not a readable otel_botmon alert store (%s); moved "
            "it to %s and started an EMPTY alert store. Alert history before now is in "
            "that file.", self.path, exc, target,
        )
        return target

    # --- shared access --------------------------------------------------------------------

    def share(self) -> tuple[sqlite3.Connection, threading.RLock]:
        """The connection and its (re-entrant) lock, for a module that keeps its tables
        in this file and must write inside :meth:`transaction` (the outbox)."""
        return self._conn, self._lock

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """The store's connection, held under its lock for the ``with`` block.

        Autocommit mode: wrap several statements in ``BEGIN``/``COMMIT`` yourself when
        they must be atomic. Other modules create their own tables through this.
        """
        with self._lock:
            yield self._conn

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """The connection for a read: the reader, unless this thread is inside a
        transaction (it must see its own uncommitted rows) or the store is in memory."""
        reader = self._reader
        if reader is None or self._writer == threading.get_ident():
            with self._lock:
                yield self._conn
            return
        with self._read_lock:
            yield reader

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes into one atomic transaction (one cycle's events and alert states:
        after a crash either all of them are stored or none). Re-entrant."""
        with self._lock:
            if self._conn.in_transaction:
                yield
                return
            self._saved, self._saved_alerts = [], {}
            self._conn.execute("BEGIN IMMEDIATE")
            self._writer = threading.get_ident()
            saved: list[tuple[Alert, AlertEvent]] = []
            committed = False
            try:
                yield
                saved = self._saved_pairs()
                for hook in self._hooks:
                    hook.write(self._conn, saved)
                self._conn.execute("COMMIT")
                committed = True
            finally:
                self._writer = None
                if not committed:
                    rollback_quietly(self._conn)
                self._saved, self._saved_alerts = [], {}
                for hook in self._hooks:
                    try:
                        hook.done(saved, committed)
                    except Exception as exc:  # a hook's bookkeeping must not undo a commit
                        logger.error("alert store commit hook failed: %s", exc)

    def _saved_pairs(self) -> list[tuple[Alert, AlertEvent]]:
        """The events saved in this transaction with their alerts (as saved, or as
        stored when the alert itself did not change)."""
        pairs = []
        for event in self._saved:
            alert = self._saved_alerts.get(event.alert_id)
            if alert is None:
                alert = self.get_alert(event.alert_id)
            if alert is not None:
                pairs.append((alert, event))
        return pairs

    def add_commit_hook(self, hook: CommitHook) -> None:
        """Run ``hook`` in every :meth:`transaction` (see :class:`CommitHook`)."""
        with self._lock:
            self._hooks.append(hook)

    def remove_commit_hook(self, hook: CommitHook) -> None:
        with self._lock:
            if hook in self._hooks:
                self._hooks.remove(hook)

    def write_behind(self, write: Callable[[], object]) -> Future[None]:
        """Run ``write`` (a committed store write) without making the caller's thread
        wait: on a thread of the store's own, in order, retried until it works (see
        :mod:`~otel_botmon.alerting.store_writer`). Returns a future that resolves once
        it is written: a caller that must survive a crash awaits it. A store in memory
        runs it at once (no disk, no other process to wait for)."""
        if not self.in_memory:
            return self._behind.submit(write)
        done: Future[None] = Future()
        try:
            write()
        except Exception as exc:
            done.set_exception(exc)
        else:
            done.set_result(None)
        return done

    def settle_writes(self, timeout: float | None = None) -> bool:
        """Wait until every :meth:`write_behind` write so far is stored; False on timeout."""
        return self._behind.settle(timeout)

    @property
    def queued_writes(self) -> int:
        """Writes handed to :meth:`write_behind` and not stored yet."""
        return len(self._behind)

    def close(self) -> None:
        """Close the file; queued writes get up to ``timeout_s`` (twice) to be stored."""
        self._behind.close(2 * self.timeout_s)
        self._closed = True
        with self._read_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None
        with self._lock:
            self._conn.close()
            unlock_file(self._lock_fd)
            self._lock_fd = None

    def _decode_alert(self, row: tuple[Any, ...]) -> Alert | None:
        try:
            return Alert.from_dict(json.loads(row[0]))
        except (ValueError, KeyError, TypeError) as exc:
            self._skip(("alert", str(row[1])), "alert", row[1], exc)
            return None

    def _skip(self, key: tuple[str, str], what: str, row_id: object, exc: Exception) -> None:
        """Count and log an unreadable row once (it is read again by later queries)."""
        with self._skip_lock:
            if key in self._skipped:
                return
            self._skipped.add(key)
        logger.error("alert store %s: skipping unreadable %s row %s (%s: %s)",
                     self.path, what, row_id, type(exc).__name__, exc)

    @property
    def skipped_rows(self) -> int:
        """Rows that could not be decoded (skipped, logged once each)."""
        return len(self._skipped)

    # --- alerts ---------------------------------------------------------------------------

    def save_alert(self, alert: Alert) -> None:
        """Insert or update one alert (without its events)."""
        data = json.dumps(alert.to_dict(with_events=False))
        with self._lock:
            if self._conn.in_transaction and self._hooks:
                self._saved_alerts[alert.id] = alert
            self._conn.execute(
                "INSERT INTO alerts(id, fingerprint, rule_name, state, started_at, resolved_at,"
                " data) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET"
                " state=excluded.state, resolved_at=excluded.resolved_at, data=excluded.data",
                (alert.id, alert.fingerprint, alert.rule_name, alert.state.value,
                 alert.started_at, alert.resolved_at, data),
            )

    def delete_alert(self, alert_id: str) -> None:
        """Forget an alert that never fired (a pending one whose condition cleared)."""
        with self.transaction():
            self._conn.execute("DELETE FROM alert_events WHERE alert_id=?", (alert_id,))
            self._conn.execute("DELETE FROM alerts WHERE id=?", (alert_id,))

    def load_active(self) -> list[Alert]:
        """Pending and firing alerts with their events, oldest first."""
        with self._reading() as conn:
            rows = conn.execute(
                "SELECT data, id FROM alerts WHERE state IN (?, ?) ORDER BY started_at",
                (AlertState.PENDING.value, AlertState.FIRING.value),
            ).fetchall()
            alerts = [a for a in map(self._decode_alert, rows) if a is not None]
            for alert in alerts:
                alert.events = self.events(alert.id)
        return alerts

    def get_alert(self, alert_id: str) -> Alert | None:
        """One alert with its events, or None."""
        with self._reading() as conn:
            row = conn.execute(
                "SELECT data, id FROM alerts WHERE id=?", (alert_id,)).fetchone()
            alert = None if row is None else self._decode_alert(row)
            if alert is None:
                return None
            alert.events = self.events(alert_id)
        return alert

    def history(self, limit: int = 100, offset: int = 0) -> list[Alert]:
        """Alerts of every state, newest first (without events, for speed)."""
        with self._reading() as conn:
            rows = conn.execute(
                "SELECT data, id FROM alerts ORDER BY started_at DESC, rowid DESC"
                " LIMIT ? OFFSET ?",
                (max(0, int(limit)), max(0, int(offset))),
            ).fetchall()
        return [a for a in map(self._decode_alert, rows) if a is not None]

    def last_resolved(self) -> dict[str, float]:
        """Fingerprint -> when its latest instance resolved (for cooldowns). A row whose
        ``resolved_at`` is not a number (SQLite keeps text in a REAL column) is skipped
        and counted; it would otherwise hide the good rows of its fingerprint (text sorts
        above numbers) and stop the start-up."""
        with self._reading() as conn:
            rows = conn.execute(
                "SELECT fingerprint, MAX(resolved_at) FROM alerts"
                " WHERE typeof(resolved_at) IN ('real', 'integer') GROUP BY fingerprint"
            ).fetchall()
            bad = conn.execute(
                "SELECT id, typeof(resolved_at) FROM alerts"
                " WHERE typeof(resolved_at) NOT IN ('real', 'integer', 'null')"
            ).fetchall()
        for alert_id, kind in bad:
            self._skip(("alert", str(alert_id)), "alert", alert_id,
                       ValueError(f"resolved_at is {kind}, not a number"))
        return {str(fp): float(at) for fp, at in rows}

    def prune_resolved(self, before: float) -> int:
        """Delete alerts resolved before ``before`` (epoch s) and their events; returns how
        many alerts went. Active alerts are never pruned."""
        with self.transaction():
            self._conn.execute(
                "DELETE FROM alert_events WHERE alert_id IN (SELECT id FROM alerts"
                " WHERE resolved_at IS NOT NULL AND resolved_at < ?)", (before,),
            )
            cursor = self._conn.execute(
                "DELETE FROM alerts WHERE resolved_at IS NOT NULL AND resolved_at < ?",
                (before,),
            )
        return int(cursor.rowcount)

    # --- events ---------------------------------------------------------------------------

    def add_event(
        self, alert_id: str, kind: AlertEventKind | str, detail: Mapping[str, Any] | None = None,
        *, at: float | None = None, notify: bool = True, suppressed: str | None = None,
    ) -> int:
        """Append an event to an alert's log and return its id.

        The notification dispatcher calls this with kind ``"notified"`` and a detail such
        as ``{"channel": "slack", "ok": False, "error": "429"}`` for every attempt.
        """
        kind_value = AlertEventKind(kind).value
        stamp = time.time() if at is None else float(at)
        payload = json.dumps(dict(detail or {}), default=str)
        with self._lock:
            cursor = self._conn.execute(
                "INSERT INTO alert_events(alert_id, kind, at, notify, suppressed, detail)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (alert_id, kind_value, stamp, int(notify), suppressed, payload),
            )
            return int(cursor.lastrowid or 0)

    def save_event(self, event: AlertEvent, *, hooks: bool = True) -> None:
        """Store an evaluator event and set its ``id``. ``hooks=False``: the commit hooks
        do not see it (an event stored late, after it was dispatched)."""
        with self._lock:
            event.id = self.add_event(
                event.alert_id, event.kind, event.detail, at=event.at, notify=event.notify,
                suppressed=event.suppressed,
            )
            if hooks and self._conn.in_transaction and self._hooks:
                self._saved.append(event)

    def events(self, alert_id: str) -> list[AlertEvent]:
        """An alert's events, oldest first."""
        with self._reading() as conn:
            rows = conn.execute(
                "SELECT id, kind, at, notify, suppressed, detail FROM alert_events"
                " WHERE alert_id=? ORDER BY id",
                (alert_id,),
            ).fetchall()
        events = []
        for event_id, kind, at, notify, suppressed, detail in rows:
            try:
                events.append(AlertEvent(
                    alert_id=alert_id, kind=AlertEventKind(kind), at=float(at),
                    detail=dict(json.loads(detail)), notify=bool(notify),
                    suppressed=suppressed, id=int(event_id),
                ))
            except (ValueError, TypeError) as exc:  # a damaged row: skip it, keep the rest
                self._skip(("event", str(event_id)), f"event (alert {alert_id})", event_id,
                           exc)
        return events

    # --- evaluation marks -----------------------------------------------------------------

    def save_evaluation_mark(self, at: float, evaluator: str = "default") -> None:
        """Record that ``evaluator`` ran its rules at ``at`` (epoch s): a restart tells
        from it how long evaluation stopped (see :meth:`last_evaluation_mark`)."""
        with self._lock:
            self._conn.execute(_MARKS_SCHEMA)
            self._conn.execute(
                "INSERT INTO evaluation_marks(evaluator, at) VALUES (?, ?)"
                " ON CONFLICT(evaluator) DO UPDATE SET at=excluded.at",
                (str(evaluator), float(at)))

    def last_evaluation_mark(self, evaluator: str = "default") -> float | None:
        """When ``evaluator`` last recorded an evaluation, or None (never, an older store,
        or a row that is not a number)."""
        with self._reading() as conn:
            try:
                row = conn.execute(
                    "SELECT at FROM evaluation_marks WHERE evaluator=?"
                    " AND typeof(at) IN ('real', 'integer')", (str(evaluator),)).fetchone()
            except sqlite3.OperationalError as exc:
                if "no such table" in str(exc):
                    return None
                raise
        if row is None or not math.isfinite(float(row[0])):
            return None
        return float(row[0])

    # --- silences -------------------------------------------------------------------------

    def save_silence(self, silence: Silence) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO silences(id, ends_at, data) VALUES (?, ?, ?)",
                (silence.id, silence.ends_at, json.dumps(silence.to_dict())),
            )

    def delete_silence(self, silence_id: str) -> None:
        with self._lock:
            self._conn.execute("DELETE FROM silences WHERE id=?", (silence_id,))

    def load_silences(self, now: float | None = None) -> list[Silence]:
        """Silences not yet expired at ``now`` (all of them when ``now`` is None)."""
        with self._reading() as conn:
            rows = conn.execute(
                "SELECT data, id FROM silences WHERE ends_at > ?",
                (float("-inf") if now is None else now,),
            ).fetchall()
        silences = []
        for data, silence_id in rows:
            try:
                silences.append(Silence.from_dict(json.loads(data)))
            except (ValueError, KeyError, TypeError) as exc:  # skip it, keep the rest
                self._skip(("silence", str(silence_id)), "silence", silence_id, exc)
        return silences
