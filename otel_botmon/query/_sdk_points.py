"""SDK metric points as the history stores them: metric kinds, labels from attributes,
histogram points with cumulative counts in arrays of doubles (one pass for a whole
collect of one instrument), running totals for delta temporality."""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Mapping, Sequence
from itertools import accumulate, chain, repeat
from operator import add, attrgetter, is_
from typing import Any

from opentelemetry.sdk.metrics.export import Gauge, Histogram, Sum

from otel_botmon._unicode import valid_text
from otel_botmon.query._columns import HistogramRow
from otel_botmon.query._types import (
    BOUNDS,
    COUNTS,
    EMPTY_LABELS,
    SUM,
    TOTAL,
    HistogramPoint,
    Labels,
    MetricKind,
)

__all__ = [
    "ATTRIBUTES",
    "VALUE",
    "add_histograms",
    "histogram_point",
    "histogram_points",
    "kind_of",
    "labels_of",
]

ATTRIBUTES = attrgetter("attributes")
VALUE = attrgetter("value")


def kind_of(data: object) -> MetricKind | None:
    if isinstance(data, Sum):
        return MetricKind.COUNTER if data.is_monotonic else MetricKind.UP_DOWN_COUNTER
    if isinstance(data, Gauge):
        return MetricKind.GAUGE
    if isinstance(data, Histogram):
        return MetricKind.HISTOGRAM
    return None


def labels_of(attributes: Mapping[str, Any] | None) -> Labels:
    """A data point's attributes as labels: values as strings, names and values valid
    Unicode (a lone surrogate reads as U+FFFD, see :mod:`otel_botmon._unicode`)."""
    if not attributes:
        return EMPTY_LABELS
    return Labels((valid_text(str(k)), valid_text(_label_value(v)))
                  for k, v in attributes.items())


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


def histogram_point(point: Any) -> HistogramPoint:
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


def histogram_points(points: list[Any]) -> Sequence[HistogramPoint]:
    """``histogram_point`` of each point: as a :class:`HistogramRow` when they share one
    bounds object (as the points of one SDK instrument do), every point's counts
    accumulated into one array (one conversion to doubles for the whole collect, no
    object per point); else a list."""
    explicit = list(map(_EXPLICIT_BOUNDS, points))
    if not explicit or not all(map(is_, explicit, repeat(explicit[0]))):
        return list(map(histogram_point, points))
    bounds = histogram_point(points[0])[BOUNDS]
    flat = array("d", list(chain.from_iterable(
        map(accumulate, map(_BUCKET_COUNTS, points)))))
    if len(flat) != len(bounds) * len(points):  # a point whose counts do not fit its bounds
        return list(map(histogram_point, points))
    return HistogramRow(bounds, flat, array("d", list(map(_SUM, points))),
                        array("d", list(map(_COUNT, points))))


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


def add_histograms(previous: HistogramPoint | None, delta: HistogramPoint) -> HistogramPoint:
    if previous is None or previous[BOUNDS] != delta[BOUNDS]:
        return delta
    return (
        delta[BOUNDS],
        array("d", map(add, previous[COUNTS], delta[COUNTS])),
        previous[SUM] + delta[SUM],
        previous[TOTAL] + delta[TOTAL],
    )
