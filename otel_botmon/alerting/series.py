"""One series' points in a bounded ring buffer, and the histogram point format."""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import deque
from collections.abc import Iterable, Iterator
from operator import lt
from typing import Any, Final, TypeVar

__all__ = [
    "BOUNDS",
    "COUNTS",
    "SUM",
    "TIME_SLACK",
    "TOTAL",
    "HistogramPoint",
    "Series",
    "Value",
    "edges_of",
    "histogram_decreased",
]

# Slack for comparing float timestamps at window edges (points are at most ms-precise).
_EPS = 1e-9
TIME_SLACK: Final = _EPS
"""Slack (seconds) for comparing timestamps, for code that inlines the methods below."""

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

    __slots__ = ("irregular_at", "last_level", "times", "values")

    def __init__(self, max_points: int) -> None:
        self.times: deque[float] = deque(maxlen=max_points)
        self.values: deque[Value] = deque(maxlen=max_points)
        # time of the newest stale marker, decrease (counter reset) or rewrite: windows
        # starting after it need only their first and last point (see ``edges``)
        self.irregular_at = -math.inf
        self.last_level: Value = None  # the previous real value

    def append(self, at: float, value: Value) -> None:
        times = self.times
        if times and at - times[-1] <= _EPS:
            self._rewrite(at, value)
            return
        times.append(at)
        self.values.append(value)
        previous = self.last_level
        self.last_level = value  # None after a stale marker: there is no previous level
        # most checks first (this runs for every point of every collect)
        if value.__class__ is float:
            if (previous is not None and not value >= previous) or value != value:
                self.irregular_at = at  # a decrease (counter reset), or NaN
        elif value is None:
            self.irregular_at = at
        elif value.__class__ is tuple:
            if previous is not None and histogram_decreased(previous, value):
                self.irregular_at = at
        elif (previous is not None and not value >= previous) or value != value:
            self.irregular_at = at

    def _rewrite(self, at: float, value: Value) -> None:
        if at < self.times[-1] - _EPS:
            return  # out of order: history only moves forward
        self.values[-1] = value  # same time again: the newer value wins
        self.irregular_at = at
        self.last_level = None

    def edges(self, start: float, end: float) -> tuple[int, float, Value, float, Value] | None:
        """``(n, first_t, first_value, last_t, last_value)`` of the points in
        ``[start, end]`` when nothing irregular (stale marker, reset) lies inside, so that
        the first and last point tell the whole change; ``None`` otherwise."""
        times = self.times
        j = len(times) - 1
        hi = end + _EPS
        while j >= 0 and times[j] > hi:
            j -= 1
        if j < 0:
            return (0, 0.0, None, 0.0, None)
        i = bisect_left(times, start - _EPS, 0, j + 1)
        if i > j:
            return (0, 0.0, None, 0.0, None)
        if self.irregular_at >= times[i] - _EPS:
            return None
        values = self.values
        return (j - i + 1, times[i], values[i], times[j], values[j])

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


_K = TypeVar("_K")


def edges_of(
    selection: Iterable[tuple[_K, Series]], start: float, end: float
) -> Iterator[tuple[_K, Series, int, float, Value, float, Value]]:
    """For each ``(key, series)``, ``(key, series, n, first_t, first_value, last_t,
    last_value)`` as :meth:`Series.edges` gives them, with ``n == -1`` where that returns
    ``None`` (something irregular inside: read the whole window) and ``n == 0`` for an
    empty window.

    Series ingested together have their points at the same times, so the window's
    first and last index of the previous series are checked on the next one before
    searching: the result is the same, without a bisection per series.
    """
    lo = start - _EPS
    hi = end + _EPS
    i = j = -1  # the previous series' window indices (-1: none)
    ti = tj = 0.0  # and its times there
    for key, series in selection:
        times = series.times
        m = len(times)
        # the same indices hold when the times there are equal and the neighbours
        # outside still fall outside the window (times strictly ascend)
        if not (0 <= j < m and times[j] == tj and (j == m - 1 or times[j + 1] > hi)
                and times[i] == ti and (i == 0 or times[i - 1] < lo)):
            j = m - 1
            while j >= 0 and times[j] > hi:
                j -= 1
            if j < 0:
                i = j = -1
                yield key, series, 0, 0.0, None, 0.0, None
                continue
            i = bisect_left(times, lo, 0, j + 1)
            if i > j:
                i = j = -1
                yield key, series, 0, 0.0, None, 0.0, None
                continue
            ti = times[i]
            tj = times[j]
        if series.irregular_at >= ti - _EPS:
            yield key, series, -1, 0.0, None, 0.0, None
            continue
        values = series.values
        yield key, series, j - i + 1, ti, values[i], tj, values[j]
