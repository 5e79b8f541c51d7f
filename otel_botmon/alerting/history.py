"""A bounded, in-process history of the SDK's metrics, read by the condition language.

The alert evaluator calls :meth:`MetricHistory.ingest` once per cycle with the cumulative
``MetricsData`` of the SDK's ``InMemoryMetricReader``. Every series keeps its points in a
ring buffer (``max_points_per_series``) and drops points older than ``max_age_s``, so
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

Labels are the data points' attributes with values converted to strings. Queries made at
the same ``now`` share a memo (:meth:`MetricHistory.memo`), so many rules over the same
metric cost little more than one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Container, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from itertools import accumulate
from typing import Any

from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Histogram,
    MetricsData,
    Sum,
)

from otel_botmon.alerting.samples import EMPTY_LABELS, Labels, Sample
from otel_botmon.alerting.series import (
    BOUNDS,
    COUNTS,
    SUM,
    TIME_SLACK,
    TOTAL,
    HistogramPoint,
    Series,
    Value,
    histogram_decreased,
)

__all__ = [
    "BOUNDS",
    "COUNTS",
    "EMPTY_LABELS",
    "SUM",
    "TOTAL",
    "HistogramPoint",
    "Labels",
    "MetricHistory",
    "MetricKind",
    "Sample",
]

# Prometheus' default lookback: an instant query sees the latest point at most this old.
DEFAULT_LOOKBACK_S = 300.0


class MetricKind(str, Enum):
    """How a metric's points are to be read."""

    GAUGE = "gauge"
    COUNTER = "counter"  # monotonic sum: rate()/increase() handle resets
    UP_DOWN_COUNTER = "up_down_counter"  # non-monotonic sum: read like a gauge
    HISTOGRAM = "histogram"




@dataclass
class _Family:
    kind: MetricKind
    series: dict[Labels, Series] = field(default_factory=dict)
    from_sdk: bool = False
    version: int = 0  # changes when series are added or removed (selection caches)
    selections: dict[Hashable, tuple[int, list[tuple[Labels, Series]]]] = field(
        default_factory=dict
    )
    # running totals for delta-temporality input, so the history is always cumulative
    delta_totals: dict[Labels, Any] = field(default_factory=dict)
    # id(SDK attributes object) -> (that object, its series): the attribute dicts of
    # cumulative SDK streams are the same objects every collect, so each is converted
    # to labels once (the object is kept referenced, so its id stays unique). Cleared
    # when series are removed (a cached series must still be in ``series``).
    streams: dict[int, tuple[Any, Series, Labels]] = field(default_factory=dict)


LabelFilter = Callable[[Labels], bool]


class MetricHistory:
    """Bounded per-series history of metric points, queried by conditions.

    ``max_age_s`` bounds how far back points are kept (windows longer than this see only
    what is left); ``max_points_per_series`` bounds each series' ring buffer.
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
        seen: dict[str, list[Series]] = {}
        for rm in getattr(data, "resource_metrics", None) or ():
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    if only is not None and metric.name not in only:
                        continue
                    kind = _kind_of(metric.data)
                    if kind is None:
                        continue
                    family = self._family(metric.name, kind)
                    family.from_sdk = True
                    appended = seen.setdefault(metric.name, [])
                    self._ingest_points(family, metric.data, at, appended)
        for name, family in self._families.items():
            if family.from_sdk and (only is None or name in only):
                self._mark_missing_stale(family, seen.get(name, ()), at)
        # pruning walks every series: do it when a tenth of max_age has passed
        if self._last_prune is None or at - self._last_prune >= self.max_age_s / 10:
            self.prune(at)

    def _ingest_points(
        self, family: _Family, data: Any, at: float, appended: list[Series]
    ) -> None:
        """Append every data point to its series; ``appended`` collects the series."""
        streams = family.streams
        if len(streams) > 4 * len(family.series) + 1000:
            streams.clear()  # attribute sets came and went; start over
        lookup = streams.get
        seen = appended.append
        histogram = family.kind is MetricKind.HISTOGRAM
        if getattr(data, "aggregation_temporality", None) == AggregationTemporality.DELTA:
            self._ingest_deltas(family, data, at, seen, histogram)
            return
        # the hot path (cumulative streams): one dict lookup and one append per point
        if histogram:
            for point in data.data_points:
                attrs = point.attributes
                hit = lookup(id(attrs))
                series = (
                    hit[1] if hit is not None and hit[0] is attrs else self._stream(family, attrs)
                )
                seen(series)
                value = _histogram_point(point)
                times = series.times
                if not times or at - times[-1] <= TIME_SLACK:
                    series.append(at, value)  # first point, or a rewrite
                    continue
                times.append(at)  # Series.append inlined, as for scalars below
                series.values.append(value)
                previous = series.last_level
                series.last_level = value
                if previous is not None and histogram_decreased(previous, value):
                    series.irregular_at = at  # a reset
            return
        # scalars: Series.append inlined for the usual case (a new, later point), as
        # this loop runs for nearly every point of every collect
        for point in data.data_points:
            attrs = point.attributes
            hit = lookup(id(attrs))
            series = hit[1] if hit is not None and hit[0] is attrs else self._stream(family, attrs)
            seen(series)
            number = float(point.value)
            times = series.times
            if not times or at - times[-1] <= TIME_SLACK:
                series.append(at, number)  # first point, or a rewrite
                continue
            times.append(at)
            series.values.append(number)
            previous = series.last_level
            series.last_level = number
            if (previous is not None and not number >= previous) or number != number:
                series.irregular_at = at  # a decrease (counter reset), or NaN

    def _ingest_deltas(
        self, family: _Family, data: Any, at: float, seen: Callable[[Series], None],
        histogram: bool,
    ) -> None:
        # keep running totals, so the history is always cumulative
        lookup = family.streams.get
        totals = family.delta_totals
        for point in data.data_points:
            attrs = point.attributes
            hit = lookup(id(attrs))
            series = hit[1] if hit is not None and hit[0] is attrs else self._stream(family, attrs)
            seen(series)
            labels = family.streams[id(attrs)][2]
            value: Value
            if histogram:
                value = _add_histograms(totals.get(labels), _histogram_point(point))
            else:
                value = float(point.value) + totals.get(labels, 0.0)
            totals[labels] = value
            series.append(at, value)

    def _stream(self, family: _Family, attrs: Mapping[str, Any] | None) -> Series:
        labels = _labels_of(attrs)
        series = self._series(family, labels)
        family.streams[id(attrs)] = (attrs, series, labels)
        return series

    def _mark_missing_stale(self, family: _Family, seen: Iterable[Series], at: float) -> None:
        ids = set(map(id, seen))
        if len(ids) == len(family.series):
            return  # every series was reported (seen is a subset of the series)
        for series in family.series.values():
            if id(series) not in ids and series.last_value is not None:
                series.append(at, None)

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
        self._series(family, Labels.of(labels)).append(at, float(value))

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
        self._series(family, Labels.of(labels)).append(at, point)

    def mark_stale(self, name: str, labels: Mapping[str, str], at: float) -> None:
        """Record that series ``name{labels}`` stopped existing at ``at``."""
        family = self._families.get(name)
        if family is None:
            return
        series = family.series.get(Labels.of(labels))
        if series is not None:
            self._version += 1
            series.append(at, None)

    def prune(self, now: float) -> None:
        """Drop points older than ``max_age_s`` before ``now`` and series left empty."""
        self._version += 1
        self._last_prune = now
        oldest = now - self.max_age_s
        for name in list(self._families):
            family = self._families[name]
            for labels in list(family.series):
                s = family.series[labels]
                s.prune(oldest)
                if not s.times:
                    del family.series[labels]
                    family.version += 1
                    family.streams.clear()  # it may hold the removed series
            if not family.series:
                del self._families[name]

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
        return set(self._families)

    def kind(self, name: str) -> MetricKind | None:
        family = self._families.get(name)
        return family.kind if family is not None else None

    def series_count(self) -> int:
        """Number of series held (a histogram series counts once)."""
        return sum(len(f.series) for f in self._families.values())

    def select(
        self, name: str, kind: MetricKind | None = None, where: LabelFilter | None = None,
        where_key: Hashable | None = None,
    ) -> list[tuple[Labels, Series]]:
        """The series of ``name`` (of ``kind``, if given) whose labels pass ``where``.
        With a ``where_key`` naming the filter, the selection is cached until series
        are added or removed."""
        family = self._families.get(name)
        if family is None or (kind is not None and family.kind is not kind):
            return []
        if where is None:
            return list(family.series.items())
        if where_key is not None:
            cached = family.selections.get(where_key)
            if cached is not None and cached[0] == family.version:
                return cached[1]
        chosen = [(labels, s) for labels, s in family.series.items() if where(labels)]
        if where_key is not None:
            family.selections[where_key] = (family.version, chosen)
        return chosen

    def latest(
        self, name: str, now: float, where: LabelFilter | None = None
    ) -> list[Sample]:
        """The current value of every matching scalar series of ``name`` at ``now``.

        A series is current when it has a point within the lookback (5 min, as in
        Prometheus) that is not a stale marker. A histogram name yields nothing.
        """
        out: list[Sample] = []
        lookback = self.lookback_s
        for labels, series in self.select(name, None, where):
            value = series.latest(now, lookback)
            if value is not None and value.__class__ is not tuple:
                out.append(Sample(labels, value))
        return out

    def window(
        self, name: str, start: float, end: float, where: LabelFilter | None = None
    ) -> list[tuple[Labels, list[tuple[float, float]]]]:
        """Points with ``start <= t <= end`` of every matching scalar series of ``name``."""
        family = self._families.get(name)
        if family is None or family.kind is MetricKind.HISTOGRAM:
            return []
        out = []
        for labels, series in self.select(name, None, where):
            points = series.window(start, end)
            if points:
                out.append((labels, points))
        return out

    def histogram_windows(
        self, name: str, start: float, end: float, where: LabelFilter | None = None
    ) -> list[tuple[Labels, list[tuple[float, HistogramPoint]]]]:
        """Whole histogram points in ``[start, end]`` of every matching histogram."""
        out = []
        for labels, series in self.select(name, MetricKind.HISTOGRAM, where):
            points = series.window(start, end)
            if points:
                out.append((labels, points))
        return out

    # --- internals -----------------------------------------------------------------

    def _family(self, name: str, kind: MetricKind) -> _Family:
        family = self._families.get(name)
        if family is None or family.kind is not kind:
            # a metric that changed its type starts over: old points mean something else
            family = _Family(kind)
            self._families[name] = family
        return family

    def _series(self, family: _Family, labels: Labels) -> Series:
        series = family.series.get(labels)
        return series if series is not None else self._new_series(family, labels)

    def _new_series(self, family: _Family, labels: Labels) -> Series:
        series = family.series[labels] = Series(self.max_points_per_series)
        family.version += 1
        return series


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
    return (
        bounds, tuple(accumulate(point.bucket_counts)), float(point.sum), float(point.count)
    )


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
        tuple(a + b for a, b in zip(previous[COUNTS], delta[COUNTS], strict=True)),
        previous[SUM] + delta[SUM],
        previous[TOTAL] + delta[TOTAL],
    )
