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

Storage is by column (:mod:`otel_botmon.query._columns`): a collection is one row,
appended at C speed when the SDK hands the same streams in the same order as last
time. Reading is :class:`~otel_botmon.query._history_reads.HistoryReads`; converting
SDK points, :mod:`otel_botmon.query._sdk_points`.

Labels are the data points' attributes with values converted to strings. Queries made at
the same ``now`` share a memo (:meth:`MetricHistory.memo`), so many rules over the same
metric cost little more than one.
"""

from __future__ import annotations

import logging
import math
import threading
from array import array
from bisect import bisect_left
from collections.abc import Container, Hashable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from itertools import accumulate
from operator import ge
from typing import Any, Final

from opentelemetry.sdk.metrics.export import AggregationTemporality, MetricsData

from otel_botmon import _fork
from otel_botmon.query._columns import (
    NO_RUN,
    STALE,
    Family,
    break_run,
    compact,
    histograms_regular,
    irregular,
    irregular_columns,
    row_index,
    writable_last,
    writable_row,
)
from otel_botmon.query._history_reads import DEFAULT_LOOKBACK_S, HistoryReads
from otel_botmon.query._sdk_points import (
    ATTRIBUTES,
    VALUE,
    add_histograms,
    histogram_point,
    histogram_points,
    kind_of,
    labels_of,
)
from otel_botmon.query._types import TIME_SLACK, HistogramPoint, Labels, MetricKind

__all__ = ["MetricHistory"]

logger = logging.getLogger(__name__)

_EPS: Final = TIME_SLACK

# a fresh row at the end, written by the current batch (ingest or one add_point)
_FRESH, _NEWEST, _OLDER, _INSERTED = range(4)


class MetricHistory(HistoryReads):
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
        self._families: dict[str, Family] = {}
        self._version = 0  # bumped on every write: invalidates the memo
        # (now, data version) and its results, swapped as one object so that a reader
        # never pairs one cycle's state with another's results
        self._memo: tuple[tuple[float, int], dict[Hashable, Any]] | None = None
        self._last_prune: float | None = None
        self._conflicts: set[str] = set()  # metric names warned about (see _conflict)
        self.absent_components: set[tuple[str, str, Labels]] = set()
        """(metric, "count" or "sum", labels) of histograms read without that series
        (rule tests given only ``_bucket`` series): ``h.count``/``h.sum`` have none."""
        # families written inside batch() whose rows are closed when it ends (None: no
        # batch open, each write closes its row), and the thread writing that batch
        self._open: dict[int, Family] | None = None
        self._open_by = 0
        self._fork_aware = False

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Write several points (:meth:`add_point`, :meth:`add_histogram_point`,
        :meth:`mark_stale`) as one collect does: the points of one time share a row whose
        gaps are recorded once, when the block ends, so every series written at that time
        keeps its clean run (one at a time, each write ends the row and the next series'
        point makes its column be recomputed from all its rows before the next query).
        Recording rules write their samples this way. Read (query) after the block, not
        inside it. Blocks nest; an exception still ends the rows it opened. Only the
        thread that opened the block defers: another thread's writes meanwhile end their
        rows at once. In a child forked inside a block, the block's rows end at the
        fork."""
        if self._open is not None:  # nested, or another thread's: that one closes it
            yield
            return
        if not self._fork_aware:
            self._fork_aware = True
            _fork.register(self)
        self._open, self._open_by = {}, threading.get_ident()
        try:
            yield
        finally:
            self._close_open()

    def _close_open(self) -> None:
        opened, self._open = self._open, None
        for family in (opened or {}).values():
            self._close_row(family)

    def _after_fork_in_child(self) -> None:
        """A block the fork interrupted (in whichever thread) ends in the child."""
        self._close_open()

    def _end_write(self, family: Family) -> None:
        """After one synthetic write: its row ends now, or with the open batch."""
        if self._open is None or self._open_by != threading.get_ident():
            self._close_row(family)
        else:
            self._open[id(family)] = family

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
                    kind = kind_of(metric.data)
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
            family.layout = list(map(ATTRIBUTES, points))

    def _append_whole_row(self, family: Family, points: list[Any], at: float) -> bool:
        """The hot path: the same streams as last time, in order, at a later time.
        Appends one row; False (nothing done) when the collect is not of that shape."""
        layout = family.layout
        times = family.times
        if (layout is None or len(points) != len(layout) or family.tombstones
                or (times and at - times[-1] <= _EPS)):
            return False
        if list(map(ATTRIBUTES, points)) != layout:  # compares identity first
            return False
        histogram = family.kind is MetricKind.HISTOGRAM
        values: Any = (histogram_points(points) if histogram
                       else array("d", list(map(VALUE, points))))  # from a list: faster
        serial = self._new_row(family, at, values)
        run, span = family.run, family.span
        for c in family.broken:  # reported again: a new span and clean run start here
            run[c] = span[c] = serial
        family.broken.clear()
        last = family.last
        try:
            regular = (histograms_regular(last, values) if histogram
                       else False not in map(ge, values, last))
        except TypeError:  # some series had no previous value
            regular = False
        if not regular:  # a reset or NaN here: those columns' windows from the next row
            for c in irregular_columns(last, values, histogram):
                run[c] = serial + 1
        # the row itself when it is an array or a HistogramRow (never changed: turned into
        # a list on the next write), else a copy
        family.last = values.copy() if values.__class__ is list else values
        family.last_t = [times[-1]] * len(values)
        return True

    def _write_points(
        self, family: Family, points: Iterable[Any], at: float, delta: bool
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
            value: Any = histogram_point(point) if histogram else float(point.value)
            if delta:  # keep running totals, so the history is always cumulative
                labels = family.labels[c]
                assert labels is not None
                previous = totals.get(labels)
                if histogram:
                    value = add_histograms(previous, value)
                elif previous is not None:
                    value += previous
                totals[labels] = value
            self._put(family, c, at, value)
            columns.append(c)
        return columns

    def _stream(self, family: Family, attrs: Mapping[str, Any] | None) -> int:
        c = self._column(family, labels_of(attrs))
        family.streams[id(attrs)] = (attrs, c)
        return c

    def _mark_all_stale(self, family: Family, at: float) -> None:
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
        self._put(family, self._column(family, labels_of(labels)), at, float(value))
        self._end_write(family)

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
        self._put(family, self._column(family, labels_of(labels)), at, point)
        self._end_write(family)

    def mark_stale(self, name: str, labels: Mapping[str, str], at: float) -> None:
        """Record that series ``name{labels}`` stopped existing at ``at``."""
        family = self._families.get(name)
        if family is None:
            return
        c = family.index.get(labels_of(labels))
        if c is not None:
            self._version += 1
            self._put(family, c, at, STALE)
            self._end_write(family)

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
                compact(family)
            if not family.index:
                del self._families[name]

    # --- writing one entry -----------------------------------------------------------

    def _put(self, family: Family, c: int, at: float, value: Any) -> None:
        """``Series.append`` for column ``c``: a later point, or (within the time slack
        of its newest one) a rewrite of that one; an earlier point is ignored."""
        newest_t = family.last_t[c]
        times = family.times
        if not times or newest_t < times[0] - _EPS:
            newest_t = family.last_t[c] = -math.inf  # its rows were dropped: no entries
        if at - newest_t <= _EPS:
            if at < newest_t - _EPS:
                return  # out of order: history only moves forward
            r = row_index(family.times, newest_t)
            writable_row(family, r)[c] = value  # the newer value wins
            writable_last(family)[c] = None if value is STALE else value
            family.dirty.add(c)
            return
        r, where = self._row_for(family, at)
        if r < 0:
            return  # older than every row a full metric keeps
        row = writable_row(family, r)
        if len(row) <= c:
            row.extend([None] * (c + 1 - len(row)))
        row[c] = value
        family.last_t[c] = family.times[r]
        previous = family.last[c]
        writable_last(family)[c] = None if value is STALE else value
        if where == _FRESH:
            if c in family.dirty:
                return  # recomputed from the rows before the next query
            serial = family.base + r
            if value is STALE:
                break_run(family, c)
                return
            if family.span[c] == NO_RUN:
                family.run[c] = family.span[c] = serial
                family.broken.discard(c)
            if irregular(previous, value):
                family.run[c] = serial + 1
        elif where == _NEWEST:
            family.dirty.add(c)  # filled into a row written before: recompute
        else:  # in an older row: the rows after it lack this series
            break_run(family, c)
            family.dirty.discard(c)

    def _row_for(self, family: Family, at: float) -> tuple[int, int]:
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
            if start != NO_RUN:
                if start <= inserted:
                    break_run(family, col)
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

    def _new_row(self, family: Family, at: float, row: list[Any]) -> int:
        """Append a row at the end (dropping the oldest beyond the bound); its serial."""
        if family.fresh >= 0:  # a batch moves on to a later time: its row ends here
            self._close_row(family)
        serial = family.base + len(family.rows)
        family.times.append(at)
        family.rows.append(row)
        excess = len(family.rows) - self.max_points_per_series
        if excess > 0:
            del family.times[:excess]
            del family.rows[:excess]
            family.base += excess
        return serial

    def _close_row(self, family: Family) -> None:
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
            if (c >= width or row[c] is None) and span[c] != NO_RUN:
                break_run(family, c)

    # --- columns -------------------------------------------------------------------

    def _family(self, name: str, kind: MetricKind) -> Family:
        family = self._families.get(name)
        if family is None or family.kind is not kind:
            # a metric that changed its type starts over: old points mean something else
            family = Family(kind)
            self._families[name] = family
        return family

    def _column(self, family: Family, labels: Labels) -> int:
        c = family.index.get(labels)
        if c is None:
            c = family.index[labels] = len(family.labels)
            family.labels.append(labels)
            writable_last(family).append(None)
            family.last_t.append(-math.inf)
            family.run.append(NO_RUN)
            family.span.append(NO_RUN)
            family.broken.add(c)
            family.version += 1
            family.layout = None
        return c

    def _remove_column(self, family: Family, c: int) -> None:
        labels = family.labels[c]
        assert labels is not None
        del family.index[labels]
        family.delta_totals.pop(labels, None)
        family.labels[c] = None
        family.tombstones += 1
        family.version += 1
        family.layout = None
