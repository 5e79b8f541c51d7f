"""Reading the history: selections of series, current values, window edges and points.

:class:`HistoryReads` is the query half of
:class:`~otel_botmon.query._history.MetricHistory` (which writes); the evaluator reads
through it and never sees the rows themselves.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Hashable, Sequence
from operator import itemgetter
from typing import Any, Final

from otel_botmon.query._columns import (
    NO_EDGES,
    STALE,
    Edges,
    Family,
    Selection,
    copy_entry,
    entry_at,
    picker,
    recompute,
    row_index,
)
from otel_botmon.query._series import Series
from otel_botmon.query._types import (
    TIME_SLACK,
    HistogramPoint,
    Labels,
    MetricKind,
    Sample,
    Value,
)

__all__ = ["DEFAULT_LOOKBACK_S", "HistoryReads", "LabelFilter"]

# Prometheus' default lookback: an instant query sees the latest point at most this old.
DEFAULT_LOOKBACK_S = 300.0

_EPS: Final = TIME_SLACK

LabelFilter = Callable[[Labels], bool]


class HistoryReads:
    """The queries of a :class:`~otel_botmon.query._history.MetricHistory`."""

    _families: dict[str, Family]
    _version: int  # bumped on every write: invalidates the memo
    # (now, data version) and its results, swapped as one object so that a reader never
    # pairs one cycle's state with another's results
    _memo: tuple[tuple[float, int], dict[Hashable, Any]] | None
    lookback_s: float
    max_points_per_series: int
    absent_components: set[tuple[str, str, Labels]]

    def memo(self, now: float) -> dict[Hashable, Any]:
        """A dict for results computed at ``now``; emptied when ``now`` or the data change.
        Callers key it by what they computed (e.g. a sub-expression)."""
        state = (now, self._version)
        current = self._memo
        if current is None or current[0] != state:
            current = self._memo = (state, {})
        return current[1]

    def metric_names(self) -> set[str]:
        """Names of the metrics that currently have points."""
        return {name for name, family in self._families.items() if family.index}

    def kind(self, name: str) -> MetricKind | None:
        family = self._families.get(name)
        return family.kind if family is not None else None

    def series_count(self) -> int:
        """Number of series that have points (a histogram series counts once)."""
        return sum(
            sum(1 for c in f.live_columns() if f.last_t[c] >= f.times[0] - _EPS)
            for f in self._families.values() if f.times
        )

    def selection(
        self, name: str, kind: MetricKind | None = None, where: LabelFilter | None = None,
        where_key: Hashable | None = None,
    ) -> Selection | None:
        """The series of ``name`` (of ``kind``, if given) whose labels pass ``where``;
        with a ``where_key`` naming the filter, cached until series come or go."""
        family = self._families.get(name)
        if family is None or (kind is not None and family.kind is not kind):
            return None
        if family.dirty:
            recompute(family)
        key = ("all",) if where is None else where_key
        if key is not None:
            cached = family.selections.get(key)
            if cached is not None and cached.version == family.version:
                return cached
        labels = family.labels
        cols = [
            c for c, lab in enumerate(labels) if lab is not None and (where is None or where(lab))
        ]
        chosen = Selection(family, cols, [labels[c] for c in cols],  # type: ignore[misc]
                           family.version, picker(cols, len(labels)))
        if key is not None:
            family.selections[key] = chosen
        return chosen

    def current(
        self, selection: Selection, now: float
    ) -> tuple[Sequence[Labels], Sequence[Value], list[tuple[Labels, Value]]]:
        """The value of each selected series at ``now``: its newest point at or before
        ``now`` within the lookback, unless that is a stale marker. Returned as labels and
        values of the series that have one in the same row, plus ``(labels, value)`` of
        the others."""
        family = selection.family
        times = family.times
        r = bisect_right(times, now + _EPS) - 1
        cols = selection.cols
        if r < 0 or not cols:
            return (), (), []
        oldest = now - self.lookback_s - _EPS
        if times[r] < oldest:
            return (), (), []  # nothing at all within the lookback
        serial = family.base + r
        span = family.span
        row = family.rows[r]
        if max(map(span.__getitem__, cols)) <= serial:  # all have a value in row r
            pick = selection.pick
            return selection.labels, (row if pick is None else pick(row)), []
        labels: list[Labels] = []
        values: list[Value] = []
        others: list[tuple[Labels, Value]] = []
        for c, lab in zip(cols, selection.labels, strict=True):
            if span[c] <= serial:
                labels.append(lab)
                values.append(row[c])
                continue
            value = self._latest_entry(family, c, r, oldest)
            if value is not None:
                others.append((lab, value))
        return labels, values, others

    def _latest_entry(self, family: Family, c: int, r: int, oldest: float) -> Value:
        times = family.times
        newest = family.last_t[c]
        if newest < oldest:
            return None
        if newest <= times[r]:
            r = row_index(times, newest)  # its newest entry (none after it)
        rows = family.rows
        while r >= 0 and times[r] >= oldest:
            entry = entry_at(rows[r], c)
            if entry is not None:
                return None if entry is STALE else entry
            r -= 1
        return None

    def edges(
        self, selection: Selection, start: float, end: float, *, resets: bool = True
    ) -> Edges:
        """The window ``[start, end]`` over ``selection`` (see :class:`Edges`). With
        ``resets`` (counters), a series whose value went down or was NaN inside the window
        is among ``others``, whose points are read one by one."""
        family = selection.family
        times = family.times
        j = bisect_right(times, end + _EPS) - 1
        if j < 0 or not selection.cols:
            return NO_EDGES
        i = bisect_left(times, start - _EPS, 0, j + 1)
        if i > j:
            return NO_EDGES
        serial = family.base + i
        run = family.run if resets else family.span
        cols = selection.cols
        rows = family.rows
        n = j - i + 1
        if max(map(run.__getitem__, cols)) <= serial:  # clean throughout: rows i and j
            pick = selection.pick
            if pick is None:
                return Edges(n, times[i], times[j], selection.labels, rows[i], rows[j], [])
            return Edges(n, times[i], times[j], selection.labels, pick(rows[i]),
                         pick(rows[j]), [])
        labels: list[Labels] = []
        first: list[Value] = []
        last: list[Value] = []
        others = []
        row_i, row_j = rows[i], rows[j]
        for c, lab in zip(cols, selection.labels, strict=True):
            if run[c] <= serial:
                labels.append(lab)
                first.append(row_i[c])
                last.append(row_j[c])
                continue
            if family.last_t[c] < times[i]:
                continue  # no entry since before the window
            points = self._points(family, c, i, j)
            if points:
                others.append((lab, points))
        return Edges(n, times[i], times[j], labels, first, last, others)

    def points(
        self, selection: Selection, start: float, end: float
    ) -> list[tuple[Labels, list[tuple[float, Value]]]]:
        """Each selected series' points with ``start <= t <= end`` (stale markers left
        out), for those that have any."""
        family = selection.family
        times = family.times
        j = bisect_right(times, end + _EPS) - 1
        if j < 0:
            return []
        i = bisect_left(times, start - _EPS, 0, j + 1)
        if i > j:
            return []
        out = []
        for c, lab in zip(selection.cols, selection.labels, strict=True):
            if family.last_t[c] < times[i]:
                continue
            points = self._points(family, c, i, j)
            if points:
                out.append((lab, points))
        return out

    def _points(self, family: Family, c: int, i: int, j: int) -> list[tuple[float, Value]]:
        serial = family.base + i
        times = family.times
        if family.span[c] <= serial:  # a value in every row
            return list(zip(times[i:j + 1], map(itemgetter(c), family.rows[i:j + 1]),
                            strict=True))
        out = []
        rows = family.rows
        for r in range(i, j + 1):
            entry = entry_at(rows[r], c)
            if entry is not None and entry is not STALE:
                out.append((times[r], entry))
        return out

    def select(
        self, name: str, kind: MetricKind | None = None, where: LabelFilter | None = None,
        where_key: Hashable | None = None,
    ) -> list[tuple[Labels, Series]]:
        """The series of ``name`` (of ``kind``, if given) whose labels pass ``where``,
        each as a :class:`Series` copy of its points (stale markers as ``None``)."""
        chosen = self.selection(name, kind, where, where_key)
        if chosen is None:
            return []
        family = chosen.family
        out = []
        for c, lab in zip(chosen.cols, chosen.labels, strict=True):
            series = Series(self.max_points_per_series)
            for t, row in zip(family.times, family.rows, strict=True):
                entry = entry_at(row, c)
                if entry is not None:
                    series.append(t, None if entry is STALE else copy_entry(entry))
            if series.times:  # its rows may have gone (max_points_per_series)
                out.append((lab, series))
        return out

    def latest(
        self, name: str, now: float, where: LabelFilter | None = None
    ) -> list[Sample]:
        """The current value of every matching scalar series of ``name`` at ``now``.

        A series is current when it has a point within the lookback (5 min, as in
        Prometheus) that is not a stale marker. A histogram name yields nothing.
        """
        chosen = self.selection(name, None, where)
        if chosen is None or chosen.family.kind is MetricKind.HISTOGRAM:
            return []
        labels, values, others = self.current(chosen, now)
        pairs = [*zip(labels, values, strict=True), *others]
        return [Sample(lab, value) for lab, value in pairs]

    def window(
        self, name: str, start: float, end: float, where: LabelFilter | None = None
    ) -> list[tuple[Labels, list[tuple[float, float]]]]:
        """Points with ``start <= t <= end`` of every matching scalar series of ``name``."""
        chosen = self.selection(name, None, where)
        if chosen is None or chosen.family.kind is MetricKind.HISTOGRAM:
            return []
        return self.points(chosen, start, end)

    def histogram_windows(
        self, name: str, start: float, end: float, where: LabelFilter | None = None
    ) -> list[tuple[Labels, list[tuple[float, HistogramPoint]]]]:
        """Whole histogram points in ``[start, end]`` of every matching histogram."""
        chosen = self.selection(name, MetricKind.HISTOGRAM, where)
        return [] if chosen is None else self.points(chosen, start, end)
