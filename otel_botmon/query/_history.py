"""A bounded, in-process history of the SDK's metrics, read by the condition language.

The alert evaluator calls :meth:`MetricHistory.ingest` once per cycle with the cumulative
``MetricsData`` of the SDK's ``InMemoryMetricReader``. Points older than ``max_age_s`` are
dropped, and each metric keeps at most ``max_points_per_series`` collection times, so
memory stays bounded whatever the bot does.

The data model follows Prometheus so that conditions mean the same thing here and in a
Prometheus server fed by OTLP:

* counters, up-down counters and gauges are scalar series ``(name, labels) -> (t, value)``;
* a histogram point is kept whole, as cumulative bucket counts by upper bound ``le`` (the
  last one ``+inf``) plus sum and count: what Prometheus scrapes as ``*_bucket``,
  ``*_sum`` and ``*_count`` at one instant;
* a series that stops being reported gets a *stale marker*, after which it no longer has a
  current value (Prometheus' staleness handling), so a vanished metric never crashes or
  lingers; a metric that changes its type starts a fresh history.

Storage is by column: a metric has one time axis (a row per collection) and a column per
series, so one collection is one row, appended at C speed when the SDK hands the same
streams in the same order as last time (it does, cycle after cycle). For every series
the history tracks since which row it has a real value in every row with no counter
reset or NaN in between (its *clean run*), and since which row it has a real value in
every row whatever the values (its *span*). Queries over windows inside the clean runs
(rates of counters) or spans (instant values, gauges) of all selected series are
computed from two rows at once; any other series is read point by point, with the same
result. Each series still has points of its own (written at any time, in any order of
series, rewritten within the time slack); a point within the time slack (1 ns) of a
stored collection time is stored at that time.

Labels are the data points' attributes with values converted to strings. Queries made at
the same ``now`` share a memo (:meth:`MetricHistory.memo`), so many rules over the same
metric cost little more than one.
"""

from __future__ import annotations

import logging
import math
import sys
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Container, Hashable, Iterable, Mapping, Sequence
from itertools import accumulate, chain, compress, repeat
from operator import add, attrgetter, ge, is_, itemgetter, lt, not_
from typing import Any, Final, NamedTuple

from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Histogram,
    MetricsData,
    Sum,
)

from otel_botmon.query._series import Series
from otel_botmon.query._types import (
    BOUNDS,
    COUNTS,
    EMPTY_LABELS,
    SUM,
    TIME_SLACK,
    TOTAL,
    HistogramPoint,
    Labels,
    MetricKind,
    Sample,
    Value,
    histogram_decreased,
)

__all__ = ["Edges", "MetricHistory", "Selection"]

logger = logging.getLogger(__name__)

# Prometheus' default lookback: an instant query sees the latest point at most this old.
DEFAULT_LOOKBACK_S = 300.0

_EPS: Final = TIME_SLACK
_NO_RUN: Final = sys.maxsize  # a column without a clean run up to the newest row


class _StaleMarker:
    """The entry of a series that stopped being reported (shown as ``None`` outside)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "STALE"


STALE: Final = _StaleMarker()
# A row entry is one of: None (no point for this series at this time), STALE, a float
# (scalar metrics) or a HistogramPoint.

_ATTRIBUTES = attrgetter("attributes")
_SUM_OF = itemgetter(SUM)
_TOTAL_OF = itemgetter(TOTAL)
_BOUNDS_OF = itemgetter(BOUNDS)
_COUNTS_OF = itemgetter(COUNTS)
_VALUE = attrgetter("value")

# a fresh row at the end, written by the current batch (ingest or one add_point)
_FRESH, _NEWEST, _OLDER, _INSERTED = range(4)


class _Family:
    """One metric: a time axis, a row of entries per time, a column per series."""

    __slots__ = (
        "base", "broken", "delta_totals", "dirty", "fresh", "from_sdk", "index", "kind",
        "labels", "last", "last_flat", "last_t", "layout", "rows", "run", "selections", "span",
        "streams", "times", "tombstones", "version",
    )

    def __init__(self, kind: MetricKind) -> None:
        self.kind = kind
        self.from_sdk = False
        self.times: list[float] = []
        # rows[r][c]; a row is as wide as the columns were when it was written: a list,
        # or for a whole collect of a scalar metric a compact array of doubles
        self.rows: list[Any] = []
        self.base = 0  # serial number of rows[0] (rows dropped from the front add to it)
        self.labels: list[Labels | None] = []  # per column; None: removed (see _compact)
        self.index: dict[Labels, int] = {}
        # per column: the newest real value (None: stale or none); a list, or the array
        # row of the last whole-row collect
        self.last: Any = []
        self.last_t: list[float] = []  # per column: time of its newest entry
        # per column: serial of the first row of its clean run (real values in every row
        # from there to the newest, no decrease/NaN between them), or _NO_RUN
        self.run: list[int] = []
        # per column: serial of the first row of its span (a real value in every row from
        # there to the newest, whatever the values), or _NO_RUN; span <= run
        self.span: list[int] = []
        self.broken: set[int] = set()  # columns whose span (and run) is _NO_RUN
        self.dirty: set[int] = set()  # columns whose run must be recomputed from the rows
        self.fresh = -1  # serial of the row the current write batch appended
        self.tombstones = 0
        self.version = 0  # changes when columns are added or removed (selection caches)
        self.selections: dict[Hashable, Selection] = {}
        # running totals for delta-temporality input, so the history is always cumulative
        self.delta_totals: dict[Labels, Any] = {}
        # id(SDK attributes object) -> (that object, its column): the attribute dicts of
        # cumulative SDK streams are the same objects every collect, so each is converted
        # to labels once (the object is kept referenced, so its id stays unique)
        self.streams: dict[int, tuple[Any, int]] = {}
        # the attribute objects of the last collect when they were exactly the columns in
        # order: the next collect with the same ones is appended as a whole row
        self.layout: list[Any] | None = None
        # (the `last` list, the bucket counts of its points end to end) after a whole-row
        # collect of a histogram: the next one compares counts without gathering them
        self.last_flat: tuple[list[Any], array[float]] | None = None

    def live_columns(self) -> Iterable[int]:
        return (c for c, labels in enumerate(self.labels) if labels is not None)


class Selection(NamedTuple):
    """The series of one metric a selector matches: columns and their labels."""

    family: _Family
    cols: list[int]
    labels: list[Labels]
    version: int
    pick: Callable[[Sequence[Any]], Sequence[Any]] | None  # None: the whole row

    @property
    def kind(self) -> MetricKind:
        """The kind of the selected metric."""
        return self.family.kind


class Edges(NamedTuple):
    """A window over a selection: the series clean throughout it share ``n`` points from
    ``t0`` to ``t1``, with ``first`` and ``last`` values; ``others`` are the remaining
    series that have points in it, with those points (stale markers left out)."""

    n: int
    t0: float
    t1: float
    labels: Sequence[Labels]
    first: Sequence[Value]
    last: Sequence[Value]
    others: list[tuple[Labels, list[tuple[float, Value]]]]


_NO_EDGES: Final = Edges(0, 0.0, 0.0, (), (), (), [])

LabelFilter = Callable[[Labels], bool]


class MetricHistory:
    """Bounded history of metric points, queried by conditions.

    ``max_age_s`` bounds how far back points are kept (windows longer than this see only
    what is left); ``max_points_per_series`` bounds how many collection times a metric
    keeps (its series share them).
    """

    def __init__(self, max_age_s: float = 3600.0, max_points_per_series: int = 720) -> None:
        if not (max_age_s > 0 and math.isfinite(max_age_s)):
            raise ValueError(f"max_age_s must be a positive number, got {max_age_s!r}")
        if max_points_per_series < 2:
            raise ValueError("max_points_per_series must be at least 2")
        self.max_age_s = float(max_age_s)
        self.max_points_per_series = int(max_points_per_series)
        self.lookback_s = DEFAULT_LOOKBACK_S
        self._families: dict[str, _Family] = {}
        self._version = 0  # bumped on every write: invalidates the memo
        # (now, data version) and its results, swapped as one object so that a reader
        # never pairs one cycle's state with another's results
        self._memo: tuple[tuple[float, int], dict[Hashable, Any]] | None = None
        self._last_prune: float | None = None
        self._conflicts: set[str] = set()  # metric names warned about (see _conflict)
        self.absent_components: set[tuple[str, str, Labels]] = set()
        """(metric, "count" or "sum", labels) of histograms read without that series
        (rule tests given only ``_bucket`` series): ``h.count``/``h.sum`` have none."""

    # --- input ---------------------------------------------------------------------

    def ingest(
        self, data: MetricsData | None, at: float, only: Container[str] | None = None
    ) -> None:
        """Record one collection of the SDK's metrics taken at time ``at`` (seconds).

        Sums become counters (monotonic) or up-down counters, gauges stay gauges,
        explicit-bucket histograms keep whole points; other point types are ignored.
        Series (or whole metrics) seen before but missing now get a stale marker.
        With ``only``, metrics whose name it does not contain are skipped (no rule reads
        them): they are neither stored nor marked stale.
        """
        self._version += 1
        # the same metric may come from several scopes (meters): gather its points
        groups: dict[str, tuple[MetricKind, bool, list[Any]]] = {}
        for rm in getattr(data, "resource_metrics", None) or ():
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    name = metric.name
                    if only is not None and name not in only:
                        continue
                    kind = _kind_of(metric.data)
                    if kind is None:
                        continue
                    delta = (getattr(metric.data, "aggregation_temporality", None)
                             == AggregationTemporality.DELTA)
                    group = groups.get(name)
                    if group is None:
                        groups[name] = (kind, delta, list(metric.data.data_points))
                    elif group[0] is kind and group[1] == delta:
                        group[2].extend(metric.data.data_points)
                    else:  # the same name with another type: the first one is kept
                        self._conflict(name, group[0], kind)
        for name, (kind, delta, points) in groups.items():
            self._ingest_metric(name, kind, delta, points, at)
        for name, family in self._families.items():
            if family.from_sdk and name not in groups and (only is None or name in only):
                self._mark_all_stale(family, at)  # the whole metric vanished
        # pruning walks every series: do it when a tenth of max_age has passed
        if self._last_prune is None or at - self._last_prune >= self.max_age_s / 10:
            self.prune(at)

    def _conflict(self, name: str, kept: MetricKind, other: MetricKind) -> None:
        if name not in self._conflicts:
            self._conflicts.add(name)
            logger.warning(
                "otel_botmon: metric %r is reported twice in one collect, as %s and as %s "
                "(or with two temporalities); alert conditions read the first only",
                name, kept.value, other.value,
            )

    def _ingest_metric(
        self, name: str, kind: MetricKind, delta: bool, points: list[Any], at: float
    ) -> None:
        family = self._family(name, kind)
        family.from_sdk = True
        if not delta and self._append_whole_row(family, points, at):
            return
        family.layout = None
        try:
            columns = self._write_points(family, points, at, delta)
            written = set(columns)
            for c in family.live_columns():
                if c not in written and family.last[c] is not None:
                    self._put(family, c, at, STALE)  # no longer reported: a stale marker
        finally:  # even after a bad point: the row's gaps are recorded
            self._close_row(family)
        # the next collect can be appended as a whole row when the streams were exactly
        # the columns, in order
        if (not delta and family.tombstones == 0 and len(columns) == len(family.labels)
                and columns == list(range(len(columns)))):
            family.layout = list(map(_ATTRIBUTES, points))

    def _append_whole_row(self, family: _Family, points: list[Any], at: float) -> bool:
        """The hot path: the same streams as last time, in order, at a later time.
        Appends one row; False (nothing done) when the collect is not of that shape."""
        layout = family.layout
        times = family.times
        if (layout is None or len(points) != len(layout) or family.tombstones
                or (times and at - times[-1] <= _EPS)):
            return False
        if list(map(_ATTRIBUTES, points)) != layout:  # compares identity first
            return False
        histogram = family.kind is MetricKind.HISTOGRAM
        flat = None
        values: Any
        if histogram:
            values, flat = _histogram_points(points)
        else:
            values = array("d", list(map(_VALUE, points)))  # from a list: faster
        serial = self._new_row(family, at, values)
        run, span = family.run, family.span
        for c in family.broken:  # reported again: a new span and clean run start here
            run[c] = span[c] = serial
        family.broken.clear()
        last = family.last
        try:
            if not histogram:
                regular = False not in map(ge, values, last)
            elif (flat is not None and family.last_flat is not None
                    and family.last_flat[0] is last):
                # the previous row was a whole collect too, with its counts end to end
                regular = _histograms_regular(last, values, flat, family.last_flat[1])
            else:
                regular = _histograms_regular(last, values)
        except TypeError:  # some series had no previous value
            regular = False
        if not regular:  # a reset or NaN here: those columns' windows from the next row
            for c in _irregular_columns(last, values, histogram):
                run[c] = serial + 1
        # the row itself for scalars (an array: copied into a list on the next write)
        family.last = values.copy() if histogram else values
        family.last_flat = None if flat is None else (family.last, flat)
        family.last_t = [times[-1]] * len(values)
        return True

    def _write_points(
        self, family: _Family, points: Iterable[Any], at: float, delta: bool
    ) -> list[int]:
        """Write each data point to its column (any shape of collect); the columns."""
        streams = family.streams
        if len(streams) > 4 * len(family.labels) + 1000:
            streams.clear()  # attribute sets came and went; start over
        lookup = streams.get
        histogram = family.kind is MetricKind.HISTOGRAM
        totals = family.delta_totals
        columns = []
        for point in points:
            attrs = point.attributes
            hit = lookup(id(attrs))
            c = hit[1] if hit is not None and hit[0] is attrs else self._stream(family, attrs)
            value: Any = _histogram_point(point) if histogram else float(point.value)
            if delta:  # keep running totals, so the history is always cumulative
                labels = family.labels[c]
                assert labels is not None
                previous = totals.get(labels)
                if histogram:
                    value = _add_histograms(previous, value)
                elif previous is not None:
                    value += previous
                totals[labels] = value
            self._put(family, c, at, value)
            columns.append(c)
        return columns

    def _stream(self, family: _Family, attrs: Mapping[str, Any] | None) -> int:
        c = self._column(family, _labels_of(attrs))
        family.streams[id(attrs)] = (attrs, c)
        return c

    def _mark_all_stale(self, family: _Family, at: float) -> None:
        marked = False
        for c in family.live_columns():
            if family.last[c] is not None:
                self._put(family, c, at, STALE)
                marked = True
        if marked:
            self._close_row(family)
        family.layout = None

    def add_point(
        self,
        name: str,
        labels: Mapping[str, str],
        value: float,
        at: float,
        kind: MetricKind = MetricKind.GAUGE,
    ) -> None:
        """Record one scalar point (synthetic input: rule tests, custom metrics).

        ``kind`` matters for a new metric only; a different kind than the stored one
        starts a fresh history for ``name``.
        """
        self._version += 1
        family = self._family(name, kind)
        self._put(family, self._column(family, Labels.of(labels)), at, float(value))
        self._close_row(family)

    def add_histogram_point(
        self,
        name: str,
        labels: Mapping[str, str],
        boundaries: Iterable[float],
        bucket_counts: Iterable[float],
        sum_: float,
        count: float,
        at: float,
        *,
        cumulative: bool = False,
    ) -> None:
        """Record one histogram point. ``bucket_counts`` are OpenTelemetry-style (one per
        bucket, ``len(boundaries) + 1``, not cumulative) unless ``cumulative`` is true, in
        which case ``boundaries`` are all upper bounds (include ``inf`` for the last one)."""
        self._version += 1
        family = self._family(name, MetricKind.HISTOGRAM)
        if cumulative:
            point: HistogramPoint = (
                tuple(float(b) for b in boundaries), tuple(float(c) for c in bucket_counts),
                float(sum_), float(count),
            )
        else:
            bounds = (*(float(b) for b in boundaries), math.inf)
            counts = tuple(accumulate(float(c) for c in bucket_counts))
            point = (bounds, counts, float(sum_), float(count))
        self._put(family, self._column(family, Labels.of(labels)), at, point)
        self._close_row(family)

    def mark_stale(self, name: str, labels: Mapping[str, str], at: float) -> None:
        """Record that series ``name{labels}`` stopped existing at ``at``."""
        family = self._families.get(name)
        if family is None:
            return
        c = family.index.get(Labels.of(labels))
        if c is not None:
            self._version += 1
            self._put(family, c, at, STALE)
            self._close_row(family)

    def prune(self, now: float) -> None:
        """Drop points older than ``max_age_s`` before ``now`` and series left empty."""
        self._version += 1
        self._last_prune = now
        oldest = now - self.max_age_s
        for name in list(self._families):
            family = self._families[name]
            k = bisect_left(family.times, oldest)
            if k:
                del family.times[:k]
                del family.rows[:k]
                family.base += k
            first = family.times[0] if family.times else math.inf
            for c in list(family.live_columns()):
                if family.last_t[c] < first:  # its newest entry is gone: so are all
                    self._remove_column(family, c)
            if family.tombstones:
                _compact(family)
            if not family.index:
                del self._families[name]

    # --- writing one entry -----------------------------------------------------------

    def _put(self, family: _Family, c: int, at: float, value: Any) -> None:
        """``Series.append`` for column ``c``: a later point, or (within the time slack
        of its newest one) a rewrite of that one; an earlier point is ignored."""
        newest_t = family.last_t[c]
        times = family.times
        if not times or newest_t < times[0] - _EPS:
            newest_t = family.last_t[c] = -math.inf  # its rows were dropped: no entries
        if at - newest_t <= _EPS:
            if at < newest_t - _EPS:
                return  # out of order: history only moves forward
            r = _row_index(family.times, newest_t)
            _writable_row(family, r)[c] = value  # the newer value wins
            _writable_last(family)[c] = None if value is STALE else value
            family.dirty.add(c)
            return
        r, where = self._row_for(family, at)
        if r < 0:
            return  # older than every row a full metric keeps
        row = _writable_row(family, r)
        if len(row) <= c:
            row.extend([None] * (c + 1 - len(row)))
        row[c] = value
        family.last_t[c] = family.times[r]
        previous = family.last[c]
        _writable_last(family)[c] = None if value is STALE else value
        if where == _FRESH:
            if c in family.dirty:
                return  # recomputed from the rows before the next query
            serial = family.base + r
            if value is STALE:
                _break(family, c)
                return
            if family.span[c] == _NO_RUN:
                family.run[c] = family.span[c] = serial
                family.broken.discard(c)
            if _irregular(previous, value):
                family.run[c] = serial + 1
        elif where == _NEWEST:
            family.dirty.add(c)  # filled into a row written before: recompute
        else:  # in an older row: the rows after it lack this series
            _break(family, c)
            family.dirty.discard(c)

    def _row_for(self, family: _Family, at: float) -> tuple[int, int]:
        """The row for a point at ``at`` (new at the end, existing, or inserted)."""
        times = family.times
        if not times or at > times[-1] + _EPS:
            serial = self._new_row(family, at, [None] * len(family.labels))
            family.fresh = serial
            return len(times) - 1, _FRESH
        last = len(times) - 1
        if at >= times[last] - _EPS:
            return last, (_FRESH if family.fresh == family.base + last else _NEWEST)
        k = bisect_left(times, at - _EPS)
        if times[k] <= at + _EPS:
            return k, _OLDER
        full = len(times) >= self.max_points_per_series
        if full and k == 0:
            return -1, _OLDER  # older than every row kept: nothing to write
        # a new time before the newest: every later serial moves up by one, and series
        # whose clean run spans it lack a point there
        times.insert(k, at)
        family.rows.insert(k, [None] * len(family.labels))
        inserted = family.base + k
        run, span = family.run, family.span
        for col, start in enumerate(span):
            if start != _NO_RUN:
                if start <= inserted:
                    _break(family, col)
                else:
                    span[col] = start + 1
                    run[col] += 1
        if family.fresh >= inserted:
            family.fresh += 1
        if full:  # the bound holds: the oldest row goes
            del times[0]
            del family.rows[0]
            family.base += 1
            k -= 1
        return k, _INSERTED

    def _new_row(self, family: _Family, at: float, row: list[Any]) -> int:
        """Append a row at the end (dropping the oldest beyond the bound); its serial."""
        serial = family.base + len(family.rows)
        family.times.append(at)
        family.rows.append(row)
        excess = len(family.rows) - self.max_points_per_series
        if excess > 0:
            del family.times[:excess]
            del family.rows[:excess]
            family.base += excess
        return serial

    def _close_row(self, family: _Family) -> None:
        """End a write batch: series without an entry in the row it appended have a gap
        there (their clean run ends)."""
        serial = family.fresh
        if serial < 0:
            return
        family.fresh = -1
        r = serial - family.base
        if r < 0:
            return
        row = family.rows[r]
        width = len(row)
        span = family.span
        for c in family.live_columns():
            if (c >= width or row[c] is None) and span[c] != _NO_RUN:
                _break(family, c)

    def _recompute(self, family: _Family) -> None:
        """Spans and clean runs of the dirty columns, from the rows themselves."""
        rows = family.rows
        decreased: Callable[[Any, Any], bool] = (
            _histogram_irregular if family.kind is MetricKind.HISTOGRAM else _scalar_decreased
        )
        for c in family.dirty:
            r = len(rows) - 1
            current = _entry(rows[r], c) if r >= 0 else None
            if current is None or current is STALE:
                _break(family, c)
                continue
            run = -1 if current != current else None  # a NaN newest: no clean run
            while r > 0:
                before = _entry(rows[r - 1], c)
                if before is None or before is STALE:
                    break
                if run is None and decreased(before, current):
                    run = r
                current = before
                r -= 1
            family.span[c] = family.base + r
            family.run[c] = family.base + (r if run is None else len(rows) if run < 0 else run)
            family.broken.discard(c)
        family.dirty.clear()

    # --- columns -------------------------------------------------------------------

    def _family(self, name: str, kind: MetricKind) -> _Family:
        family = self._families.get(name)
        if family is None or family.kind is not kind:
            # a metric that changed its type starts over: old points mean something else
            family = _Family(kind)
            self._families[name] = family
        return family

    def _column(self, family: _Family, labels: Labels) -> int:
        c = family.index.get(labels)
        if c is None:
            c = family.index[labels] = len(family.labels)
            family.labels.append(labels)
            _writable_last(family).append(None)
            family.last_t.append(-math.inf)
            family.run.append(_NO_RUN)
            family.span.append(_NO_RUN)
            family.broken.add(c)
            family.version += 1
            family.layout = None
        return c

    def _remove_column(self, family: _Family, c: int) -> None:
        labels = family.labels[c]
        assert labels is not None
        del family.index[labels]
        family.delta_totals.pop(labels, None)
        family.labels[c] = None
        family.tombstones += 1
        family.version += 1
        family.layout = None

    # --- queries -------------------------------------------------------------------

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
            self._recompute(family)
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
                           family.version, _picker(cols, len(labels)))
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

    def _latest_entry(self, family: _Family, c: int, r: int, oldest: float) -> Value:
        times = family.times
        newest = family.last_t[c]
        if newest < oldest:
            return None
        if newest <= times[r]:
            r = _row_index(times, newest)  # its newest entry (none after it)
        rows = family.rows
        while r >= 0 and times[r] >= oldest:
            entry = _entry(rows[r], c)
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
            return _NO_EDGES
        i = bisect_left(times, start - _EPS, 0, j + 1)
        if i > j:
            return _NO_EDGES
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

    def _points(self, family: _Family, c: int, i: int, j: int) -> list[tuple[float, Value]]:
        serial = family.base + i
        times = family.times
        if family.span[c] <= serial:  # a value in every row
            return list(zip(times[i:j + 1], map(itemgetter(c), family.rows[i:j + 1]),
                            strict=True))
        out = []
        rows = family.rows
        for r in range(i, j + 1):
            entry = _entry(rows[r], c)
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
                entry = _entry(row, c)
                if entry is not None:
                    series.append(t, None if entry is STALE else _copy(entry))
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


def _copy(entry: Value) -> Value:
    """A stored value as handed out: a histogram point's counts as a tuple."""
    if entry.__class__ is tuple:
        return (entry[BOUNDS], tuple(entry[COUNTS]), entry[SUM], entry[TOTAL])
    return entry


def _writable_row(family: _Family, r: int) -> list[Any]:
    """Row ``r`` as a list (an array row of a whole collect is converted once)."""
    row = family.rows[r]
    if row.__class__ is not list:
        row = family.rows[r] = list(row)
    return row


def _writable_last(family: _Family) -> list[Any]:
    """The newest values as a list (after a whole-row collect they are its array)."""
    family.last_flat = None  # about to change: no longer the counts of a whole row
    last = family.last
    if last.__class__ is not list:
        last = family.last = list(last)
    return last


def _picker(cols: list[int], width: int) -> Callable[[Sequence[Any]], Sequence[Any]] | None:
    if len(cols) == width and cols == list(range(width)):
        return None  # every column, in order: the row itself
    if len(cols) == 1:
        c = cols[0]
        return lambda row: (row[c],)
    if not cols:
        return lambda row: ()
    return itemgetter(*cols)


def _entry(row: Sequence[Any], c: int) -> Any:
    return row[c] if c < len(row) else None


def _row_index(times: list[float], t: float) -> int:
    """Index of the row at time ``t`` (which exists)."""
    return bisect_left(times, t - _EPS)


def _break(family: _Family, c: int) -> None:
    """Column ``c`` lacks a real value in the newest row: no span, no clean run."""
    family.run[c] = family.span[c] = _NO_RUN
    family.broken.add(c)


def _scalar_decreased(before: float, after: float) -> bool:
    return not after >= before  # or NaN on either side


def _histograms_regular(
    last: Sequence[HistogramPoint], values: Sequence[HistogramPoint],
    counts: Sequence[float] | None = None, last_counts: Sequence[float] | None = None,
) -> bool:
    """No point of ``values`` is a reset or NaN after ``last`` (see
    :func:`_histogram_irregular`); in C-level passes when the layouts are the same
    objects, as an SDK collect hands them. ``counts`` and ``last_counts``, when given,
    are the two rows' bucket counts end to end (compared without gathering them)."""
    if not all(map(is_, map(_BOUNDS_OF, values), map(_BOUNDS_OF, last))):
        return (True not in map(histogram_decreased, last, values)
                and False not in map(ge, map(_SUM_OF, values), map(_SUM_OF, last)))
    if counts is None or last_counts is None or len(counts) != len(last_counts):
        counts = list(chain.from_iterable(map(_COUNTS_OF, values)))
        last_counts = list(chain.from_iterable(map(_COUNTS_OF, last)))
    return (False not in map(ge, map(_TOTAL_OF, values), map(_TOTAL_OF, last))
            and False not in map(ge, map(_SUM_OF, values), map(_SUM_OF, last))
            and True not in map(lt, counts, last_counts))


def _irregular_columns(last: Sequence[Value], values: Sequence[Value],
                       histogram: bool) -> Iterable[int]:
    """The columns whose new value breaks their clean run (see :func:`_irregular`);
    for scalars that all had a value, in C-level passes (gauges go down every collect)."""
    if not histogram:
        try:
            # `not value >= previous` holds for a decrease and for a NaN on either side
            return list(compress(range(len(values)), map(not_, map(ge, values, last))))
        except TypeError:  # some series had no previous value
            pass
    return [c for c, value in enumerate(values) if _irregular(last[c], value)]


def _irregular(previous: Value, value: Value) -> bool:
    """Whether ``value`` after ``previous`` (None: no previous value) breaks a clean
    run: a decrease (counter reset), a NaN, or a changed histogram layout."""
    if value.__class__ is tuple:
        return previous is not None and _histogram_irregular(previous, value)
    return (previous is not None and not value >= previous) or value != value


def _histogram_irregular(before: HistogramPoint, after: HistogramPoint) -> bool:
    """A reset of any bucket or the count, a new layout, or a sum that went down (or is
    NaN): ``rate(h.sum[w])`` reads that as a counter reset."""
    return histogram_decreased(before, after) or not after[SUM] >= before[SUM]


def _compact(family: _Family) -> None:
    """Renumber the columns without the removed ones (rows, per-column state)."""
    keep = [c for c, labels in enumerate(family.labels) if labels is not None]
    renumber = {old: new for new, old in enumerate(keep)}
    width = len(family.labels)
    pick = _picker(keep, width)
    rows = []
    for row in family.rows:
        if len(row) < width:
            row = [*row, *[None] * (width - len(row))]
        rows.append(row if pick is None else list(pick(row)))
    family.rows = rows
    family.labels = [family.labels[c] for c in keep]
    family.last = [family.last[c] for c in keep]
    family.last_t = [family.last_t[c] for c in keep]
    family.run = [family.run[c] for c in keep]
    family.span = [family.span[c] for c in keep]
    family.broken = {renumber[c] for c in family.broken if c in renumber}
    family.dirty = {renumber[c] for c in family.dirty if c in renumber}
    family.index = {labels: c for c, labels in enumerate(family.labels)}  # type: ignore[misc]
    family.tombstones = 0
    family.version += 1
    family.streams.clear()
    family.selections.clear()
    family.layout = None


def _kind_of(data: object) -> MetricKind | None:
    if isinstance(data, Sum):
        return MetricKind.COUNTER if data.is_monotonic else MetricKind.UP_DOWN_COUNTER
    if isinstance(data, Gauge):
        return MetricKind.GAUGE
    if isinstance(data, Histogram):
        return MetricKind.HISTOGRAM
    return None


def _labels_of(attributes: Mapping[str, Any] | None) -> Labels:
    if not attributes:
        return EMPTY_LABELS
    return Labels((k, _label_value(v)) for k, v in attributes.items())


def _label_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(_label_value(v) for v in value)
    return str(value)


_BOUNDS_CACHE: dict[tuple[float, ...], tuple[float, ...]] = {}
# id(SDK explicit_bounds object) -> (that object, its bounds): an aggregation hands the
# same boundaries object with every point
_BOUNDS_BY_ID: dict[int, tuple[Any, tuple[float, ...]]] = {}


def _histogram_point(point: Any) -> HistogramPoint:
    explicit = point.explicit_bounds
    hit = _BOUNDS_BY_ID.get(id(explicit))
    bounds = hit[1] if hit is not None and hit[0] is explicit else _bounds_of(explicit)
    return bounds, _counts(point.bucket_counts), float(point.sum), float(point.count)


def _counts(bucket_counts: Iterable[float]) -> Sequence[float]:
    """Cumulative bucket counts as one array of doubles: 8 bytes a bucket, where a tuple
    of a busy histogram's counts (ints past the small ones Python caches) costs 40."""
    return array("d", list(accumulate(bucket_counts)))  # from a list: faster than an iterator


_EXPLICIT_BOUNDS = attrgetter("explicit_bounds")
_BUCKET_COUNTS = attrgetter("bucket_counts")
_SUM = attrgetter("sum")
_COUNT = attrgetter("count")


def _histogram_points(points: list[Any]) -> tuple[list[HistogramPoint], array[float] | None]:
    """``_histogram_point`` of each point, and when they share one bounds object (as the
    points of one SDK instrument do) their cumulative counts end to end (else None).

    Shared bounds take the fast way: every point's counts accumulated into one array
    (one conversion to doubles for the whole collect), then cut into each point's
    array (copies at C speed), several times faster than an array per point."""
    explicit = list(map(_EXPLICIT_BOUNDS, points))
    if not explicit or not all(map(is_, explicit, repeat(explicit[0]))):
        return list(map(_histogram_point, points)), None
    bounds = _histogram_point(points[0])[BOUNDS]
    width = len(bounds)
    flat = array("d", list(chain.from_iterable(
        map(accumulate, map(_BUCKET_COUNTS, points)))))
    if len(flat) != width * len(points):  # a point whose counts do not fit its bounds
        return list(map(_histogram_point, points)), None
    return list(zip(
        repeat(bounds), [flat[k:k + width] for k in range(0, len(flat), width)],
        map(float, map(_SUM, points)), map(float, map(_COUNT, points)),
    )), flat


def _bounds_of(explicit: Any) -> tuple[float, ...]:
    key = tuple(explicit)
    bounds = _BOUNDS_CACHE.get(key)
    if bounds is None:
        bounds = (*(float(b) for b in key), math.inf)
        if len(_BOUNDS_CACHE) < 256:  # a handful of bucket layouts in practice
            _BOUNDS_CACHE[key] = bounds
    if isinstance(explicit, tuple):  # immutable: safe to remember by identity
        if len(_BOUNDS_BY_ID) >= 256:
            _BOUNDS_BY_ID.clear()
        _BOUNDS_BY_ID[id(explicit)] = (explicit, bounds)
    return bounds


def _add_histograms(previous: HistogramPoint | None, delta: HistogramPoint) -> HistogramPoint:
    if previous is None or previous[BOUNDS] != delta[BOUNDS]:
        return delta
    return (
        delta[BOUNDS],
        array("d", map(add, previous[COUNTS], delta[COUNTS])),
        previous[SUM] + delta[SUM],
        previous[TOTAL] + delta[TOTAL],
    )
