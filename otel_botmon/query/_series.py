"""One series' points in a bounded ring buffer: Prometheus' model of a series, used for
the copies ``MetricHistory.select`` hands out and as the reference in tests."""

from __future__ import annotations

from collections import deque

from otel_botmon.query._types import TIME_SLACK as _EPS
from otel_botmon.query._types import Value

__all__ = ["Series"]


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
