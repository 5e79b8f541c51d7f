"""``AlertManager``: the seed's alert manager over the SDK's in-memory metric reader.

One evaluation cycle collects the ``InMemoryMetricReader`` (cumulative), feeds the bounded
:class:`~otel_botmon.query._history.MetricHistory` and runs the
:class:`~otel_botmon.alerting.evaluator.AlertEvaluator`. ``start()`` runs cycles on an
asyncio interval; the collect and the evaluation run in a worker thread so the bot's event
loop never waits on them, and listeners are then called on the event loop's thread.

Unknown alert ids: ``acknowledge_alert``/``resolve_alert`` return ``False`` and
``get_alert`` returns ``None`` (the dashboard answers 404 on those).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from otel_botmon import _fork
from otel_botmon._internal import report_internal_error
from otel_botmon.alerting.compiled_rule import Compiler
from otel_botmon.alerting.evaluator import AlertEvaluator
from otel_botmon.alerting.for_state import ForStatePolicy
from otel_botmon.alerting.listeners import Listener
from otel_botmon.alerting.model import (
    Alert,
    AlertEvent,
    AlertEventKind,
    AlertRule,
    AlertSeverity,
    AlertType,
    LabelMatcher,
    MatcherSpec,
    Silence,
    new_alert_id,
    parse_matchers,
    to_epoch,
)
from otel_botmon.alerting.store import AlertStore
from otel_botmon.redaction import redact_text

logger = logging.getLogger("otel_botmon.alerting")

_PRUNE_EVERY_S = 3600.0


class AlertManager:
    """Rules, alert lifecycle, silences and the evaluation loop.

    ``reader`` is the metric reader to collect (default: the configured telemetry's
    ``metric_reader`` at each cycle, so a re-``configure()`` is followed). ``store`` is an
    :class:`AlertStore` or a path to its SQLite file (None keeps alerts in memory only).
    ``clock`` returns epoch seconds; tests pass their own. ``for_outage_tolerance_s`` and
    ``for_grace_period_s`` decide how the ``for`` timers of alerts restored from the store
    go on after a restart (Prometheus' ``--rules.alert.for-outage-tolerance`` and
    ``--rules.alert.for-grace-period``; see :mod:`otel_botmon.alerting.for_state`);
    ``ValueError`` unless finite and >= 0.
    """

    def __init__(
        self,
        *,
        reader: Any = None,
        store: AlertStore | str | os.PathLike[str] | None = None,
        history: Any = None,
        rules: Iterable[AlertRule] = (),
        clock: Callable[[], float] = time.time,
        interval_s: float = 10.0,
        max_notifications_per_rule_per_minute: int = 20,
        custom_policy: AlertRule | None = None,
        compiler: Compiler | None = None,
        retention_days: float = 30.0,
        for_outage_tolerance_s: float = 3600.0,
        for_grace_period_s: float = 600.0,
    ) -> None:
        _check_interval(interval_s)
        if not retention_days > 0:
            raise ValueError(f"retention_days must be > 0, got {retention_days!r}")
        for_state = ForStatePolicy(for_outage_tolerance_s, for_grace_period_s)
        if history is None:
            from otel_botmon.query import MetricHistory

            history = MetricHistory()
        if store is not None and not isinstance(store, AlertStore):
            store = AlertStore(store)
        self.reader = reader
        self.history = history
        self.store: AlertStore | None = store
        self.clock = clock
        self.interval_s = float(interval_s)
        self.retention_s = float(retention_days) * 86400.0
        """Resolved alerts older than this are deleted from the store (checked hourly)."""
        self._last_prune: float | None = None
        self._cycle_lock = threading.Lock()  # one collect+ingest+evaluate at a time
        # Metrics no rule reads are not kept, when the history can filter on ingest.
        self._ingest_filters = "only" in inspect.signature(history.ingest).parameters
        self.evaluator = AlertEvaluator(
            (), history, store=store, clock=clock, compiler=compiler,
            max_notifications_per_rule_per_minute=max_notifications_per_rule_per_minute,
            custom_policy=custom_policy, for_state=for_state,
        )
        for rule in rules:
            self.register_rule(rule)
        self._task: asyncio.Task[None] | None = None
        self._stopping: asyncio.Event | None = None
        self._loop_thread: int | None = None
        _fork.register(self)

    def _after_fork_in_child(self) -> None:
        """The evaluation loop ran in the parent's event loop: unless the fork came from
        that loop's thread, it is gone, and ``start()`` in the child starts a new one."""
        self._cycle_lock = threading.Lock()
        if not _fork.loop_survived(self._loop_thread):
            self._task = None
            self._stopping = None
            self._loop_thread = None

    # --- rules ------------------------------------------------------------------------------

    def register_rule(self, rule: AlertRule) -> None:
        """Add a rule. Its condition is compiled now: ``RuleSyntaxError`` (with the position)
        on a syntax or name error, ``ValueError`` when the name is taken."""
        self.evaluator.add_rule(rule)

    def unregister_rule(self, name: str) -> bool:
        """Remove a rule and resolve its active alerts; False when no rule has that name."""
        return self.evaluator.remove_rule(name)

    @property
    def rules(self) -> list[AlertRule]:
        return self.evaluator.rules

    # --- alerts -----------------------------------------------------------------------------

    async def create_custom_alert(
        self, title: str, message: str, severity: AlertSeverity = AlertSeverity.WARNING,
        alert_type: AlertType = AlertType.CUSTOM, labels: dict[str, str] | None = None,
    ) -> str:
        """Fire an alert from code and return its id (the same id again while an alert
        with this title and labels is still active: dedup)."""
        # The store write (with the notification's outbox rows, same transaction) runs
        # off the loop; it has committed when this returns. Listeners run on the loop.
        alert, events = await self._off_loop(
            "create_custom_alert", title, message, severity, alert_type, labels,
            now=self.clock(), dispatch=False,
        )
        self.evaluator.dispatch(events)
        return str(alert.id)

    async def acknowledge_alert(self, alert_id: str, user: str, note: str | None = None) -> bool:
        """Acknowledge (stops escalation); ``note`` goes into the event. False when the id
        is unknown."""
        found, events = await self._off_loop(
            "acknowledge", alert_id, redact_text(user), now=self.clock(), dispatch=False,
            note=note)
        self.evaluator.dispatch(events)
        return bool(found)

    async def resolve_alert(
        self, alert_id: str, user: str | None = None, note: str | None = None,
    ) -> bool:
        """Resolve by hand. False when the id is unknown; True if already resolved."""
        found, events = await self._off_loop(
            "resolve", alert_id, None if user is None else redact_text(user),
            now=self.clock(), dispatch=False, note=note)
        self.evaluator.dispatch(events)
        return bool(found)

    async def _off_loop(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """``self.evaluator.<method>(...)`` on a worker thread: its store write (SQLite,
        possibly waiting for a lock) never blocks the event loop. The thread holds the
        evaluator only weakly, so a dropped manager goes at once."""
        ref = weakref.ref(self.evaluator)

        def call() -> Any:
            evaluator = ref()
            if evaluator is None:
                raise RuntimeError("the alert manager was dropped")
            return getattr(evaluator, method)(*args, **kwargs)

        return await asyncio.to_thread(call)

    def get_active_alerts(self) -> list[Alert]:
        """Pending and firing alerts, oldest first."""
        return self.evaluator.active()

    def get_firing_alerts(self) -> list[Alert]:
        return self.evaluator.firing()

    def get_alert(self, alert_id: str) -> Alert | None:
        """One alert (any state) with its events, or None."""
        return self.evaluator.get(alert_id)

    def get_alert_history(self, limit: int = 100) -> list[Alert]:
        """Alerts of every state, newest first."""
        return self.evaluator.history_list(limit)

    def record_notification(
        self, alert_id: str, channel: str, *, ok: bool, detail: Mapping[str, Any] | None = None,
    ) -> bool:
        """Add a NOTIFIED event (one delivery attempt) to the alert's history, e.g. from the
        dispatcher's ``on_attempt``. ``detail`` must hold no secrets. False if unknown id."""
        payload = {"channel": str(channel), "ok": bool(ok), **dict(detail or {})}
        event = self.evaluator.record_event(alert_id, AlertEventKind.NOTIFIED, payload,
                                            now=self.clock())
        return event is not None

    def add_listener(self, callback: Listener, *, notifiable_only: bool = True) -> None:
        """Call ``callback(alert, event)`` for each event to notify (FIRED, ESCALATED,
        ACKNOWLEDGED, RESOLVED that passed silences, inhibition, cooldown and rate
        limits), or for every event with ``notifiable_only=False``."""
        self.evaluator.add_listener(callback, notifiable_only=notifiable_only)

    def remove_listener(self, callback: Listener) -> None:
        self.evaluator.remove_listener(callback)

    # --- silences ---------------------------------------------------------------------------

    async def add_silence(
        self,
        matchers: MatcherSpec | Iterable[LabelMatcher | str],
        starts_at: float | datetime | None = None,
        ends_at: float | datetime | None = None,
        created_by: str = "",
        comment: str = "",
        *,
        duration_s: float | None = None,
    ) -> str:
        """Silence alerts whose labels match every matcher between ``starts_at`` (default
        now) and ``ends_at`` (or ``starts_at + duration_s``); returns the silence id.

        Matchers: ``{"alertname": "x"}``, ``'severity=~"warning|info"'`` or a list of
        such strings / LabelMatcher. ValueError on a bad matcher or time window.

        Durable when it returns: the silence is in effect at once (before the await
        yields) and the call completes once it is committed to the store, so a crash
        after it returned keeps it. The write runs on the store's writer thread (never
        blocking the event loop, retried until it works), so while another process
        holds the store's write lock this waits, with the silence already in effect.
        """
        start = self.clock() if starts_at is None else to_epoch(starts_at)
        if ends_at is None:
            if duration_s is None:
                raise ValueError("add_silence needs ends_at or duration_s")
            end = start + float(duration_s)
        else:
            end = to_epoch(ends_at)
        silence = Silence(
            id=new_alert_id(), matchers=parse_matchers(matchers), starts_at=start,
            ends_at=end, created_by=redact_text(created_by), comment=comment,
        )
        await asyncio.wrap_future(self.evaluator.add_silence(silence))
        return silence.id

    async def remove_silence(self, silence_id: str) -> bool:
        """End a silence now; False if unknown. Returns once the silence is gone from the
        store (durable, as :meth:`add_silence`)."""
        stored = self.evaluator.remove_silence(silence_id)
        if stored is None:
            return False
        await asyncio.wrap_future(stored)
        return True

    def get_silences(self) -> list[Silence]:
        return self.evaluator.silences()

    # --- evaluation -------------------------------------------------------------------------

    def evaluate_once(self, now: float | None = None) -> list[AlertEvent]:
        """Collect the reader, ingest into the history, evaluate; returns the events.

        Listeners are called on this thread. Errors while collecting are reported as
        internal errors (the cycle then evaluates the history as it was).
        """
        events = self._cycle(now)
        self.evaluator.dispatch(events)
        return events

    def _cycle(self, now: float | None) -> list[AlertEvent]:
        now = self.clock() if now is None else float(now)
        reader = self.reader
        if reader is None:
            from otel_botmon import telemetry

            tel = telemetry.get_telemetry()
            reader = tel.metric_reader if tel is not None else None
        with self._cycle_lock:
            if reader is not None:
                self._ingest(reader, now)
            events = self.evaluator.evaluate(now, dispatch=False)
            self._prune(now)
        return events

    def _ingest(self, reader: Any, now: float) -> None:
        """Collect ``reader`` into the history. Its own frame, so the collect's data (a
        few objects per series: 80,000 at 40,000 series) is freed when the ingest returns,
        not held through the evaluation, where it would be traversed by any full garbage
        collection the evaluation's allocations set off."""
        try:
            data = reader.get_metrics_data()
            if self._ingest_filters:
                self.history.ingest(data, now, only=self.evaluator.referenced_metrics())
            else:
                self.history.ingest(data, now)
        except Exception as exc:
            report_internal_error("alerting.collect", exc)

    def _prune(self, now: float) -> None:
        if self.store is None or (
            self._last_prune is not None and now - self._last_prune < _PRUNE_EVERY_S
        ):
            return
        self._last_prune = now
        try:
            self.store.prune_resolved(now - self.retention_s)
            self.evaluator.forget_resolved(now - self.retention_s)
        except Exception as exc:
            report_internal_error("alerting.store", exc)

    async def start(self, interval_s: float | None = None) -> None:
        """Evaluate every ``interval_s`` seconds until ``stop()`` (idempotent)."""
        if interval_s is not None:
            _check_interval(interval_s)
            self.interval_s = float(interval_s)
        if self._task is not None and not self._task.done():
            return
        self._stopping = asyncio.Event()
        self._task = asyncio.create_task(self._loop(self._stopping), name="botmon-alerts")
        self._loop_thread = threading.get_ident()

    async def stop(self) -> None:
        """Stop the loop after the current cycle."""
        task, self._task = self._task, None
        if task is None:
            return
        if self._stopping is not None:
            self._stopping.set()
        try:
            await asyncio.wait_for(task, timeout=max(5.0, self.interval_s))
        except (TimeoutError, asyncio.CancelledError):
            task.cancel()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _loop(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            try:
                events = await asyncio.to_thread(self._cycle, None)
                self.evaluator.dispatch(events)
            except Exception as exc:
                report_internal_error("alerting.loop", exc)
            try:
                await asyncio.wait_for(stopping.wait(), timeout=self.interval_s)
            except TimeoutError:
                pass

    def close(self) -> None:
        """Stop publishing telemetry and close the store (after ``stop()``)."""
        self.evaluator.close()
        if self.store is not None:
            self.store.close()


def _check_interval(interval_s: float) -> None:
    if not isinstance(interval_s, (int, float)) or not interval_s > 0 or interval_s == float("inf"):
        raise ValueError(f"alert evaluation interval must be a positive number of seconds, "
                         f"got {interval_s!r}")
