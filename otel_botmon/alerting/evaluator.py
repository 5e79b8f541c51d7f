"""The alert state machine: rules over a metric history -> alert instances and events.

One alert instance per rule and matching series, identified by its fingerprint (rule name
plus sorted labels). States follow Prometheus: a new match is PENDING; it FIRES once the
condition has held for ``for_`` seconds (at once when ``for_`` is 0); a firing alert whose
condition stops holding keeps firing for ``keep_firing_for`` seconds and, with a
``recovery_threshold``, until its value crosses that threshold; then it RESOLVES. A
pending alert whose condition stops holding becomes INACTIVE: one ``inactive`` event (never
notified) tells listeners it is gone, and it leaves the active set and the store.

A manual resolve of a rule's alert sticks: the same series does not raise a new alert until
its condition has been seen clear once. Which events are notified is decided by
:mod:`otel_botmon.alerting.suppression` (silences, inhibition, cooldown, rate limits).

Time is injected (``clock`` and ``now`` arguments): tests drive it by hand.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from typing import Any

from otel_botmon._internal import report_internal_error
from otel_botmon._unicode import valid_text
from otel_botmon.alerting.compiled_rule import (
    CompiledRule,
    Compiler,
    DuplicateAlertError,
    render,
)
from otel_botmon.alerting.escalation import escalate_if_due
from otel_botmon.alerting.for_state import ForStatePolicy
from otel_botmon.alerting.listeners import Listener, ListenerSet
from otel_botmon.alerting.model import (
    ALERTNAME_LABEL,
    CUSTOM_RULE_NAME,
    SEVERITY_LABEL,
    Alert,
    AlertEvent,
    AlertEventKind,
    AlertRule,
    AlertSeverity,
    AlertState,
    AlertType,
    Silence,
    fingerprint,
)
from otel_botmon.alerting.recording import Recorder, RecordingRule
from otel_botmon.alerting.registry import AlertRegistry, ReadView
from otel_botmon.alerting.store import AlertStore
from otel_botmon.alerting.suppression import NotificationGate, new_event
from otel_botmon.alerting.templates import NO_EXTERNALS, Externals
from otel_botmon.redaction import redact_text

logger = logging.getLogger("otel_botmon.alerting")

_ORPHAN_GRACE_S = 600.0
_INACTIVE_KEPT = 256  # pending alerts that cleared, kept so ``get`` can say what became of them
EVALUATION_MARK_INTERVAL_S = 60.0
"""How often (in evaluation time) the store learns that rules were evaluated: after a
SIGKILL, a restart sees an outage at most this much longer than it was."""


def _same_float(a: float | None, b: float) -> bool:
    """``a`` and ``b`` are the same number to a template: equal and of one sign (``0``
    and ``-0`` render differently), or both NaN."""
    if a is None:
        return False
    if a != a:
        return b != b
    return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)


class AlertEvaluator:
    """Evaluates rules over a metric history and keeps the alerts' lifecycle.

    ``history`` is an ``otel_botmon.query.MetricHistory`` that the caller fills; the
    evaluator only reads it. With a ``store`` the active alerts, their timers, silences
    and cooldowns are loaded at construction and every change is written through, so a
    restart neither repeats a FIRED nor loses an acknowledgement. The time of the last
    evaluation is written to the store about once a minute (off the caller's thread), and
    the ``for`` timers of restored alerts follow ``for_state``
    (:mod:`otel_botmon.alerting.for_state`): the outage never counts as time the
    condition held.

    ``on_event(alert, event)`` sees every event; listeners added with ``add_listener``
    see only events to notify unless ``notifiable_only=False``. A listener that raises
    is reported as an internal error and the others still run.
    """

    def __init__(
        self,
        rules: Iterable[AlertRule] = (),
        history: Any = None,
        *,
        store: AlertStore | None = None,
        clock: Callable[[], float] = time.time,
        on_event: Listener | None = None,
        compiler: Compiler | None = None,
        max_notifications_per_rule_per_minute: int = 20,
        custom_policy: AlertRule | None = None,
        publish_telemetry: bool = True,
        recording_rules: Iterable[RecordingRule] = (),
        externals: Externals = NO_EXTERNALS,
        for_state: ForStatePolicy | None = None,
    ) -> None:
        self.history = history
        self.for_state = for_state or ForStatePolicy()
        """Outage tolerance and grace period applied to alerts restored from the store."""
        self.externals = externals
        """``$externalLabels`` and ``$externalURL`` of the rules' templates."""
        self.publish_telemetry = publish_telemetry
        """Count firing alerts in ``botmon.alerts.active`` and emit a span event per
        change (off for throwaway evaluators such as rule unit tests)."""
        self.store = store
        self.clock = clock
        self.custom_policy = custom_policy or AlertRule(
            name=CUSTOM_RULE_NAME, condition="custom", cooldown_minutes=0.0
        )
        """Cooldown/escalation settings of alerts made with ``create_custom_alert``."""
        self._compiler = compiler
        self._lock = threading.RLock()
        # Silences are replaced whole under a lock of their own (never held for I/O), so
        # adding one from the bot's loop never waits for a cycle that waits for SQLite.
        self._silence_lock = threading.Lock()
        self._rules: dict[str, CompiledRule] = {}
        self._alerts = AlertRegistry(store)
        # what readers see without the lock (refreshed after every change): a read from
        # the bot's loop never waits for a cycle that waits for the SQLite write lock
        self._view = ReadView()
        self._manually_resolved: dict[str, str] = {}  # fingerprint -> rule name
        self._inactive: OrderedDict[str, Alert] = OrderedDict()  # id -> cleared pending alert
        self._restored_at: float | None = None
        # restored alerts whose timers wait for their rule's first evaluation -> when
        # rules were last evaluated before the restart
        self._down_at: dict[str, float] = {}
        self._mark_lock = threading.Lock()
        self._mark_due: float | None = None  # evaluation time of the next mark
        self._mark_value: float | None = None  # newest evaluation time, for the writer
        self._mark_written: float | None = None
        self._mark_write: Future[None] | None = None
        self._dirty: set[str] = set()  # ids of alerts to write to the store
        # events whose store write failed, with their alert (kept: it may leave memory)
        self._unsaved: list[tuple[AlertEvent, Alert | None]] = []
        self._gate = NotificationGate(max_notifications_per_rule_per_minute)
        self._listeners = ListenerSet()
        self.recorder = Recorder(recording_rules)
        """Recording rules, evaluated into the history before the alert rules each cycle."""
        self.on_rule_error: Callable[[str, BaseException], None] | None = None
        """Called with the rule's name and the error when an alert rule cannot be
        evaluated (instead of the internal-error report); its alerts keep their state."""
        self.after_rule: Callable[[str, list[Alert], float], None] | None = None
        """Called after each alert rule's evaluation with its name, its pending and
        firing alerts and the time, before the next rule is evaluated (a rule test
        writes Prometheus' ``ALERTS`` series there, which the following rules read)."""
        if on_event is not None:
            self._listeners.add(on_event, notifiable_only=False)
        for rule in rules:
            self.add_rule(rule)
        if store is not None:
            self._restore(store)
        if publish_telemetry:
            from otel_botmon.alerting import alert_telemetry

            alert_telemetry.track(self)
        from otel_botmon import _fork

        _fork.register(self)

    def _after_fork_in_child(self) -> None:
        """A thread of the parent (a cycle, a manual action) may have held the locks at
        the fork: the child's calls would wait forever."""
        from otel_botmon import _fork

        _fork.renew_locks(self)
        _fork.renew_locks(self._listeners)

    def close(self) -> None:
        """Stop publishing this evaluator's alerts as telemetry (the store is the caller's)."""
        from otel_botmon.alerting import alert_telemetry

        alert_telemetry.untrack(self)
        with self._mark_lock:
            final = self._mark_value != self._mark_written
        if final:  # a clean stop tells the next start exactly when evaluation stopped
            self._submit_mark()

    # --- rules ----------------------------------------------------------------------------

    def add_rule(self, rule: AlertRule) -> None:
        """Compile and add a rule: RuleSyntaxError (with the position) or ValueError (see
        ``CompiledRule.compile``), and ValueError when a rule of that name exists."""
        compiled = CompiledRule.compile(rule, self._compiler)
        with self._lock:
            if rule.name in self._rules or rule.name == CUSTOM_RULE_NAME:
                raise ValueError(f"an alert rule named {rule.name!r} is already registered")
            orphans = self._alerts.orphans
            for fp, alert in list(orphans.items()):
                if alert.rule_name == rule.name:
                    compiled.alerts[fp] = orphans.pop(fp)
            self._rules[rule.name] = compiled

    def remove_rule(self, name: str, now: float | None = None) -> bool:
        """Remove a rule and resolve its active alerts; False when there is no such rule."""
        now = self.clock() if now is None else now
        with self._lock:
            compiled = self._rules.pop(name, None)
            if compiled is None:
                return False
            events: list[AlertEvent] = []
            for alert in list(compiled.alerts.values()):
                self._end(alert, now, events, by=None, reason="rule removed")
            self._finish(events, now)
        self.dispatch(events)
        return True

    @property
    def rate_limited_total(self) -> dict[str, int]:
        """Rule name -> FIRED notifications held back by the rate limit (ever)."""
        return self._gate.rate_limited_total

    def referenced_metrics(self) -> frozenset[str] | None:
        """Names of every metric the enabled rules read, or None when a rule's condition
        cannot tell (then the caller should ingest everything)."""
        with self._lock:
            names: set[str] = set()
            for compiled in self._rules.values():
                if not compiled.rule.enabled:
                    continue
                if compiled.metrics is None:
                    return None
                names.update(compiled.metrics)
            names.update(self.recorder.referenced_metrics())
            return frozenset(names)

    @property
    def rules(self) -> list[AlertRule]:
        with self._lock:
            return [c.rule for c in self._rules.values()]

    # --- queries --------------------------------------------------------------------------

    def active(self) -> list[Alert]:
        """Pending and firing alerts, oldest first (never waits for a cycle)."""
        return list(self._view.active)

    def firing(self) -> list[Alert]:
        return [a for a in self.active() if a.state is AlertState.FIRING]

    def pending(self) -> list[Alert]:
        return [a for a in self.active() if a.state is AlertState.PENDING]

    def get(self, alert_id: str) -> Alert | None:
        """An alert by id: active ones and recently resolved or cleared pending ones
        (state INACTIVE) from memory, older ones from the store. Never waits for a
        cycle: the store read uses its own connection."""
        found = self._view.by_id.get(alert_id)
        if found is None and self.store is not None:
            return self.store.get_alert(alert_id)
        return found

    def _find(self, alert_id: str) -> Alert | None:
        return self._alerts.find(alert_id) or self._inactive.get(alert_id)

    def record_event(
        self, alert_id: str, kind: AlertEventKind, detail: Mapping[str, Any] | None = None,
        *, now: float | None = None,
    ) -> AlertEvent | None:
        """Append an event from outside the lifecycle (a notification attempt) to an
        alert's history: stored, and in memory when the alert is. None if the id is unknown.
        Not dispatched to listeners (it would loop back to the dispatcher)."""
        now = self.clock() if now is None else float(now)
        event = AlertEvent(alert_id=alert_id, kind=AlertEventKind(kind), at=now,
                           detail=dict(detail or {}), notify=False)
        with self._lock:
            alert = self._alerts.find(alert_id)
            if alert is None and (self.store is None or self.store.get_alert(alert_id) is None):
                return None
            if self.store is not None:
                try:
                    self.store.save_event(event, hooks=False)
                except Exception as exc:
                    report_internal_error("alerting.store", exc)
                    event.id = None
                    self._unsaved.append((event, alert))  # written with the next cycle
            if alert is not None:
                alert.events.append(event)
        return event

    def forget_resolved(self, before: float) -> None:
        """Drop resolved alerts older than ``before`` from memory (after a store prune)."""
        with self._lock:
            self._alerts.forget_resolved(before)
            self._refresh_view()

    def history_list(self, limit: int = 100) -> list[Alert]:
        """Alerts of every state, newest first (never waits for a cycle)."""
        if self.store is not None:
            return self.store.history(limit)
        view = self._view
        every = sorted(view.active + view.recent, key=lambda a: a.started_at, reverse=True)
        return every[: max(0, limit)]

    def firing_counts(self) -> dict[AlertSeverity, int]:
        """Firing alerts by current severity (every severity present, zeros included)."""
        return dict(self._view.firing)

    def _refresh_view(self) -> None:
        self._view = self._alerts.view(self._inactive)

    # --- listeners ------------------------------------------------------------------------

    def add_listener(self, callback: Listener, *, notifiable_only: bool = True) -> None:
        self._listeners.add(callback, notifiable_only=notifiable_only)

    def remove_listener(self, callback: Listener) -> None:
        self._listeners.remove(callback)

    def dispatch(self, events: Iterable[AlertEvent]) -> None:
        """Hand events to listeners (``evaluate`` does this unless told not to)."""
        self._listeners.dispatch(events, self.get)

    # --- evaluation -----------------------------------------------------------------------

    def evaluate(self, now: float | None = None, *, dispatch: bool = True) -> list[AlertEvent]:
        """Run every enabled rule once against the history at time ``now``.

        Returns the events of this cycle (also stored and dispatched). A rule whose
        evaluation raises (a metric that vanished or changed type) is reported as an
        internal error and skipped for this cycle; its alerts keep their state.
        """
        now = self.clock() if now is None else float(now)
        events: list[AlertEvent] = []
        with self._lock:
            if len(self.recorder):
                self.recorder.record(self.history, now)
            for compiled in list(self._rules.values()):
                if not compiled.rule.enabled:
                    continue
                try:
                    self._evaluate_rule(compiled, now, events)
                except Exception as exc:
                    if self.on_rule_error is not None:
                        self.on_rule_error(compiled.rule.name, exc)
                    else:
                        report_internal_error(f"alerting.rule.{compiled.rule.name}", exc)
                    continue
                if self.after_rule is not None:
                    try:
                        self.after_rule(compiled.rule.name, [
                            a for a in compiled.alerts.values()
                            if a.state in (AlertState.PENDING, AlertState.FIRING)], now)
                    except Exception as exc:  # the hook's, not the rule's
                        report_internal_error("alerting.after_rule", exc)
            self._resolve_orphans(now, events)
            self._escalate(now, events)
            self._finish(events, now)
        self._mark_evaluation(now)
        if dispatch:
            self.dispatch(events)
        return events

    def _evaluate_rule(
        self, compiled: CompiledRule, now: float, events: list[AlertEvent]
    ) -> None:
        rule = compiled.rule
        if self._down_at:
            self._restore_timers(compiled, now)
        samples = compiled.matches(self.history, now)
        seen: dict[str, float] = {}
        identified = []
        for sample in samples:
            value = float(sample.value)
            fp, labels = compiled.identity(sample.labels, value, self.externals)
            if fp in seen:
                # as Prometheus: two series that the rule's labels make one alert are an
                # error of the rule, raised before any alert changes
                raise DuplicateAlertError(
                    "vector contains metrics with the same labelset after applying "
                    "alert labels")
            seen[fp] = value
            identified.append((sample, value, fp, labels))
        for sample, value, fp, labels in identified:
            if fp in self._manually_resolved:
                continue
            alert = compiled.alerts.get(fp)
            if alert is None:
                alert = compiled.new_alert(labels, value, now, sample.labels, self.externals)
                self._dirty.add(alert.id)
                compiled.alerts[fp] = alert
                self._alerts.by_id[alert.id] = alert
                if rule.for_ > 0:
                    events.append(new_event(alert, AlertEventKind.PENDING, now, {"value": value}))
            # templates show the current value (Prometheus), -0 apart from 0
            if not _same_float(alert.value, value):
                alert.value = value
                if render(alert, rule, sample.labels, self.externals):
                    self._dirty.add(alert.id)
            alert.last_eval = now
            if alert.keep_firing_since is not None:
                alert.keep_firing_since = None
                self._dirty.add(alert.id)
            if alert.state is AlertState.PENDING and now - alert.started_at >= rule.for_:
                self._fire(alert, rule, now, events, sample.labels)
        # A manual resolve sticks until the condition has been seen clear once.
        for fp, owner in list(self._manually_resolved.items()):
            if owner == rule.name and fp not in seen:
                del self._manually_resolved[fp]
        missing = [a for fp, a in compiled.alerts.items() if fp not in seen]
        if not missing:
            return
        recovery = self._recovery_values(compiled, missing, now)
        for alert in missing:
            if alert.state is AlertState.PENDING:
                self._deactivate(alert, now, events)
                continue
            still = recovery.get(alert.fingerprint)
            if still is not None:
                alert.value = still
                alert.last_eval = now
                continue
            if rule.keep_firing_for > 0:
                if alert.keep_firing_since is None:
                    alert.keep_firing_since = now
                    self._dirty.add(alert.id)
                if now - alert.keep_firing_since < rule.keep_firing_for:
                    continue
            self._end(alert, now, events, by=None, reason="condition cleared")

    def _recovery_values(
        self, compiled: CompiledRule, missing: list[Alert], now: float
    ) -> dict[str, float]:
        """Fingerprints of firing alerts held by hysteresis -> their current value."""
        rule = compiled.rule
        threshold = rule.recovery_threshold
        if threshold is None or not any(a.state is AlertState.FIRING for a in missing):
            return {}
        above = compiled.condition.comparison in (">", ">=")
        held: dict[str, float] = {}
        for sample in compiled.values(self.history, now):
            value = float(sample.value)
            if (value > threshold) if above else (value < threshold):
                held[compiled.identity(sample.labels, value, self.externals)[0]] = value
        return held

    def _fire(self, alert: Alert, rule: AlertRule, now: float, events: list[AlertEvent],
              series: Mapping[str, str]) -> None:
        alert.state = AlertState.FIRING
        alert.fired_at = now
        render(alert, rule, series, self.externals)
        self._dirty.add(alert.id)
        events.append(new_event(alert, AlertEventKind.FIRED, now, {"value": alert.value}))

    def _end(
        self, alert: Alert, now: float, events: list[AlertEvent], *, by: str | None, reason: str,
        note: str | None = None,
    ) -> None:
        """Resolve an active alert and move it out of the active set."""
        was_firing = alert.state is AlertState.FIRING
        alert.state = AlertState.RESOLVED
        alert.resolved_at = now
        by = None if by is None else valid_text(by)
        alert.resolved_by = by
        alert.keep_firing_since = None
        self._dirty.add(alert.id)
        self._forget_active(alert)
        self._gate.last_resolved[alert.fingerprint] = now
        self._alerts.resolved.append(alert)
        if was_firing or by is not None:
            detail: dict[str, Any] = {"reason": reason, "value": alert.value}
            if by is not None:
                detail["by"] = by
            if note:
                detail["note"] = valid_text(str(note))
            events.append(new_event(alert, AlertEventKind.RESOLVED, now, detail))

    def _deactivate(self, alert: Alert, now: float, events: list[AlertEvent]) -> None:
        """A pending alert whose condition cleared: INACTIVE, out of the active set and the
        store (it never fired), and one ``inactive`` event that is never notified."""
        alert.state = AlertState.INACTIVE
        alert.last_eval = now
        self._forget_active(alert)
        self._dirty.discard(alert.id)
        self._inactive[alert.id] = alert
        while len(self._inactive) > _INACTIVE_KEPT:
            self._inactive.popitem(last=False)
        if self.store is not None:
            try:
                self.store.delete_alert(alert.id)
            except Exception as exc:
                report_internal_error("alerting.store", exc)
        event = new_event(alert, AlertEventKind.INACTIVE, now,
                          {"reason": "condition cleared before for", "value": alert.value})
        event.notify = False
        events.append(event)

    def _forget_active(self, alert: Alert) -> None:
        self._down_at.pop(alert.id, None)
        self._alerts.discard_active(alert)
        compiled = self._rules.get(alert.rule_name)
        if compiled is not None and compiled.alerts.get(alert.fingerprint) is alert:
            del compiled.alerts[alert.fingerprint]

    def _policy(self, alert: Alert) -> AlertRule:
        compiled = self._rules.get(alert.rule_name)
        return compiled.rule if compiled is not None else self.custom_policy

    def _escalate(self, now: float, events: list[AlertEvent]) -> None:
        for alert in list(self._alerts.by_id.values()):
            event = escalate_if_due(alert, self._policy(alert), now)
            if event is not None:
                self._dirty.add(alert.id)
                events.append(event)

    def _resolve_orphans(self, now: float, events: list[AlertEvent]) -> None:
        """Resolve restored alerts whose rule was not registered again within a grace
        period (rules may be registered after ``start()``)."""
        if self._restored_at is None or now - self._restored_at < _ORPHAN_GRACE_S:
            return
        for alert in list(self._alerts.orphans.values()):
            self._end(alert, now, events, by=None, reason="rule no longer registered")

    # --- notification policy ---------------------------------------------------------------

    def _finish(self, events: list[AlertEvent], now: float) -> None:
        """Decide what to notify, then store and publish this cycle's changes."""
        self._gate.apply(events, self._alerts.by_id.values(), self._find, now,
                         self._policy)
        self._dirty |= self._gate.changed
        self._gate.changed.clear()
        if events or self._dirty:
            self._refresh_view()  # before the store write, which may wait
        store = self.store
        if store is not None:
            # Events of an earlier cycle whose write failed (disk full, locked) go first,
            # through the commit hooks too: their notifications were handed to the
            # listeners then, but maybe never committed (a crash between this commit
            # and the listener's would store a FIRED with no notification). A
            # notification already queued is not queued twice (the event's key).
            retry, self._unsaved = self._unsaved, []
            try:
                with store.transaction():
                    for event, alert in retry:
                        if alert is not None and alert.state is not AlertState.INACTIVE:
                            # kept from then: it may have left memory (the hooks need it)
                            store.save_alert(alert)
                        store.save_event(event)
                    for event in events:
                        if event.kind is not AlertEventKind.INACTIVE:  # not in the store
                            store.save_event(event)
                    for alert_id in self._dirty:
                        alert = self._alerts.find(alert_id)
                        if alert is not None:
                            store.save_alert(alert)
            except Exception as exc:
                report_internal_error("alerting.store", exc)
                # kept, and written with the next change: a failed write is retried
                kept = [(e, self._find(e.alert_id)) for e in events
                        if e.kind is not AlertEventKind.INACTIVE]
                self._unsaved = (retry + kept)[-10_000:]
                for event, _ in self._unsaved:
                    event.id = None
                return self._publish(events)
        self._dirty.clear()
        self._publish(events)

    def _publish(self, events: list[AlertEvent]) -> None:
        for event in events:
            alert = self._find(event.alert_id)
            if alert is not None:
                alert.events.append(event)
        if events and self.publish_telemetry:
            from otel_botmon.alerting import alert_telemetry

            alert_telemetry.record_events(
                [(a, e) for e in events if (a := self._find(e.alert_id)) is not None]
            )

    # --- custom alerts and manual actions ----------------------------------------------------

    def create_custom_alert(
        self, title: str, message: str, severity: AlertSeverity = AlertSeverity.WARNING,
        alert_type: AlertType = AlertType.CUSTOM, labels: Mapping[str, str] | None = None,
        *, now: float | None = None, dispatch: bool = True,
    ) -> tuple[Alert, list[AlertEvent]]:
        """Fire an alert made in code; it then lives like any other (ack, resolve, escalate).

        Dedup: while an alert with the same title and labels is active, this returns that
        alert (its message and ``last_eval`` updated) and no new event. It never resolves
        by itself: call ``resolve``.
        """
        if not isinstance(title, str) or not title.strip():
            raise ValueError("create_custom_alert: title must be a non-empty string")
        severity = AlertSeverity(severity)
        now = self.clock() if now is None else float(now)
        # a bot's text may hold lone surrogates: valid Unicode before it is fingerprinted
        title = valid_text(title)
        all_labels = {valid_text(str(k)): valid_text(str(v)) for k, v in (labels or {}).items()}
        all_labels[ALERTNAME_LABEL] = title
        all_labels.setdefault(SEVERITY_LABEL, severity.value)
        fp = fingerprint(CUSTOM_RULE_NAME, all_labels)
        events: list[AlertEvent] = []
        with self._lock:
            existing = self._alerts.custom.get(fp)
            if existing is not None:
                existing.message = redact_text(message)
                existing.last_eval = now
                self._dirty.add(existing.id)
                self._finish(events, now)
                return existing, events
            alert = Alert.new(
                rule_name=CUSTOM_RULE_NAME, title=title, message=str(message),
                severity=severity, alert_type=AlertType(alert_type), labels=all_labels,
                started_at=now, channels=self.custom_policy.channels,
            )
            alert.last_eval = now
            self._alerts.custom[fp] = alert
            self._alerts.by_id[alert.id] = alert
            alert.state = AlertState.FIRING
            alert.fired_at = now
            self._dirty.add(alert.id)
            events.append(new_event(alert, AlertEventKind.FIRED, now, {"custom": True}))
            self._finish(events, now)
        if dispatch:
            self.dispatch(events)
        return alert, events

    def acknowledge(
        self, alert_id: str, user: str, *, now: float | None = None, dispatch: bool = True,
        note: str | None = None,
    ) -> tuple[bool, list[AlertEvent]]:
        """Record who acknowledged an alert (stops its escalation).

        Returns (False, []) for an unknown id; acknowledging twice keeps the first
        acknowledgement and returns (True, []).
        """
        now = self.clock() if now is None else float(now)
        events: list[AlertEvent] = []
        with self._lock:
            alert = self._alerts.by_id.get(alert_id) or self._alerts.resolved_alert(alert_id)
            if alert is None:
                return False, events
            if alert.acknowledged:
                return True, events
            user = valid_text(str(user))
            alert.acknowledged_by = user
            alert.acknowledged_at = now
            self._dirty.add(alert.id)
            detail = {"by": user}
            if note:
                detail["note"] = valid_text(str(note))
            events.append(new_event(alert, AlertEventKind.ACKNOWLEDGED, now, detail))
            self._finish(events, now)
        if dispatch:
            self.dispatch(events)
        return True, events

    def resolve(
        self, alert_id: str, user: str | None = None, *, now: float | None = None,
        dispatch: bool = True, note: str | None = None,
    ) -> tuple[bool, list[AlertEvent]]:
        """Resolve an alert by hand.

        Returns (False, []) for an unknown id and (True, []) for one already resolved.
        A rule's alert resolved while its condition still holds is not raised again until
        the condition has been seen clear once.
        """
        now = self.clock() if now is None else float(now)
        events: list[AlertEvent] = []
        with self._lock:
            alert = self._alerts.by_id.get(alert_id)
            if alert is None:
                return self._alerts.resolved_alert(alert_id) is not None, events
            if alert.rule_name in self._rules:
                self._manually_resolved[alert.fingerprint] = alert.rule_name
            self._end(alert, now, events, by=user or "", reason="resolved manually", note=note)
            self._finish(events, now)
        if dispatch:
            self.dispatch(events)
        return True, events

    # --- silences ---------------------------------------------------------------------------

    def add_silence(self, silence: Silence) -> Future[None]:
        """Silence matching alerts from now on; the returned future resolves once the
        silence is in the store (at once without a store).

        Never waits: not for an evaluation cycle (the silences are a dict replaced
        whole, which the cycle reads as it was), not for the disk or another process's
        lock (the store write runs on the store's writer thread, retried until it
        works). A crash before the future resolved loses the silence.
        """
        with self._silence_lock:
            self._gate.silences = {**self._gate.silences, silence.id: silence}
            return self._write_silence(lambda store: store.save_silence(silence))

    def remove_silence(self, silence_id: str) -> Future[None] | None:
        """End a silence now; None if unknown, else a future as :meth:`add_silence`'s
        (resolved once the silence is gone from the store)."""
        with self._silence_lock:
            silences = dict(self._gate.silences)
            if silences.pop(silence_id, None) is None:
                return None
            self._gate.silences = silences
            return self._write_silence(lambda store: store.delete_silence(silence_id))

    def _write_silence(self, write: Callable[[AlertStore], object]) -> Future[None]:
        store = self.store
        if store is None:
            done: Future[None] = Future()
            done.set_result(None)
            return done
        return store.write_behind(lambda: write(store))

    def silences(self) -> list[Silence]:
        return list(self._gate.silences.values())

    # --- restart ----------------------------------------------------------------------------

    def _restore(self, store: AlertStore) -> None:
        """Load active alerts (with their timers), cooldowns and silences from the store."""
        alerts = store.load_active()
        mark = store.last_evaluation_mark()
        with self._lock:
            self._restored_at = self.clock()
            self._gate.last_resolved.update(store.last_resolved())
            self._gate.silences = {s.id: s for s in store.load_silences()}
            for alert in alerts:
                self._alerts.by_id[alert.id] = alert
                if alert.rule_name != CUSTOM_RULE_NAME:
                    # an alert is stored when it changes, the mark about once a minute
                    seen = [t for t in (alert.last_eval, mark) if t is not None]
                    self._down_at[alert.id] = max(seen, default=alert.started_at)
                compiled = self._rules.get(alert.rule_name)
                if compiled is not None:
                    compiled.alerts[alert.fingerprint] = alert
                elif alert.rule_name == CUSTOM_RULE_NAME:
                    self._alerts.custom[alert.fingerprint] = alert
                else:
                    self._alerts.orphans[alert.fingerprint] = alert
            self._refresh_view()

    def _restore_timers(self, compiled: CompiledRule, now: float) -> None:
        """Apply ``for_state`` to the rule's restored alerts at its first evaluation
        after the restart (``now``)."""
        rule = compiled.rule
        policy = self.for_state
        for alert in compiled.alerts.values():
            down_at = self._down_at.pop(alert.id, None)
            if down_at is None:
                continue
            if alert.state is AlertState.PENDING:
                since = policy.active_since(for_s=rule.for_, active_at=alert.started_at,
                                            down_at=down_at, restart_at=now)
                if since != alert.started_at:
                    logger.info(
                        "alert %s (%s): pending since %.0f, evaluation stopped at %.0f; "
                        "its 'for' timer counts from %.0f after the restart", alert.id,
                        rule.name, alert.started_at, down_at, since)
                    alert.started_at = since
                    self._dirty.add(alert.id)
            elif alert.state is AlertState.FIRING and alert.keep_firing_since is not None:
                kept = policy.keep_firing_since(
                    since=alert.keep_firing_since, down_at=down_at, restart_at=now)
                if kept != alert.keep_firing_since:
                    alert.keep_firing_since = kept
                    self._dirty.add(alert.id)

    # --- evaluation marks -------------------------------------------------------------------

    def _mark_evaluation(self, now: float) -> None:
        """Let the store know rules ran at ``now``: one small write about every
        ``EVALUATION_MARK_INTERVAL_S`` of evaluation time, on the store's writer thread
        (the caller never waits on the disk). A write still queued takes the newest time.
        A store in memory does not outlive the process: nothing to tell."""
        if self.store is None or self.store.in_memory:
            return
        with self._mark_lock:
            self._mark_value = now
            due = self._mark_due
            if due is not None and due - EVALUATION_MARK_INTERVAL_S <= now < due:
                return
            self._mark_due = now + EVALUATION_MARK_INTERVAL_S
            if self._mark_write is not None and not self._mark_write.done():
                return
        self._submit_mark()

    def _submit_mark(self) -> None:
        store = self.store
        if store is None or store.in_memory:
            return

        def write() -> None:
            with self._mark_lock:
                value = self._mark_value
            if value is not None:
                store.save_evaluation_mark(value)
                with self._mark_lock:
                    self._mark_written = value

        try:
            future = store.write_behind(write)
        except RuntimeError:  # the store is closed: nothing to tell
            return
        with self._mark_lock:
            self._mark_write = future
