"""Store writes run off the caller's thread (silences added or removed from the bot's loop).

A :class:`WriteBehind` runs the writes handed to it on one thread of its own, in the order
they were handed over, so the caller's thread never waits on the disk or on another
process's SQLite lock; the caller gets a future that resolves once its write committed.
A write that fails with ``sqlite3.OperationalError`` (the file locked past the busy
timeout, a full disk, an I/O error) stays at the head of the queue and is
retried with a growing delay (0.05 s .. 5 s) until it works; it is never dropped while
the writer runs. The first failure of a run is logged with the SQLite error, and the
recovery once.

Durability: a write is on disk once its future resolved (a caller that must survive a
crash awaits it: ``await asyncio.wrap_future(future)`` on an event loop); before that a
crash loses it. A write dropped (past ``limit``, or still queued at ``close()``) fails its
future with ``RuntimeError``; one that can never work fails it with its exception.
``close()`` waits (bounded) for what is still queued and logs what it could not write.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future

logger = logging.getLogger("otel_botmon.alerting.store")

__all__ = ["WriteBehind"]

Write = Callable[[], object]


class WriteBehind:
    """An ordered queue of store writes, run on one daemon thread, each retried until it
    works. ``limit`` bounds the queue: past it the oldest writes are dropped, counted
    (``dropped``) and logged."""

    def __init__(self, where: str, *, limit: int = 10_000, max_delay: float = 5.0) -> None:
        self.where = where
        self.limit = limit
        self.max_delay = max_delay
        self.dropped = 0
        self._queue: deque[tuple[Write, Future[None]]] = deque()
        self._cond = threading.Condition()
        self._busy = False
        self._closing = False
        self._thread: threading.Thread | None = None
        self._failing: str | None = None

    def __len__(self) -> int:
        with self._cond:
            return len(self._queue) + int(self._busy)

    @property
    def failing(self) -> str | None:
        """The last error while a write waits to be retried, else None."""
        return self._failing

    def submit(self, write: Write) -> Future[None]:
        """Queue ``write`` (a callable doing one committed store write) and return at
        once a future that resolves when it has been written (see the module)."""
        future: Future[None] = Future()
        dropped: list[Future[None]] = []
        with self._cond:
            if self._closing:
                raise RuntimeError(f"alert store {self.where} is closed")
            self._queue.append((write, future))
            overflow = len(self._queue) - self.limit
            for _ in range(max(0, overflow)):
                dropped.append(self._queue.popleft()[1])
            if overflow > 0:
                self.dropped += overflow
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="botmon-store-writer", daemon=True)
                self._thread.start()
            self._cond.notify_all()
        if overflow > 0:
            logger.error("alert store %s: %d queued write(s) dropped, more than %d waited",
                         self.where, overflow, self.limit)
            _fail(dropped, f"alert store {self.where}: write dropped, more than "
                           f"{self.limit} waited")
        return future

    def settle(self, timeout: float | None = None) -> bool:
        """Wait until every write handed over so far is done; False on timeout."""
        if threading.current_thread() is self._thread:
            return not self._queue
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue and not self._busy, timeout)

    def close(self, timeout: float) -> None:
        """Stop taking writes, wait up to ``timeout`` s for the queued ones, stop the
        thread. What is still queued then is lost, and the log says how much."""
        done = self.settle(timeout)
        with self._cond:
            self._closing = True
            left = len(self._queue)
            lost = [future for _, future in self._queue]
            self._queue.clear()
            self._cond.notify_all()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        if not done and left:
            logger.error("alert store %s: %d write(s) not stored before closing (%s)",
                         self.where, left, self._failing)
        _fail(lost, f"alert store {self.where} closed before the write was stored")

    def after_fork_in_child(self, parent: int) -> None:
        """In a forked child: the writer thread is gone and what waits in the queue is
        the parent's to write (the parent still does). Forget it, failing its futures
        (an ``await`` of one in the child would otherwise never return); the next
        ``submit()`` starts a thread of the child's own."""
        self._cond = threading.Condition()
        lost = [future for _, future in self._queue]
        self._queue.clear()
        self._busy = False
        self._thread = None
        self._failing = None
        for future in lost:  # a thread of the parent may have held its lock at the fork
            future._condition = threading.Condition()
        _fail(lost, f"alert store {self.where}: write queued by the parent process (pid "
                    f"{parent}) before this process forked; the parent stores it")

    def _run(self) -> None:
        delay = 0.05
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._queue or self._closing)
                if self._closing:
                    return
                write, future = self._queue[0]
                self._busy = True
            failure: BaseException | None = None
            try:
                write()
            except sqlite3.OperationalError as exc:  # locked, full, I/O: retry, keep order
                self._note_failure(exc)
                with self._cond:
                    self._busy = False
                    self._cond.wait_for(lambda: self._closing, delay)
                delay = min(self.max_delay, delay * 2)
                continue
            except Exception as exc:  # a write that can never work: report, go on
                from otel_botmon._internal import report_internal_error

                report_internal_error("alerting.store", exc)
                failure = exc
            self._done(future)
            if failure is None:
                _resolve(future)
            else:
                _fail([future], failure)
            delay = 0.05

    def _done(self, future: Future[None]) -> None:
        recovered = self._failing is not None
        self._failing = None
        with self._cond:
            if self._queue and self._queue[0][1] is future:
                self._queue.popleft()
            self._busy = False
            self._cond.notify_all()
        if recovered:
            logger.warning("alert store %s writable again; queued writes stored", self.where)

    def _note_failure(self, exc: BaseException) -> None:
        first = self._failing is None
        self._failing = f"{type(exc).__name__}: {exc}"
        if first:
            logger.error("alert store %s cannot be written (%s); the write is kept and "
                         "retried until it works", self.where, self._failing)


def _resolve(future: Future[None]) -> None:
    if future.set_running_or_notify_cancel():
        future.set_result(None)


def _fail(futures: list[Future[None]], error: BaseException | str) -> None:
    for future in futures:
        if future.set_running_or_notify_cancel():
            future.set_exception(
                error if isinstance(error, BaseException) else RuntimeError(error))
