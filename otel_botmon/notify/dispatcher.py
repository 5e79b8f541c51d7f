"""``NotificationDispatcher``: durable, ordered, rate-limited delivery off the bot's path.

``enqueue()`` (and the alert listener ``on_alert_event``) never touches the disk on the
caller's thread: it hands the notification to the outbox's committer thread, which
inserts the rows in one local SQLite transaction per burst (a group commit), no network.
One asyncio worker per destination then delivers that destination's rows in order:

- transient failures back off exponentially with jitter; ``Retry-After`` (seconds or an
  HTTP date, or Telegram's ``retry_after``) is honoured exactly;
- permanent failures (4xx other than 429) are marked failed with the reason;
- a destination never sends faster than its rate limit; what waits stays queued;
- more than ``storm_threshold`` rows waiting for a chat/mail destination go out as one
  summary that lists them all, instead of one message each (none is dropped);
- a chat/mail notification of a rule's alert waits ``group_wait`` for others of its
  alertname and exchange, and goes out with them as one message (Alertmanager's
  grouping, for when the in-process notifier is the only engine);
- a slow or failing destination delays only itself.

Every attempt is stored (``attempts()``) and reported to ``on_attempt(alert_id, channel,
result)``, which the SystemMonitor routes to the alert's event history.

Given the alert ``store``, the dispatcher joins its transactions: an alert event's rows
are committed with the alert's state, so no crash can store one without the other. A
write the outbox cannot take (full disk, a lock held too long by another process) keeps
the notifications in memory and retries until it can (``spool``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol, TextIO

from otel_botmon import _fork
from otel_botmon.alerting.model import NotificationChannel
from otel_botmon.alerting.store import AlertStore
from otel_botmon.notify.base import MAX_RETRY_AFTER_S, DeliveryOutcome, DeliveryResult, Notifier
from otel_botmon.notify.committer import GroupCaller, GroupCommitter
from otel_botmon.notify.config import NotificationConfig
from otel_botmon.notify.message import (
    NOTIFIABLE_EVENTS,
    GroupKey,
    Notification,
    group_key,
    summarize,
)
from otel_botmon.notify.notifiers import build_notifiers
from otel_botmon.notify.notifiers import snapshot as take_snapshot
from otel_botmon.notify.outbox import DELIVERED, FAILED, PENDING, AttemptRecord, Outbox, OutboxItem
from otel_botmon.notify.spool import OutboxCommitHook, Spool

__all__ = ["Clock", "NotificationDispatcher", "SystemClock", "build_notifiers"]

logger = logging.getLogger("otel_botmon.notify")

AttemptCallback = Callable[[str, NotificationChannel, DeliveryResult], None]

_BATCH_LIMIT = 500  # rows per summary or per Alertmanager request
# chat and mail: the channels where people read one message per group (machines behind
# webhooks, PagerDuty and Alertmanager get one event per alert)
_GROUPED = frozenset({NotificationChannel.SLACK, NotificationChannel.TELEGRAM,
                      NotificationChannel.EMAIL})
_RECENT_IDS = 10_000  # notification ids enqueue() remembers (a second enqueue is a no-op)
_DECODED = 2_000  # decoded notifications kept for the other destinations of the same row
_DRAIN_BACKSTOP_S = 5.0  # drain() looks again at least this often without a signal

# What a write leaves to do once committed: destinations to wake, and attempts at
# unconfigured channels to report (alert id, channel, result).
_Written = tuple[set[str], list[tuple[str, NotificationChannel, DeliveryResult]]]


class Clock(Protocol):
    """Time for scheduling (epoch seconds) and waiting; tests inject a virtual one."""

    def time(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock."""

    def time(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def _notifiable(event: object) -> bool:
    """Whether an alert event is one to notify (and not silenced, inhibited ...)."""
    if getattr(event, "notify", True) is False:
        return False
    kind = getattr(event, "kind", event)
    return any(getattr(kind, "value", kind) == k.value for k in NOTIFIABLE_EVENTS)


def _report(component: str, exc: BaseException) -> None:
    from otel_botmon._internal import report_internal_error

    report_internal_error(component, exc)


class NotificationDispatcher:
    """Routes notifications to destinations through a durable outbox.

    ``outbox_path`` overrides ``config.outbox_path``. ``store`` (the alert store) makes
    the outbox join its transactions, in the store's own file unless an outbox path is
    given. ``notifiers`` replaces the ones built from the config (tests, custom
    channels). ``clock`` and ``rng`` make scheduling deterministic in tests.

    Raises:
        sqlite3.Error: the outbox file cannot be opened.
        StoreInUseError: another process has the outbox file open.
    """

    def __init__(
        self,
        config: NotificationConfig | None = None,
        *,
        outbox_path: str | Path | None = None,
        on_attempt: AttemptCallback | None = None,
        notifiers: Sequence[Notifier] | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        console_stream: TextIO | None = None,
        store: AlertStore | None = None,
    ) -> None:
        self.config = config if config is not None else NotificationConfig()
        path = outbox_path or self.config.outbox_path
        if store is not None and (path is None or str(path) == store.path):
            self.outbox = Outbox(store=store)
        else:
            self.outbox = Outbox(path or ":memory:")
        self.spool = Spool(self.outbox.path)
        """Notifications the outbox could not take yet (retried until it can)."""
        self._spool_wake: asyncio.Event | None = None
        self.on_attempt = on_attempt
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._rng = rng if rng is not None else random.Random()
        built = notifiers if notifiers is not None else build_notifiers(
            self.config, self.outbox, console_stream=console_stream)
        self._notifiers: dict[str, Notifier] = {n.destination: n for n in built}
        self._unserved_logged: set[str] = set()  # see _deliverable_count
        self._by_channel: dict[NotificationChannel, list[Notifier]] = {}
        for notifier in self._notifiers.values():
            self._by_channel.setdefault(notifier.channel, []).append(notifier)
        self._wake: dict[str, asyncio.Event] = {}
        self._progress: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._last_send: dict[str, float] = {}
        self._deferred: list[tuple[object, object]] = []
        self._in_flight = 0  # deliveries between "row settled" and "on_attempt called"
        self._flush_handle: asyncio.Handle | None = None
        # Every destination reads the same stored notification: decode it once.
        self._decoded: OrderedDict[str, Notification] = OrderedDict()
        self._idle: set[str] = set()  # destinations whose worker waits with nothing due
        # Outbox writes (a group commit, maybe waiting for a lock) run on one thread of
        # their own, never on the caller's, which is often the bot's event loop.
        self._committer = GroupCommitter(self._commit_items, self._spill)
        # Attempts are settled on one thread too: the settles of every destination that
        # finish together share one transaction and one wake-up of the loop.
        self._settler = GroupCaller(self._settle_batch, name="botmon-settle")
        self._recent: OrderedDict[str, None] = OrderedDict()  # ids enqueue() took
        self._recent_lock = threading.Lock()
        self._store = store
        self._hook: OutboxCommitHook | None = None
        if store is not None:
            self._hook = OutboxCommitHook(_notifiable, self._queue_in_transaction,
                                          self._after_commit)
            store.add_commit_hook(self._hook)
        _fork.register(self)

    def _after_fork_in_child(self) -> None:
        """A forked child delivers its own notifications only, from its own outbox (in
        memory: see :meth:`Outbox._after_fork_in_child`), on threads of its own. What
        the parent held in memory (spool, commits and settles under way) stays the
        parent's. Unless the fork came from the thread running the dispatcher's event
        loop (which then goes on in the child), the workers are gone with that loop:
        ``start()`` in the child's loop starts new ones."""
        self.outbox._after_fork_in_child()  # before the committer writes to it
        self._committer.after_fork_in_child()
        self._settler.after_fork_in_child()
        self.spool = Spool(self.outbox.path)
        self._recent_lock = threading.Lock()
        self._decoded = OrderedDict()
        self._deferred = []  # the parent's events of the loop step that forked
        for notifier in self._notifiers.values():
            forget = getattr(notifier, "after_fork_in_child", None)
            if forget is not None:  # custom notifiers need not derive from Notifier
                forget()
        if self._hook is not None:
            _fork.renew_locks(self._hook)
        if not _fork.loop_survived(self._loop_thread):
            # The parent's tasks stay referenced for good: freed, each suspended worker
            # would be closed, and its finally blocks would run here, on the child's
            # counters (a delivery in flight at the fork left _in_flight at -1, and
            # drain() then waited forever)
            _fork.abandon(*self._tasks, self._loop)
            self._loop = None
            self._loop_thread = None
            self._tasks = []
            self._wake = {}
            self._progress = None
            self._spool_wake = None
            self._idle = set()
            self._in_flight = 0
            self._flush_handle = None

    # ----- the fast path: called by the evaluator / alert manager -----

    @property
    def destinations(self) -> list[str]:
        """Names of the configured destinations (``"slack"``, ``"webhook#0"`` ...)."""
        return list(self._notifiers)

    def enqueue(self, notification: Notification) -> int:
        """Queue ``notification`` for every destination its routing selects and return
        how many deliveries that is (0 for a notification queued before).

        Never waits on the disk or on another process's lock: the notification is
        handed to the outbox's committer thread, which commits it with whatever else
        was queued meanwhile (a group commit) and wakes the workers. Durability: from
        the return until that commit the notification is in memory only (a crash then
        loses it; nothing committed before is lost); a commit that fails (full disk, a
        lock held past the busy timeout) keeps it in the spool and retries until it is
        written. ``wait_committed()`` waits for the commit.

        A channel that is requested but not configured is recorded as a failed attempt
        (reason: not configured) instead of being silently skipped.
        """
        return self.enqueue_many([notification])

    def enqueue_many(self, notifications: Sequence[Notification]) -> int:
        """:meth:`enqueue` for several notifications (committed in one transaction)."""
        fresh: list[Notification] = []
        deliveries = 0
        with self._recent_lock:
            for notification in notifications:
                if notification.id in self._recent:
                    continue
                self._recent[notification.id] = None
                if len(self._recent) > _RECENT_IDS:
                    self._recent.popitem(last=False)
                fresh.append(notification)
        for notification in fresh:
            deliveries += len(self._targets(notification)[0])
        if fresh:
            self._committer.submit(fresh)
        return deliveries

    def wait_committed(self, timeout: float | None = None) -> bool:
        """Block until everything queued so far is committed to the outbox (or kept in
        the spool because the outbox could not take it); False on timeout. Not for the
        event loop: it waits on the disk."""
        return self._settle_commits(timeout)

    def _targets(self, notification: Notification) -> tuple[
            list[tuple[str, str]], list[tuple[NotificationChannel, DeliveryResult]]]:
        """Destinations for ``notification``, and the requested channels that are not
        configured (with the failed result to record). Memory only."""
        channels = self.config.channels_for(notification.severity, notification.channels,
                                            list(self._by_channel))
        targets: list[tuple[str, str]] = []
        missing: list[tuple[NotificationChannel, DeliveryResult]] = []
        for channel in channels:
            notifiers = self._by_channel.get(channel)
            if not notifiers:
                missing.append((channel, DeliveryResult.failed(
                    f"channel {channel.value} is not configured")))
                continue
            targets.extend((channel.value, n.destination) for n in notifiers)
        return targets, missing

    def _write(self, notifications: Sequence[Notification]) -> _Written:
        """Insert the outbox rows of ``notifications`` (one transaction, or part of the
        alert store's open one) and return what to do once committed.

        Raises:
            sqlite3.Error: the outbox cannot be written.
        """
        entries: list[tuple[str, str, dict[str, object], list[tuple[str, str]]]] = []
        woken: set[str] = set()
        missing: list[tuple[str, NotificationChannel, DeliveryResult]] = []
        for notification in notifications:
            targets, unconfigured = self._targets(notification)
            missing.extend((notification.alert_id, c, r) for c, r in unconfigured)
            if targets:
                entries.append((notification.id, notification.alert_id,
                                notification.to_dict(), targets))
                woken.update(destination for _, destination in targets)
        if entries or missing:
            self.outbox.enqueue_many(entries, self._clock.time(),
                                     [(a, c.value, r) for a, c, r in missing])
        return woken, missing

    # ----- inside the alert store's transaction -----

    def _queue_in_transaction(self, pairs: list[tuple[Any, Any]]) -> Any:
        """Commit hook: the outbox rows of these (alert, event) pairs, written in the
        store's open transaction (or the outbox's own file, before it commits)."""
        return self._write([Notification.from_alert(take_snapshot(alert), event)
                            for alert, event in pairs])

    def _after_commit(self, result: Any) -> None:
        woken, missing = result
        self._wake_workers(woken)
        loop = self._loop
        for alert_id, channel, attempt in missing:
            if (loop is not None and not loop.is_closed()
                    and threading.get_ident() != self._loop_thread):
                loop.call_soon_threadsafe(self._emit, alert_id, channel, attempt)
            else:
                self._emit(alert_id, channel, attempt)

    # ----- the committer thread -----

    def _commit_items(self, items: list[Any]) -> None:
        """Committer thread: build the notifications of listener events, then write
        every item in one transaction; what cannot be written goes to the spool."""
        notifications: list[Notification] = []
        for item in items:
            if isinstance(item, Notification):
                notifications.append(item)
                continue
            snapshot, event = item
            try:
                notifications.append(Notification.from_alert(snapshot, event))
            except Exception as exc:
                _report("notify.dispatcher", exc)
        self._write_or_keep(notifications)

    def _write_or_keep(self, notifications: Sequence[Notification]) -> None:
        if not notifications:
            return
        try:
            self._after_commit(self._write(notifications))
        except sqlite3.Error as exc:
            self._keep(notifications, exc)
        except Exception as exc:
            _report("notify.dispatcher", exc)

    def _spill(self, items: list[Any]) -> None:
        """More than the committer's limit waits: the oldest go to the (bounded) spool."""
        notifications = [i if isinstance(i, Notification) else Notification.from_alert(*i)
                         for i in items]
        self._keep(notifications, sqlite3.OperationalError(
            "the outbox committer is behind (the outbox file is slow or locked)"))

    # ----- notifications the outbox could not take -----

    def _keep(self, notifications: Sequence[Notification], exc: BaseException) -> None:
        self.spool.keep(notifications, exc)
        self._poke_spool()

    def _poke_spool(self) -> None:
        loop, wake = self._loop, self._spool_wake
        if loop is None or wake is None or loop.is_closed():
            return
        if threading.get_ident() == self._loop_thread:
            wake.set()
        else:
            loop.call_soon_threadsafe(wake.set)

    def _write_spooled(self, notifications: Sequence[Notification]) -> None:
        self._after_commit(self._write(notifications))

    async def _retry_spool_forever(self) -> None:
        """Write what the spool holds, backing off 0.2 s .. 30 s while the outbox fails."""
        assert self._spool_wake is not None
        delay = 0.2
        while True:
            if not len(self.spool):
                self._spool_wake.clear()
                await self._spool_wake.wait()
                delay = 0.2
            if await asyncio.to_thread(self.spool.flush, self._write_spooled):
                if self._progress is not None:
                    self._progress.set()  # drain() looks at the spool too
                continue
            await asyncio.sleep(delay)
            delay = min(30.0, delay * 2)

    def on_alert_event(self, alert: object, event: object) -> None:
        """Alert listener (``alert_manager.add_listener(dispatcher.on_alert_event)``):
        queues a notification for fired, escalated, acknowledged and resolved events.

        Takes a snapshot of the alert and hands it to the committer thread; never
        writes on the caller's thread. On the dispatcher's event loop every event of one
        loop step (an evaluation cycle) goes in one group commit. Events already queued
        in the alert store's transaction (the usual case) are skipped. Never raises into
        the caller: an error is reported as an internal error.
        """
        try:
            if not _notifiable(event):  # silenced, inhibited, cooldown; or not a kind to send
                return
            if self._hook is not None and self._hook.claim(event):
                return  # already queued in the alert store's transaction
            snapshot = take_snapshot(alert)
            loop = self._loop
            if loop is not None and threading.get_ident() == self._loop_thread:
                self._deferred.append((snapshot, event))
                if self._flush_handle is None:
                    self._flush_handle = loop.call_soon(self._flush_deferred)
                return
            self._committer.submit([(snapshot, event)])
        except Exception as exc:
            _report("notify.dispatcher", exc)

    def _flush_deferred(self) -> None:
        """Hand the alert events collected during this loop step to the committer (one
        group commit)."""
        self._flush_handle = None
        deferred, self._deferred = self._deferred, []
        if deferred:
            self._committer.submit(deferred)

    def _settle_commits(self, timeout: float | None = None) -> bool:
        """Wait until every alert event and notification seen so far is committed to
        the outbox (or spooled)."""
        if self._deferred and (self._loop is None
                               or threading.get_ident() == self._loop_thread):
            self._flush_deferred()
        return self._committer.settle(timeout)

    def _wake_workers(self, destinations: set[str]) -> None:
        loop = self._loop
        if loop is None:
            return
        for destination in destinations:
            event = self._wake.get(destination)
            if event is None:
                continue
            if threading.get_ident() == self._loop_thread:
                event.set()
            else:
                loop.call_soon_threadsafe(event.set)

    # ----- state -----

    def pending_count(self, destination: str | None = None) -> int:
        """Rows still waiting for delivery (alert events of the current loop step are
        committed first)."""
        self._settle_commits()
        return self.outbox.pending_count(destination)

    def _deliverable_count(self) -> int:
        """Pending rows of the destinations configured here (what ``drain()`` waits for).
        Rows of a destination this process has not configured (a channel taken out of
        the configuration, a destination name damaged on disk) stay in the outbox for a
        process that has it, logged once, and are not waited for."""
        self._settle_commits()
        counts = self.outbox.pending_by_destination()
        others = {d: n for d, n in counts.items() if d not in self._notifiers}
        fresh = set(others) - self._unserved_logged
        if fresh:
            self._unserved_logged |= fresh
            logger.warning(
                "notification outbox %s: %s wait for destinations not configured here "
                "(%s); kept for a process that has them, not waited for by drain()",
                self.outbox.path, sum(others[d] for d in fresh),
                ", ".join(sorted(repr(d)[:80] for d in fresh)))
        return sum(n for d, n in counts.items() if d in self._notifiers)

    def attempts(self, alert_id: str | None = None) -> list[AttemptRecord]:
        """Every delivery attempt recorded (for one alert, or all), oldest first."""
        self._settle_commits()
        return self.outbox.attempts(alert_id)

    # ----- lifecycle -----

    async def start(self) -> None:
        """Start one worker per destination (and Alertmanager's re-sender). Rows left
        pending by a previous process are delivered first. Idempotent."""
        if self._tasks:
            return
        # what was queued before start() is committed first (one batch, in order)
        await asyncio.to_thread(self._settle_commits)
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._progress = asyncio.Event()
        self._spool_wake = asyncio.Event()
        if len(self.spool):
            self._spool_wake.set()
        self._tasks.append(asyncio.create_task(self._guarded(self._prune_forever(), "prune"),
                                               name="botmon-notify-prune"))
        self._tasks.append(asyncio.create_task(
            self._guarded(self._retry_spool_forever(), "spool"), name="botmon-notify-spool"))
        for destination, notifier in self._notifiers.items():
            self._wake[destination] = asyncio.Event()
            self._wake[destination].set()
            self._tasks.append(asyncio.create_task(self._worker(notifier),
                                                   name=f"botmon-notify-{destination}"))
            if type(notifier).background is not Notifier.background:
                self._tasks.append(asyncio.create_task(
                    self._guarded(notifier.background(), destination),
                    name=f"botmon-notify-{destination}-background"))

    async def drain(self, timeout: float = 30.0) -> bool:
        """Wait until nothing is pending (delivered or failed); False on timeout."""
        if self._progress is None:
            raise RuntimeError("NotificationDispatcher.drain() needs start() first")
        deadline = time.monotonic() + timeout
        self._flush_deferred()
        while True:
            self._progress.clear()
            # Only when every worker is idle is the outbox asked (the count waits for
            # the committer, maybe a lock: off the loop); until then, a worker's
            # progress is the next moment to look again.
            if (self._quiet() and not len(self.spool)
                    and await asyncio.to_thread(self._deliverable_count) == 0
                    and self._quiet()):
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            try:
                # every change drain() looks at signals progress (a worker going idle,
                # the spool written); the timeout is a backstop, not a poll: each
                # wake-up of an idle process costs more CPU than the check itself
                async with asyncio.timeout(min(remaining, _DRAIN_BACKSTOP_S)):
                    await self._progress.wait()
            except TimeoutError:
                pass

    def _quiet(self) -> bool:
        """No delivery under way and every worker waiting for new rows (none woken)."""
        return not self._in_flight and all(
            destination in self._idle and not wake.is_set()
            for destination, wake in self._wake.items())

    async def stop(self) -> None:
        """Stop the workers and close connections. Undelivered rows stay in the outbox
        for the next start (a delivery cut short is sent again then: at-least-once)."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
        self._flush_deferred()
        await asyncio.to_thread(self._settle_commits)
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for notifier in self._notifiers.values():
            try:
                await notifier.aclose()
            except Exception as exc:
                _report("notify.close", exc)
        self._loop = None

    def close(self) -> None:
        """Close the outbox database (after ``stop()``). Notifications still held in
        memory (the outbox could not take them) are written one last time; if that
        fails too they are lost, and the log says how many."""
        self._settle_commits()
        self._committer.close()
        self._settler.close()
        if len(self.spool) and not self.spool.flush(self._write_spooled):
            logger.error("notification outbox %s: %d notification(s) could not be stored "
                         "before closing (%s)", self.outbox.path, len(self.spool),
                         self.spool.failing)
        if self._store is not None and self._hook is not None:
            self._store.remove_commit_hook(self._hook)
        self.outbox.close()

    async def _guarded(self, coro: object, destination: str) -> None:
        try:
            await coro  # type: ignore[misc]
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            _report(f"notify.{destination}", exc)

    async def _prune_forever(self) -> None:
        while True:
            try:  # SQLite (maybe waiting for a lock): off the loop
                removed = await asyncio.to_thread(
                    self.outbox.prune, self._clock.time() - self.config.outbox_retention)
            except sqlite3.Error as exc:  # locked or full: try again next time
                _report("notify.prune", exc)
            else:
                if removed:
                    logger.debug("notification outbox: pruned %d settled rows", removed)
            await asyncio.sleep(3600.0)

    # ----- the workers -----

    async def _worker(self, notifier: Notifier) -> None:
        destination = notifier.destination
        wake = self._wake[destination]
        # One-by-one destinations only ever need the head of their queue.
        limit = _BATCH_LIMIT if notifier.batches or notifier.collapsible else 1
        items: list[OutboxItem] | None = None  # the queue's head, when already read
        while True:
            try:
                if items is None:
                    wake.clear()
                    # Disk I/O in a thread: the loop also runs the bot and the evaluator.
                    items = await asyncio.to_thread(self.outbox.pending, destination, limit)
                if not items:
                    items = None
                    self._idle.add(destination)
                    # the one moment drain() can find every worker quiet: waking it on
                    # every delivery cost a task and a timer each time
                    if self._progress is not None:
                        self._progress.set()
                    try:
                        await wake.wait()
                    finally:
                        self._idle.discard(destination)
                    continue
                now = self._clock.time()
                latest = now + self._longest_wait
                if any(item.next_attempt_at > latest for item in items):
                    # later than any wait this dispatcher sets: a damaged retry time (a
                    # byte flipped on disk), which would hold the queue; due at once
                    items = [replace(item, next_attempt_at=now)
                             if item.next_attempt_at > latest else item for item in items]
                delay = items[0].next_attempt_at - now
                if delay > 0:
                    items = None
                    await self._clock.sleep(delay)
                    continue
                self._in_flight += 1
                try:
                    # the settle reads the next head in the same trip to the disk thread
                    items = await self._deliver(notifier, items, limit)
                finally:
                    self._in_flight -= 1
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # never let one bad row kill the destination's worker
                items = None
                _report(f"notify.{destination}", exc)
                await self._clock.sleep(1.0)

    async def _respect_rate(self, notifier: Notifier) -> None:
        """Wait until ``1 / rate`` seconds have passed since the previous request to this
        destination *completed*. Counting from completion (not from the start) means the
        receiver, which timestamps arrivals, never sees two requests closer than the
        limit, whatever the network and our own preparation add in between."""
        rate = self.config.rate_limit(notifier.channel)
        last = self._last_send.get(notifier.destination)
        if rate is not None and last is not None:
            # never longer than one interval: a wall clock stepped back since the last
            # send (NTP, a restored VM) would otherwise hold the channel for the step
            wait = min(last + 1.0 / rate - self._clock.time(), 1.0 / rate)
            if wait > 0:
                await self._clock.sleep(wait)

    async def _decode(
        self, items: Sequence[OutboxItem],
    ) -> list[tuple[OutboxItem, Notification]]:
        decoded = []
        cache = self._decoded
        for item in items:
            known = cache.get(item.notification_id)
            if known is not None:
                decoded.append((item, known))
                continue
            try:
                notification = Notification.from_dict(json.loads(item.payload))
                decoded.append((item, notification))
                cache[item.notification_id] = notification
                if len(cache) > _DECODED:
                    cache.popitem(last=False)
            except (ValueError, KeyError, TypeError) as exc:
                result = DeliveryResult.failed(f"stored notification is corrupt: {exc}")
                await asyncio.to_thread(
                    self.outbox.settle, [item], result, self._clock.time(), state=FAILED)
                self._emit(item.alert_id, NotificationChannel(item.channel), result)
        return decoded

    async def _deliver(self, notifier: Notifier, items: Sequence[OutboxItem],
                       limit: int) -> list[OutboxItem] | None:
        """Deliver the due head of ``items`` and settle it; return the destination's
        next pending rows (read after the settle), or None to read them again."""
        due = [i for i in items if i.next_attempt_at <= self._clock.time()]
        storm = notifier.collapsible and len(items) > self.config.storm_threshold
        group: GroupKey | None = None
        if (notifier.channel in _GROUPED and notifier.collapsible and not storm
                and self.config.group_wait > 0 and due):
            grouped = await self._group(due)
            if grouped is None:
                return None  # the head's group is still open: looked at again when it closes
            batch, group = grouped
        else:
            batch = await self._decode(due if notifier.batches or storm else due[:1])
        if not batch:
            return None
        notifications = [n for _, n in batch]
        note = None
        if notifier.batches and not storm:
            await self._respect_rate(notifier)
            result = await self._attempt(notifier, notifier.send_many, notifications)
        elif len(batch) > 1:
            if storm and group is None:  # a storm of one group is that group's message
                keys = set(map(group_key, notifications))
                group = keys.pop() if len(keys) == 1 else None
            summary = summarize(notifications, group=group)
            note = (f"sent in an alert-storm summary of {len(batch)}" if storm
                    else f"sent as one message for a group of {len(batch)}")
            await self._respect_rate(notifier)
            result = await self._attempt(notifier, notifier.send, summary)
        else:
            await self._respect_rate(notifier)
            result = await self._attempt(notifier, notifier.send, notifications[0])
        self._last_send[notifier.destination] = self._clock.time()
        items_sent = [item for item, _ in batch]
        self._wake[notifier.destination].clear()  # a commit from now on wakes it again
        outcome: tuple[DeliveryResult, list[OutboxItem] | None] = await self._settler.call(
            (items_sent, notifier, result, note, limit))
        final, following = outcome
        for item in items_sent:  # callbacks run on the loop, not in the I/O thread
            self._emit(item.alert_id, notifier.channel, final)
        return following

    @staticmethod
    async def _attempt(notifier: Notifier, send: Callable[[Any], Awaitable[Any]],
                       what: Any) -> DeliveryResult:
        """The result of ``send(what)``. A notifier that raises (a custom one with a
        bug, also from a ``send`` that is not a coroutine) or answers something else
        has its attempt retried with backoff and, past ``give_up_after``, failed, as
        any retry: its queue moves on, never stuck on one row."""
        try:
            result = await send(what)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            _report(f"notify.{notifier.destination}", exc)
            return DeliveryResult.retry(f"the notifier raised {type(exc).__name__}: {exc}")
        if not isinstance(result, DeliveryResult):
            return DeliveryResult.retry(
                f"the notifier returned {type(result).__name__}, not a DeliveryResult")
        return result

    def _settle_batch(self, requests: list[Any]) -> list[Any]:
        """Settle thread: store the attempts of ``requests`` (items, notifier, result,
        note, limit) in one transaction, then read each destination's next rows
        (None, to be read again, when that read fails: the settle is committed)."""
        with self.outbox.transaction():
            finals = [self._settle(items, notifier, result, note)
                      for items, notifier, result, note, _ in requests]
        outcomes: list[Any] = []
        for (_, notifier, _, _, limit), final in zip(requests, finals, strict=True):
            try:
                following = self.outbox.pending(notifier.destination, limit)
            except sqlite3.Error:
                following = None
            outcomes.append((final, following))
        return outcomes

    async def _group(self, due: Sequence[OutboxItem]) -> tuple[
            list[tuple[OutboxItem, Notification]], GroupKey | None] | None:
        """What to send next, in queue order: a row of no group (:func:`group_key`) at
        once, or the due rows of the first group whose window (``group_wait`` from its
        oldest row) has closed. None, after waiting for the first window to close, when
        every group is still open: the caller looks again and sees what came meanwhile."""
        decoded = await self._decode(due)
        now = self._clock.time()
        closes: dict[GroupKey, float] = {}
        for item, notification in decoded:
            key = group_key(notification)
            if key is None:
                return [(item, notification)], None
            if closes.setdefault(key, item.created_at + self.config.group_wait) <= now:
                members = [(i, n) for i, n in decoded if group_key(n) == key]
                return members, key
        if not closes:
            return [], None
        await self._clock.sleep(min(closes.values()) - now)
        return None

    def _settle(
        self, items: list[OutboxItem], notifier: Notifier, result: DeliveryResult,
        note: str | None,
    ) -> DeliveryResult:
        """Store the outcome of one attempt on ``items``; return the result to report
        (a retry past ``give_up_after`` becomes a failure)."""
        now = self._clock.time()
        detail = f"{result.detail} ({note})" if note and result.detail else (note or result.detail)
        if result.outcome is DeliveryOutcome.DELIVERED:
            self.outbox.settle(items, result, now, state=DELIVERED, detail=detail)
        elif result.outcome is DeliveryOutcome.FAILED:
            logger.warning("notification to %s failed permanently: %s",
                           notifier.destination, detail)
            self.outbox.settle(items, result, now, state=FAILED, detail=detail)
        else:
            oldest = min(item.created_at for item in items)
            if now - oldest > self.config.give_up_after:
                attempts = max(item.attempts for item in items) + 1
                failed = DeliveryResult.failed(
                    f"gave up after {attempts} attempts: {detail}", result.status_code)
                self.outbox.settle(items, failed, now, state=FAILED)
                result = failed
            else:
                attempts = max(item.attempts for item in items) + 1
                delay = self._backoff(attempts, result.retry_after)
                self.outbox.settle(items, result, now, state=PENDING,
                                   next_attempt_at=now + delay, detail=detail)
        return result

    @property
    def _longest_wait(self) -> float:
        """The longest wait before a retry this dispatcher sets (a receiver's
        Retry-After is capped at it; a stored retry time further off is damaged)."""
        return max(MAX_RETRY_AFTER_S, self.config.retry_max_delay)

    def _backoff(self, attempts: int, retry_after: float | None) -> float:
        if retry_after is not None and math.isfinite(retry_after):
            # the receiver said exactly when; trust it, up to the longest wait the
            # worker keeps (a later retry time is taken for a damaged one: due at once)
            return min(max(retry_after, 0.0), self._longest_wait)
        base = min(self.config.retry_max_delay,
                   self.config.retry_initial_delay * 2 ** min(attempts - 1, 30))
        # "Equal jitter": at least half the backoff, so retries of many senders spread
        # out without any retrying immediately.
        return float(base / 2 + self._rng.uniform(0, base / 2))

    def _emit(self, alert_id: str, channel: NotificationChannel, result: DeliveryResult) -> None:
        if self.on_attempt is None:
            return
        try:
            self.on_attempt(alert_id, channel, result)
        except Exception as exc:
            _report("notify.on_attempt", exc)
