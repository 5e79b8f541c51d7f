"""SQLite persistence of alert instances, their events and silences.

One file, WAL journal, one connection guarded by a lock (the evaluator thread, the event
loop and the notification dispatcher all write through it). The schema version is kept
in ``PRAGMA user_version``. Other modules may keep their own tables in the same file
(the notification outbox does): use :meth:`AlertStore.connection` for that.

A file that is not a readable SQLite database is moved aside (``<name>.corrupt-<time>``)
with a loud warning and a fresh store is created, so the monitor always starts.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from otel_botmon.alerting.model import Alert, AlertEvent, AlertEventKind, AlertState, Silence

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


def _make_private(path: str) -> None:
    """Create the store file owner-only (0600) before SQLite does (its WAL and shared-
    memory files copy the mode); tighten a file an older version left readable. Alert
    text is redacted, but the file is the bot's private state all the same."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
        if os.stat(path).st_mode & 0o077:
            os.chmod(path, 0o600)
    except OSError:  # read-only or foreign file: SQLite reports it with its own message
        pass


def _is_corruption(exc: sqlite3.DatabaseError) -> bool:
    if not isinstance(exc, sqlite3.OperationalError):
        return True  # "file is not a database", "database disk image is malformed", quick_check
    text = str(exc).lower()
    return "malformed" in text or "not a database" in text


def _decode_alert(row: tuple[Any, ...]) -> Alert | None:
    """One stored alert, or None (logged) when its row cannot be read: a damaged row must
    not keep the monitor from starting."""
    try:
        return Alert.from_dict(json.loads(row[0]))
    except (ValueError, KeyError, TypeError) as exc:
        logger.error("alert store: skipping an unreadable alert row (%s: %s)",
                     type(exc).__name__, exc)
        return None


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
        self.moved_aside: Path | None = None
        """Where a corrupt file was moved on open, else None."""
        try:
            self._conn = self._open()
        except sqlite3.DatabaseError as exc:
            if self.path == ":memory:" or not _is_corruption(exc):
                raise  # locked, read-only, no permission: not ours to move away
            self.moved_aside = self._move_aside(exc)
            self._conn = self._open()

    # --- opening -------------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            _make_private(self.path)
        conn = sqlite3.connect(
            self.path, timeout=self.timeout_s, check_same_thread=False, isolation_level=None,
        )
        try:
            # quick_check reads every page header: a truncated or garbage file fails here
            # rather than on the first write hours later.
            row = conn.execute("PRAGMA quick_check").fetchone()
            if row is None or row[0] != "ok":
                raise sqlite3.DatabaseError(f"quick_check: {row[0] if row else 'no answer'}")
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                raise StoreVersionError(
                    f"alert store {self.path} has schema version {version}, newer than this "
                    f"otel_botmon's {SCHEMA_VERSION}; upgrade otel_botmon or use another file"
                )
            if self.path != ":memory:":
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(_SCHEMA)
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except BaseException:
            conn.close()
            raise
        return conn

    def _move_aside(self, exc: BaseException) -> Path:
        target = Path(f"{self.path}.corrupt-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}")
        os.replace(self.path, target)
        for suffix in ("-wal", "-shm"):
            if os.path.exists(self.path + suffix):
                os.replace(self.path + suffix, str(target) + suffix)
        logger.error(
            "ALERT STORE CORRUPT: %s is not a readable SQLite database (%s); moved it to %s "
            "and started an EMPTY alert store. Alert history before now is in that file.",
            self.path, exc, target,
        )
        return target

    # --- shared access --------------------------------------------------------------------

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """The store's connection, held under its lock for the ``with`` block.

        Autocommit mode: wrap several statements in ``BEGIN``/``COMMIT`` yourself when
        they must be atomic. Other modules create their own tables through this.
        """
        with self._lock:
            yield self._conn

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes into one atomic transaction (one cycle's events and alert states:
        after a crash either all of them are stored or none). Re-entrant."""
        with self._lock:
            if self._conn.in_transaction:
                yield
                return
            self._conn.execute("BEGIN")
            try:
                yield
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # --- alerts ---------------------------------------------------------------------------

    def save_alert(self, alert: Alert) -> None:
        """Insert or update one alert (without its events)."""
        data = json.dumps(alert.to_dict(with_events=False))
        with self._lock:
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
        with self._lock:
            rows = self._conn.execute(
                "SELECT data FROM alerts WHERE state IN (?, ?) ORDER BY started_at",
                (AlertState.PENDING.value, AlertState.FIRING.value),
            ).fetchall()
            alerts = [a for a in map(_decode_alert, rows) if a is not None]
            for alert in alerts:
                alert.events = self.events(alert.id)
        return alerts

    def get_alert(self, alert_id: str) -> Alert | None:
        """One alert with its events, or None."""
        with self._lock:
            row = self._conn.execute("SELECT data FROM alerts WHERE id=?", (alert_id,)).fetchone()
            alert = None if row is None else _decode_alert(row)
            if alert is None:
                return None
            alert.events = self.events(alert_id)
        return alert

    def history(self, limit: int = 100, offset: int = 0) -> list[Alert]:
        """Alerts of every state, newest first (without events, for speed)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT data FROM alerts ORDER BY started_at DESC, rowid DESC LIMIT ? OFFSET ?",
                (max(0, int(limit)), max(0, int(offset))),
            ).fetchall()
        return [a for a in map(_decode_alert, rows) if a is not None]

    def last_resolved(self) -> dict[str, float]:
        """Fingerprint -> when its latest instance resolved (for cooldowns)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT fingerprint, MAX(resolved_at) FROM alerts WHERE resolved_at IS NOT NULL"
                " GROUP BY fingerprint"
            ).fetchall()
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

    def save_event(self, event: AlertEvent) -> None:
        """Store an evaluator event and set its ``id``."""
        event.id = self.add_event(
            event.alert_id, event.kind, event.detail, at=event.at, notify=event.notify,
            suppressed=event.suppressed,
        )

    def events(self, alert_id: str) -> list[AlertEvent]:
        """An alert's events, oldest first."""
        with self._lock:
            rows = self._conn.execute(
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
                logger.error("alert store: skipping unreadable event %s of alert %s (%s)",
                             event_id, alert_id, exc)
        return events

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
        with self._lock:
            rows = self._conn.execute(
                "SELECT data FROM silences WHERE ends_at > ?",
                (float("-inf") if now is None else now,),
            ).fetchall()
        return [Silence.from_dict(json.loads(row[0])) for row in rows]
