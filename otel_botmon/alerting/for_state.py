"""Restoring the ``for`` and ``keep_firing_for`` timers of alerts after a restart.

While the process was down nobody checked the conditions, so the outage counts neither
as time a condition held nor as time it was clear. The rules are Prometheus' (its
``RestoreForState``, flags ``--rules.alert.for-outage-tolerance`` and
``--rules.alert.for-grace-period``), applied at the first evaluation of the alert's rule
after the restart (``restart_at``); ``down_at`` is when its rules were last evaluated
before (the store's evaluation mark, at most a mark interval old after a SIGKILL, which
only makes the outage look longer):

- a rule whose ``for`` is shorter than the grace period starts its pending alerts' timer
  anew at the restart (they wait their whole ``for`` again);
- after an outage longer than the tolerance the timer starts anew as well;
- otherwise the timer goes on where it stopped (moved forward by the outage), and an alert
  fires no sooner than ``restart_at + grace period``.

Firing alerts keep firing (their notification went out; the next evaluation resolves them
if the condition no longer holds). A firing alert that was in its ``keep_firing_for``
window when the process stopped goes on with that window where it stopped, or starts it
anew after an outage longer than the tolerance (Prometheus does not keep this timer at
all: such an alert is simply gone after its restart).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["ForStatePolicy"]


@dataclass(frozen=True)
class ForStatePolicy:
    """How a restart treats the timers of alerts restored from the store."""

    outage_tolerance_s: float = 3600.0
    """The longest outage after which a pending alert's ``for`` timer goes on (Prometheus'
    ``--rules.alert.for-outage-tolerance``, default 1h); after a longer one it starts anew."""
    grace_period_s: float = 600.0
    """A restored pending alert of a rule whose ``for`` is at least this long fires no
    sooner than this long after the restart (``--rules.alert.for-grace-period``, 10m)."""

    def __post_init__(self) -> None:
        for name in ("outage_tolerance_s", "grace_period_s"):
            value = getattr(self, name)
            if (isinstance(value, bool) or not isinstance(value, (int, float))
                    or not math.isfinite(value) or value < 0):
                raise ValueError(
                    f"alert for-state {name} must be a finite number of seconds >= 0, "
                    f"got {value!r}")

    def active_since(
        self, *, for_s: float, active_at: float, down_at: float, restart_at: float,
    ) -> float:
        """Where a restored pending alert's ``for`` timer counts from: it fires at the
        first evaluation at or after the returned time plus ``for_s``."""
        down_at = min(down_at, restart_at)  # a clock that went back: no outage
        active_at = min(active_at, down_at)
        if for_s < self.grace_period_s:
            return restart_at
        outage = restart_at - down_at
        if outage > self.outage_tolerance_s:
            return restart_at
        remaining = for_s - (down_at - active_at)
        if remaining <= 0:
            return active_at  # it was due to fire when the process stopped
        if remaining < self.grace_period_s:
            return restart_at + self.grace_period_s - for_s
        return active_at + outage

    def keep_firing_since(
        self, *, since: float, down_at: float, restart_at: float,
    ) -> float | None:
        """Where a restored firing alert's ``keep_firing_for`` window counts from; None
        when it starts anew (at the next evaluation that finds the condition clear)."""
        down_at = min(down_at, restart_at)
        outage = restart_at - down_at
        if outage > self.outage_tolerance_s:
            return None
        return min(since, down_at) + outage
