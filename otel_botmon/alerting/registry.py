"""Where alert instances live: active ones in memory, recent resolved ones in a bounded
buffer, every one in the store (when there is one).

Not thread-safe on its own: the evaluator calls it under its lock.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from otel_botmon.alerting.model import Alert, AlertSeverity, AlertState
from otel_botmon.alerting.store import AlertStore

RESOLVED_KEPT = 500  # resolved alerts kept in memory (all of them are in the store)


@dataclass(frozen=True, slots=True)
class ReadView:
    """The alerts as of the last change, for readers on other threads (the bot's event
    loop, the metrics reader): built under the evaluator's lock after every change and
    read without it, so a read never waits for a cycle that waits for SQLite."""

    active: tuple[Alert, ...] = ()
    """Pending and firing alerts, oldest first."""
    by_id: Mapping[str, Alert] = field(default_factory=lambda: MappingProxyType({}))
    """Every alert in memory by id: active, recently resolved, recently cleared."""
    recent: tuple[Alert, ...] = ()
    """Recently resolved alerts kept in memory."""
    firing: Mapping[AlertSeverity, int] = field(
        default_factory=lambda: MappingProxyType(dict.fromkeys(AlertSeverity, 0)))


class AlertRegistry:
    """Active alerts by id, custom and orphaned ones by fingerprint, recent resolved ones."""

    def __init__(self, store: AlertStore | None) -> None:
        self.store = store
        self.by_id: dict[str, Alert] = {}
        """Pending and firing alerts."""
        self.custom: dict[str, Alert] = {}
        """Active custom alerts by fingerprint (dedup of ``create_custom_alert``)."""
        self.orphans: dict[str, Alert] = {}
        """Restored active alerts whose rule is not registered (yet)."""
        self.resolved: deque[Alert] = deque(maxlen=RESOLVED_KEPT)

    def find(self, alert_id: str) -> Alert | None:
        """An active or recently resolved alert from memory (no store access)."""
        found = self.by_id.get(alert_id)
        if found is not None:
            return found
        for alert in reversed(self.resolved):
            if alert.id == alert_id:
                return alert
        return None

    def get(self, alert_id: str) -> Alert | None:
        """An alert of any state: from memory, else from the store (with its events)."""
        found = self.find(alert_id)
        if found is None and self.store is not None:
            return self.store.get_alert(alert_id)
        return found

    def resolved_alert(self, alert_id: str) -> Alert | None:
        """A resolved alert, loaded into memory from the store if needed (to change it)."""
        found = self.find(alert_id)
        if found is not None:
            return None if found.active else found
        if self.store is None:
            return None
        stored = self.store.get_alert(alert_id)
        if stored is not None and not stored.active:
            self.resolved.append(stored)
            return stored
        return None

    def discard_active(self, alert: Alert) -> None:
        """Take a resolved or dropped alert out of the active collections."""
        self.by_id.pop(alert.id, None)
        if self.custom.get(alert.fingerprint) is alert:
            del self.custom[alert.fingerprint]
        if self.orphans.get(alert.fingerprint) is alert:
            del self.orphans[alert.fingerprint]

    def active(self) -> list[Alert]:
        """Pending and firing alerts, oldest first."""
        return sorted(self.by_id.values(), key=lambda a: a.started_at)

    def firing_counts(self) -> dict[AlertSeverity, int]:
        """Firing alerts by current severity (every severity present, zeros included)."""
        counts = dict.fromkeys(AlertSeverity, 0)
        for alert in self.by_id.values():
            if alert.state is AlertState.FIRING:
                counts[alert.severity] += 1
        return counts

    def view(self, cleared: Mapping[str, Alert]) -> ReadView:
        """A snapshot for lock-free readers; ``cleared`` are the pending alerts that
        became inactive (kept by the evaluator)."""
        by_id = {a.id: a for a in self.resolved}
        by_id.update(cleared)
        by_id.update(self.by_id)
        return ReadView(active=tuple(self.active()), by_id=MappingProxyType(by_id),
                        recent=tuple(self.resolved),
                        firing=MappingProxyType(self.firing_counts()))

    def history(self, limit: int) -> list[Alert]:
        """Alerts of every state, newest first (from the store when there is one)."""
        if self.store is not None:
            return self.store.history(limit)
        every = list(self.by_id.values()) + list(self.resolved)
        return sorted(every, key=lambda a: a.started_at, reverse=True)[: max(0, limit)]

    def forget_resolved(self, before: float) -> None:
        """Drop resolved alerts older than ``before`` from memory."""
        kept = [a for a in self.resolved if (a.resolved_at or 0.0) >= before]
        self.resolved.clear()
        self.resolved.extend(kept)
