"""Histogram quantiles over a window, as Prometheus'
``histogram_quantile(q, rate(h_bucket[w]))`` computes them.

Each bucket's rate is extrapolated exactly as ``rate()`` does for a bucket series; the
work is done on whole histogram points, so a 14-bucket histogram costs one pass.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence
from itertools import accumulate, repeat
from operator import lt, mul, sub

from otel_botmon.alerting.series import BOUNDS, COUNTS, HistogramPoint, histogram_decreased

__all__ = [
    "bucket_rates",
    "bucket_rates_from_edges",
    "histogram_quantile",
    "quantile_sorted",
]


def bucket_rates(
    points: Sequence[tuple[float, HistogramPoint]], start: float, end: float
) -> tuple[tuple[float, ...], list[float]] | None:
    """Per-second rate of every cumulative bucket over ``[start, end]`` (Prometheus
    extrapolation and counter resets), with the buckets' upper bounds; ``None`` with
    fewer than two points."""
    bounds = points[-1][1][BOUNDS]
    if any(p[BOUNDS] != bounds for _, p in points):
        points = [(t, p) for t, p in points if p[BOUNDS] == bounds]  # layout changed
    n = len(points)
    if n < 2:
        return None
    t0, first = points[0]
    t1, last = points[-1]
    change = list(map(sub, last[COUNTS], first[COUNTS]))
    previous = first
    for _, point in points[1:]:
        if histogram_decreased(previous, point):  # a reset: buckets restarted from zero
            for i, (before, now_) in enumerate(
                zip(previous[COUNTS], point[COUNTS], strict=True)
            ):
                if now_ < before:
                    change[i] += before
        previous = point
    return bounds, extrapolate_buckets(change, n, t0, first, t1, start, end)


def bucket_rates_from_edges(
    n: int, t0: float, first: HistogramPoint, t1: float, last: HistogramPoint,
    start: float, end: float,
) -> tuple[tuple[float, ...], list[float]] | None:
    """:func:`bucket_rates` of a window without resets, from its first and last point."""
    if n < 2 or (first[BOUNDS] is not last[BOUNDS] and first[BOUNDS] != last[BOUNDS]):
        return None
    change = list(map(sub, last[COUNTS], first[COUNTS]))
    return last[BOUNDS], extrapolate_buckets(change, n, t0, first, t1, start, end)


def extrapolate_buckets(
    change: list[float], n: int, t0: float, first: HistogramPoint, t1: float,
    start: float, end: float,
) -> list[float]:
    """Per-second rates from each bucket's change, extrapolated like ``rate()``."""
    sampled = t1 - t0
    if sampled <= 0:
        return [math.nan] * len(change)
    average_gap = sampled / (n - 1)
    threshold = average_gap * 1.1
    to_start = t0 - start
    to_end = end - t1
    end_part = to_end if to_end < threshold else average_gap / 2
    half = average_gap / 2
    duration = end - start
    start_part = to_start if to_start < threshold else half
    factor = (sampled + start_part + end_part) / sampled / duration
    rates = list(map(mul, change, repeat(factor)))
    if to_start > 0:
        # a bucket that would reach zero before the window start is extrapolated only
        # that far (Prometheus does this per bucket series); find them at C speed first
        ratio = to_start / sampled
        young = list(map(lt, first[COUNTS], map(mul, change, repeat(ratio))))
        if True not in young:
            return rates
        for i, (delta, initial) in enumerate(zip(change, first[COUNTS], strict=True)):
            if young[i] and delta > 0 and initial >= 0:
                reach = sampled * (initial / delta)
                interval = sampled + (reach if reach < threshold else half) + end_part
                rates[i] = delta * (interval / sampled) / duration
    return rates


def quantile_sorted(q: float, bounds: Sequence[float], counts: Sequence[float]) -> float:
    """:func:`histogram_quantile` for ascending, distinct ``bounds`` (the usual case)."""
    if math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    n = len(bounds)
    if n < 2 or bounds[-1] != math.inf:
        return math.nan
    # counts must not decrease with le; repair (running maximum) if they do
    fixed = list(accumulate(counts, max))
    observations = fixed[-1]
    if observations == 0 or observations != observations:  # no data, or NaN
        return math.nan
    rank = q * observations
    b = min(bisect_left(fixed, rank), n - 1)
    if b == n - 1:
        return bounds[-2]
    if b == 0 and bounds[0] <= 0:
        return bounds[0]
    bucket_start, bucket_end, count = 0.0, bounds[b], fixed[b]
    if b > 0:
        bucket_start = bounds[b - 1]
        count -= fixed[b - 1]
        rank -= fixed[b - 1]
    if count == 0:
        return bucket_start
    return bucket_start + (bucket_end - bucket_start) * (rank / count)


def histogram_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float:
    """The ``q`` quantile from cumulative ``(upper_bound, count)`` buckets in any order,
    interpolated linearly inside the bucket as Prometheus' ``histogram_quantile`` does
    (NaN without a ``+inf`` bucket or observations)."""
    merged: dict[float, float] = {}
    for le, count in buckets:
        merged[le] = merged.get(le, 0.0) + count
    ordered = sorted(merged.items())
    return quantile_sorted(q, [le for le, _ in ordered], [c for _, c in ordered])
