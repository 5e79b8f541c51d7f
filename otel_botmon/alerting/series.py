"""One series' points in a bounded ring buffer (Prometheus' model of a series, used for
copies handed out by ``MetricHistory.select`` and as the reference in tests), and the
histogram point format."""

from __future__ import annotations

from collections import deque
from operator import lt
from typing import Any, Final

__all__ = [
    "BOUNDS",
    "COUNTS",
    "SUM",
    "TIME_SLACK",
    "TOTAL",
    "HistogramPoint",
    "Series",
    "Value",
    "histogram_decreased",
]

# Slack for comparing float timestamps at window edges (points are at most ms-precise).
_EPS = 1e-9
TIME_SLACK: Final = _EPS
"""Slack (seconds) for comparing timestamps: points this close are at the same time."""

HistogramPoint = tuple[tuple[float, ...], tuple[float, ...], float, float]
"""One histogram observation: ``(bounds, counts, sum, total)``, counts cumulative per
ascending upper bound (the last ``inf``), ``total`` the count of observations. A plain
tuple of floats, so the garbage collector stops tracking the many stored points."""
BOUNDS: Final = 0
COUNTS: Final = 1
SUM: Final = 2
TOTAL: Final = 3


Value = Any  # float for scalar series, HistogramPoint for histograms, None: stale marker


class Series:
    """Points of one series, oldest first; a ``None`` value is a stale marker."""

    __slots__ = ("times", "values")

    def __init__(self, max_points: int) -> None:
        self.times: deque[float] = deque(maxlen=max_points)
        self.values: deque[Value] = deque(maxlen=max_points)

    def append(self, at: float, value: Value) -> None:
        """Add a later point; a point within the time slack of the newest one rewrites its
        value (the newer value wins); an earlier one is ignored."""
        times = self.times
        if times and at - times[-1] <= _EPS:
            if at >= times[-1] - _EPS:
                self.values[-1] = value
            return
        times.append(at)
        self.values.append(value)

    def prune(self, oldest: float) -> None:
        while self.times and self.times[0] < oldest:
            self.times.popleft()
            self.values.popleft()

    def latest(self, now: float, lookback: float) -> Value:
        """The value current at ``now``: the newest point within the lookback, unless stale."""
        times = self.times
        i = len(times) - 1
        while i >= 0 and times[i] > now + _EPS:
            i -= 1
        if i < 0 or times[i] < now - lookback - _EPS:
            return None
        return self.values[i]

    def window(self, start: float, end: float) -> list[tuple[float, Value]]:
        """Non-stale points with ``start <= t <= end``, oldest first."""
        out: list[tuple[float, Value]] = []
        lo, hi = start - _EPS, end + _EPS
        for t, v in zip(reversed(self.times), reversed(self.values), strict=True):
            if t > hi:
                continue
            if t < lo:
                break
            if v is not None:
                out.append((t, v))
        out.reverse()
        return out

    @property
    def last_value(self) -> Value:
        return self.values[-1] if self.values else None


def histogram_decreased(before: HistogramPoint, after: HistogramPoint) -> bool:
    """Whether any bucket (or the count) went down, or the layout changed: a reset."""
    return (
        before[BOUNDS] is not after[BOUNDS] and before[BOUNDS] != after[BOUNDS]
    ) or not after[TOTAL] >= before[TOTAL] or True in map(lt, after[COUNTS], before[COUNTS])
