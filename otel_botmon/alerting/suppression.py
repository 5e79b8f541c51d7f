"""Which alert events reach notification channels: silences, inhibition, cooldown, rate limits.

- FIRED is notified unless the alert is *silenced* (an active :class:`Silence` matches its
  labels), *inhibited* (it is INFO/WARNING and a firing CRITICAL/EMERGENCY alert has the
  same ``health.component`` or ``component`` label), in *cooldown* (an alert with the same
  fingerprint resolved less than its rule's ``cooldown_minutes`` before now) or *rate
  limited* (its rule already notified ``max_per_minute`` FIRED events in the last 60 s).
  The alert keeps its state either way. While it still fires, it is checked again every
  cycle, and its FIRED is notified once no reason applies (``detail.deferred``).
  Rate-limited FIREDs are counted (``rate_limited_total``, once per alert) and logged; the
  next notified FIRED of the rule carries ``detail.rate_limited_before``.
- ESCALATED, ACKNOWLEDGED and RESOLVED are notified only for alerts whose FIRED was
  notified (``suppressed="not_notified"`` otherwise); ESCALATED not while silenced.
- PENDING is never notified.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from otel_botmon.alerting.model import (
    Alert,
    AlertEvent,
    AlertEventKind,
    AlertRule,
    AlertSeverity,
    AlertState,
    Silence,
)

logger = logging.getLogger("otel_botmon.alerting")

_INHIBITING = (AlertSeverity.CRITICAL, AlertSeverity.EMERGENCY)
_INHIBITABLE = (AlertSeverity.INFO, AlertSeverity.WARNING)
_RATE_WINDOW_S = 60.0


def new_event(
    alert: Alert, kind: AlertEventKind, at: float, detail: dict[str, Any] | None = None,
) -> AlertEvent:
    return AlertEvent(alert_id=alert.id, kind=kind, at=at, detail=dict(detail or {}))


class NotificationGate:
    """Marks each event ``notify``/``suppressed`` and produces deferred FIRED events.

    Not thread-safe on its own: the evaluator calls it under its lock.
    """

    def __init__(self, max_per_minute: int = 20) -> None:
        if max_per_minute < 1:
            raise ValueError("max_notifications_per_rule_per_minute must be >= 1")
        self.max_per_minute = max_per_minute
        self.silences: dict[str, Silence] = {}
        """Replaced whole on a change, never changed in place (read without a lock)."""
        self.last_resolved: dict[str, float] = {}
        """Fingerprint -> when its latest instance resolved (cooldowns)."""
        self.rate_limited_total: dict[str, int] = {}
        """Rule name -> FIRED notifications held back by the rate limit (ever)."""
        self.changed: set[str] = set()
        """Ids of alerts whose ``notified``/``suppressed`` changed (to store)."""
        self._notified_at: dict[str, deque[float]] = {}
        self._held_since_last: dict[str, int] = {}
        self._warned_at: dict[str, float] = {}

    def apply(self, events: list[AlertEvent], active: Iterable[Alert],
              find: Callable[[str], Alert | None], now: float,
              policy: Callable[[Alert], AlertRule]) -> None:
        """Decide ``notify`` for ``events`` and append deferred FIRED events to it.

        ``policy(alert)`` gives the rule (cooldown) of an alert. It is passed per call,
        not kept, so the gate holds no reference back to its evaluator.
        """
        active = list(active)
        inhibited = _inhibited_components(active)
        for event in events:
            alert = find(event.alert_id)
            if alert is None:
                continue
            if event.kind is AlertEventKind.PENDING:
                event.notify = False
            elif event.kind is AlertEventKind.FIRED:
                self._decide_fired(alert, event, now, inhibited, policy)
            elif not alert.notified:
                event.notify, event.suppressed = False, "not_notified"
            elif event.kind is AlertEventKind.ESCALATED:
                silence = self.silenced_by(alert, now)
                if silence is not None:
                    event.notify, event.suppressed = False, f"silenced:{silence}"
        self._deferred(active, now, inhibited, events, policy)

    def _decide_fired(
        self, alert: Alert, event: AlertEvent, now: float, inhibited: set[str],
        policy: Callable[[Alert], AlertRule],
    ) -> None:
        reason = self._reason(alert, now, inhibited, policy)
        if reason is None:
            self._mark_notified(alert, event, now)
            return
        event.notify, event.suppressed = False, reason
        alert.suppressed = reason
        alert.notified = False
        self.changed.add(alert.id)
        if reason == "rate_limited":
            self._count_rate_limited(alert, now)

    def _deferred(self, active: list[Alert], now: float, inhibited: set[str],
                  events: list[AlertEvent], policy: Callable[[Alert], AlertRule]) -> None:
        this_cycle = {e.alert_id for e in events if e.kind is AlertEventKind.FIRED}
        for alert in active:
            if (alert.state is not AlertState.FIRING or alert.notified
                    or alert.id in this_cycle or alert.suppressed is None):
                continue
            reason = self._reason(alert, now, inhibited, policy)
            if reason is not None:
                if reason != alert.suppressed:
                    if reason == "rate_limited":
                        self._count_rate_limited(alert, now)
                    alert.suppressed = reason
                    self.changed.add(alert.id)
                continue
            event = new_event(alert, AlertEventKind.FIRED, now, {
                "value": alert.value, "deferred": True, "was_suppressed": alert.suppressed,
            })
            self._mark_notified(alert, event, now)
            events.append(event)

    def _mark_notified(self, alert: Alert, event: AlertEvent, now: float) -> None:
        alert.notified = True
        alert.suppressed = None
        self.changed.add(alert.id)
        self._notified_at.setdefault(alert.rule_name, deque()).append(now)
        held = self._held_since_last.pop(alert.rule_name, 0)
        if held:
            event.detail["rate_limited_before"] = held

    def _reason(self, alert: Alert, now: float, inhibited: set[str],
                policy: Callable[[Alert], AlertRule]) -> str | None:
        silence = self.silenced_by(alert, now)
        if silence is not None:
            return f"silenced:{silence}"
        if alert.severity in _INHIBITABLE and alert.component in inhibited:
            return "inhibited"
        resolved_at = self.last_resolved.get(alert.fingerprint)
        # only an instance that resolved before this one started opens a cooldown
        if (resolved_at is not None and resolved_at <= alert.started_at
                and now - resolved_at < policy(alert).cooldown_minutes * 60.0):
            return "cooldown"
        window = self._notified_at.setdefault(alert.rule_name, deque())
        while window and window[0] <= now - _RATE_WINDOW_S:
            window.popleft()
        if len(window) >= self.max_per_minute:
            return "rate_limited"
        return None

    def _count_rate_limited(self, alert: Alert, now: float) -> None:
        name = alert.rule_name
        self.rate_limited_total[name] = self.rate_limited_total.get(name, 0) + 1
        self._held_since_last[name] = self._held_since_last.get(name, 0) + 1
        last = self._warned_at.get(name)
        if last is None or now - last >= _RATE_WINDOW_S:  # one warning per rule per minute
            self._warned_at[name] = now
            logger.warning(
                "alert rule %r exceeded %d notifications per minute: alerts held back "
                "(%d so far); each is notified when the rate allows if it still fires",
                name, self.max_per_minute, self.rate_limited_total[name],
            )

    def silenced_by(self, alert: Alert, now: float) -> str | None:
        """Id of an active silence matching the alert's labels, else None."""
        for silence in self.silences.values():
            if silence.matches(alert.labels, now):
                return silence.id
        return None


def _inhibited_components(alerts: Iterable[Alert]) -> set[str]:
    components: set[str] = set()
    for alert in alerts:
        if alert.state is AlertState.FIRING and alert.severity in _INHIBITING:
            component = alert.component
            if component:
                components.add(component)
    return components
