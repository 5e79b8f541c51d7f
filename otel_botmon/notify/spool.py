"""What keeps a notification alive when the outbox cannot take it right now.

- :class:`Spool`: notifications whose outbox write failed (disk full, the file locked by
  another process past the busy timeout, an I/O error) wait here, in memory and in
  order, and are written again until it works. The real SQLite error is logged once
  when the trouble starts and once when it ends; nothing is dropped below the bound
  (``limit``), and what the bound does drop is counted and logged.
- :class:`OutboxCommitHook`: joins the alert store's transaction, so the outbox rows of
  an alert event commit together with the alert's state (one file), or before it (an
  outbox file of its own). A SIGKILL at any instant leaves either both or neither.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

logger = logging.getLogger("otel_botmon.notify")

Writer = Callable[[Sequence[Any]], object]


class Spool:
    """A bounded, thread-safe FIFO of unwritten notifications."""

    def __init__(self, where: str, limit: int = 10_000) -> None:
        self.where = where
        self.limit = limit
        self._items: deque[Any] = deque()
        self._lock = threading.Lock()
        self._failing: str | None = None
        self.dropped = 0
        """Notifications dropped because more than ``limit`` waited (logged)."""

    def __len__(self) -> int:
        return len(self._items)

    def keep(self, notifications: Sequence[Any], exc: BaseException) -> None:
        """Hold ``notifications`` after a failed write and report ``exc`` (the first
        failure of a run of failures is logged with the SQLite error itself)."""
        with self._lock:
            self._items.extend(notifications)
            overflow = len(self._items) - self.limit
            for _ in range(max(0, overflow)):
                self._items.popleft()
            if overflow > 0:
                self.dropped += overflow
            waiting = len(self._items)
            first = self._failing is None
            self._failing = f"{type(exc).__name__}: {exc}"
        if first:
            logger.error(
                "notification outbox %s cannot be written (%s: %s); keeping %d "
                "notification(s) in memory and retrying until it can",
                self.where, type(exc).__name__, exc, waiting)
            from otel_botmon._internal import report_internal_error

            report_internal_error("notify.outbox", exc)
        if overflow > 0:
            logger.error("notification outbox %s: %d notification(s) dropped, more than %d "
                         "waited in memory", self.where, overflow, self.limit)

    def flush(self, write: Writer) -> bool:
        """Write what waits (oldest first, one transaction) with ``write``; True when
        nothing waits any more. A failure keeps everything and returns False."""
        with self._lock:
            batch = list(self._items)
        if not batch:
            return True
        try:
            write(batch)
        except sqlite3.Error as exc:
            with self._lock:
                self._failing = f"{type(exc).__name__}: {exc}"
            return False
        with self._lock:
            for _ in range(min(len(batch), len(self._items))):
                self._items.popleft()
            recovered = not self._items and self._failing is not None
            if recovered:
                self._failing = None
        if recovered:
            logger.warning("notification outbox %s writable again; %d notification(s) "
                           "kept in memory are queued", self.where, len(batch))
        return not self._items

    @property
    def failing(self) -> str | None:
        """The last write error while notifications wait, else None."""
        return self._failing


def _key(event: Any) -> tuple[str, str] | None:
    key = getattr(event, "key", None)  # stable from creation (the store's id comes later)
    if isinstance(key, str) and key:
        return (str(getattr(event, "alert_id", "")), key)
    event_id = getattr(event, "id", None)
    return None if event_id is None else (str(getattr(event, "alert_id", "")), str(event_id))


class OutboxCommitHook:
    """An ``AlertStore`` commit hook that queues an alert event's notifications in the
    same transaction (``write``), then remembers the events it queued so the listener
    path does not queue them twice (``done``)."""

    def __init__(
        self, notifiable: Callable[[Any], bool], write: Callable[[list[tuple[Any, Any]]], Any],
        committed: Callable[[Any], None],
    ) -> None:
        self._notifiable = notifiable
        self._write = write
        self._committed = committed
        self._queued: dict[tuple[str, str], None] = {}
        self._lock = threading.Lock()
        self._result: Any = None

    def write(self, conn: sqlite3.Connection, saved: list[tuple[Any, Any]]) -> None:
        del conn  # the outbox shares the store's connection (or has its own file)
        pairs = [(alert, event) for alert, event in saved if self._notifiable(event)]
        self._result = self._write(pairs) if pairs else None

    def done(self, saved: list[tuple[Any, Any]], committed: bool) -> None:
        result, self._result = self._result, None
        if not committed:
            return  # the listener path queues them (or keeps them in memory)
        with self._lock:
            for _, event in saved:
                key = _key(event)
                if key is not None and self._notifiable(event):
                    self._queued[key] = None
            while len(self._queued) > 100_000:  # events never dispatched: forget the oldest
                self._queued.pop(next(iter(self._queued)))
        if result is not None:
            self._committed(result)

    def claim(self, event: Any) -> bool:
        """True (once) if ``event``'s notifications were queued with its alert."""
        key = _key(event)
        if key is None:
            return False
        with self._lock:
            return self._queued.pop(key, 0) is None
