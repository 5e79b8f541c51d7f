"""The outbox's group committer: one thread that writes what callers hand it.

``enqueue()`` and the alert listener never write SQLite on the caller's thread (often the
bot's event loop): they append to an in-memory buffer and return. One thread takes the
whole buffer at a time and commits it in one transaction (a group commit: one fsync for
a burst of alert events), in the order it was handed over. What the commit cannot write
goes to the spool (kept in memory, retried until written). ``settle()`` waits until
everything handed over so far has been committed or spooled.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

__all__ = ["GroupCaller", "GroupCommitter"]


class GroupCommitter:
    """Buffers items and commits them in batches on one thread, in order.

    ``commit(items)`` runs on the committer thread with everything buffered since the
    previous batch; it must not raise (it spools what it cannot write). ``overflow``
    gets what would push the buffer past ``limit`` items (the spool, which is bounded).
    """

    def __init__(
        self, commit: Callable[[list[Any]], None], overflow: Callable[[list[Any]], None],
        *, limit: int = 10_000, name: str = "botmon-outbox",
    ) -> None:
        self._commit = commit
        self._overflow = overflow
        self.limit = limit
        self._name = name
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._lock = threading.Lock()
        self._pending: list[Any] = []
        self._scheduled = False
        self._thread: int | None = None
        self._closed = False

    def submit(self, items: Sequence[Any]) -> None:
        """Hand ``items`` over and return at once (never touches the disk)."""
        spill: list[Any] = []
        with self._lock:
            self._pending.extend(items)
            excess = len(self._pending) - self.limit
            if excess > 0:
                spill, self._pending = self._pending[:excess], self._pending[excess:]
            if self._scheduled or self._closed:
                schedule = False
            else:
                self._scheduled = schedule = True
        if spill:
            self._overflow(spill)
        if schedule:
            self._executor.submit(self._run)

    def _run(self) -> None:
        self._thread = threading.get_ident()
        with self._lock:
            items, self._pending = self._pending, []
            self._scheduled = False
        if items:
            self._commit(items)

    def after_fork_in_child(self) -> None:
        """In a forked child: the committer thread is gone, and what was handed over
        before the fork is the parent's (the parent commits it). Forget it; the next
        ``submit()`` starts a thread of the child's own. The old pool is dropped, not
        shut down (that would wait for its thread, which the child does not have)."""
        self._executor = ThreadPoolExecutor(max_workers=1,
                                            thread_name_prefix=self._name)
        self._lock = threading.Lock()
        self._pending = []
        self._scheduled = False
        self._thread = None

    def on_committer_thread(self) -> bool:
        return threading.get_ident() == self._thread

    def settle(self, timeout: float | None = None) -> bool:
        """Wait until every item handed over so far is committed (or spooled); False on
        timeout. On the committer thread itself it returns at once."""
        if self.on_committer_thread():
            return True
        with self._lock:
            if self._closed:
                return not self._pending
        barrier = self._executor.submit(lambda: None)  # FIFO: after every earlier batch
        try:
            barrier.result(timeout)
        except FutureTimeout:
            return False
        return True

    def close(self) -> None:
        """Commit what is buffered and stop the thread."""
        self.settle()
        with self._lock:
            self._closed = True
            left, self._pending = self._pending, []
        self._executor.shutdown(wait=True)
        if left:  # handed over while closing: write them here
            self._commit(left)


class GroupCaller:
    """Runs calls made from event loops on one thread, every call waiting at that moment
    in one batch: ``run(requests)`` gets them in order and returns one outcome per
    request (a value, or an exception to raise in that caller). A batch that raises
    raises in each of its callers. Each loop is woken once per batch."""

    def __init__(self, run: Callable[[list[Any]], list[Any]], *, name: str) -> None:
        self._run = run
        self._committer = GroupCommitter(self._batch, self._batch, limit=sys.maxsize,
                                         name=name)

    async def call(self, request: Any) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._committer.submit([(loop, future, request)])
        return await future

    def _batch(self, entries: list[Any]) -> None:
        try:
            outcomes = self._run([request for _, _, request in entries])
        except Exception as exc:
            outcomes = [exc] * len(entries)
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Any, Any]]] = {}
        for (loop, future, _), outcome in zip(entries, outcomes, strict=True):
            by_loop.setdefault(loop, []).append((future, outcome))
        for loop, done in by_loop.items():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(_resolve, done)

    def after_fork_in_child(self) -> None:
        """The calls waiting at the fork came from the parent's event loops (not
        running in the child): they are dropped with the parent's committer thread."""
        self._committer.after_fork_in_child()

    def close(self) -> None:
        self._committer.close()


def _resolve(done: list[tuple[asyncio.Future[Any], Any]]) -> None:
    for future, outcome in done:
        if future.done():  # the caller was cancelled
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
