"""Histogram quantiles over a window, as Prometheus'
``histogram_quantile(q, rate(h_bucket[w]))`` computes them.

Each bucket's rate is extrapolated exactly as ``rate()`` does for a bucket series; the
work is done on whole histogram points, so a 14-bucket histogram costs one pass.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from itertools import islice, repeat
from operator import le, lt, mul, sub

from otel_botmon.alerting.series import BOUNDS, COUNTS, HistogramPoint, histogram_decreased

__all__ = [
    "Extrapolation",
    "bucket_extrapolation",
    "bucket_rates",
    "extrapolate_with",
    "histogram_quantile",
    "quantile_sorted",
    "quantiles_sorted",
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


def extrapolate_buckets(
    change: list[float], n: int, t0: float, first: HistogramPoint, t1: float,
    start: float, end: float,
) -> list[float]:
    """Per-second rates from each bucket's change, extrapolated like ``rate()``."""
    return extrapolate_with(bucket_extrapolation(n, t0, t1, start, end), change, first[COUNTS])


Extrapolation = tuple[float, float, float, float, float, float, float]
"""What :func:`extrapolate_with` needs of a window shape (see bucket_extrapolation)."""


def bucket_extrapolation(
    n: int, t0: float, t1: float, start: float, end: float
) -> Extrapolation | None:
    """The extrapolation of a window whose ``n >= 2`` points go from ``t0`` to ``t1``:
    the same for every series sampled at the same times, so callers compute it once.
    ``None`` when the points span no time."""
    sampled = t1 - t0
    if sampled <= 0:
        return None
    average_gap = sampled / (n - 1)
    threshold = average_gap * 1.1
    to_start = t0 - start
    to_end = end - t1
    end_part = to_end if to_end < threshold else average_gap / 2
    half = average_gap / 2
    duration = end - start
    start_part = to_start if to_start < threshold else half
    factor = (sampled + start_part + end_part) / sampled / duration
    # ratio > 0: buckets may be young (see extrapolate_with)
    ratio = to_start / sampled if to_start > 0 else 0.0
    return (factor, ratio, sampled, threshold, half, end_part, duration)


def extrapolate_with(
    shape: Extrapolation | None, change: list[float], first_counts: Sequence[float]
) -> list[float]:
    """Per-second rates from each bucket's change over a window of ``shape``, given the
    cumulative counts of the window's first point (the buckets of several series may be
    passed end to end: each bucket is computed on its own)."""
    if shape is None:
        return [math.nan] * len(change)
    factor, ratio, sampled, threshold, half, end_part, duration = shape
    if ratio == 0.0:
        return list(map(mul, change, repeat(factor)))
    # A bucket that would reach zero before the window start (0 <= initial < change *
    # ratio, so change > 0) is extrapolated only that far, as Prometheus does per bucket
    # series. One pass computes every bucket; ``reach`` (the time back to zero) is
    # assigned in the condition and read by the young branch.
    return [
        delta * factor
        if not (0 <= initial < delta * ratio and ((reach := sampled * (initial / delta)) or 1))
        else delta * (((sampled + (reach if reach < threshold else half) + end_part) / sampled)
                      / duration)
        for delta, initial in zip(change, first_counts, strict=True)
    ]


def quantile_sorted(q: float, bounds: Sequence[float], counts: Sequence[float]) -> float:
    """:func:`histogram_quantile` for ascending ``bounds`` (the usual case), exactly as
    Prometheus' ``bucketQuantile``: equal bounds are merged, decreasing counts raised to
    the running maximum (a NaN count stays NaN), the bucket found by Go's binary search,
    and the rank interpolated with Go's float division (``0/0`` is NaN)."""
    if math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    if not bounds or bounds[-1] != math.inf:
        return math.nan
    if not all(map(lt, bounds, islice(bounds, 1, None))):
        return histogram_quantile(q, list(zip(bounds, counts, strict=True)))
    if len(bounds) < 2:
        return math.nan
    return _bucket_quantile(q, bounds, counts)


def _bucket_quantile(q: float, bounds: Sequence[float], counts: Sequence[float]) -> float:
    """The quantile of ascending, distinct ``bounds`` ending at +Inf, ``0 <= q <= 1``."""
    fixed: Sequence[float] = counts
    if not all(map(le, counts, islice(counts, 1, None))):
        fixed = _monotonic(counts)
    observations = fixed[-1]
    if observations == 0:
        return math.nan
    rank = q * observations
    top = len(bounds) - 1
    # Go's sort.Search(top, counts[i] >= rank): the same probes, so NaN counts lead
    # where they lead in Prometheus
    lo, hi = 0, top
    while lo < hi:
        mid = (lo + hi) >> 1
        if not fixed[mid] >= rank:
            lo = mid + 1
        else:
            hi = mid
    b = lo
    if b == top:
        return bounds[top - 1]
    if b == 0 and bounds[0] <= 0:
        return bounds[0]
    bucket_start, bucket_end, count = 0.0, bounds[b], fixed[b]
    if b > 0:
        bucket_start = bounds[b - 1]
        count -= fixed[b - 1]
        rank -= fixed[b - 1]
    return bucket_start + (bucket_end - bucket_start) * go_div(rank, count)


def go_div(a: float, b: float) -> float:
    """``a / b`` with IEEE semantics as Go computes it (no ZeroDivisionError)."""
    if b == 0:
        if a == 0 or a != a:
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)
    return a / b


def _monotonic(counts: Sequence[float]) -> list[float]:
    """Prometheus' ``ensureMonotonic``: a count below the running maximum is raised to
    it; NaN compares false both ways, so a NaN count is kept and does not reset it."""
    fixed = list(counts)
    high = fixed[0]
    for i in range(1, len(fixed)):
        c = fixed[i]
        if c > high:
            high = c
        elif c < high:
            fixed[i] = high
    return fixed


def quantiles_sorted(
    q: float, bounds: Sequence[float], many: Iterable[Sequence[float]]
) -> list[float]:
    """:func:`quantile_sorted` of each counts in ``many``, all of one bucket layout: the
    checks of ``q`` and ``bounds`` are made once."""
    n = len(bounds)
    if (math.isnan(q) or q < 0 or q > 1 or n < 2 or bounds[-1] != math.inf
            or not all(map(lt, bounds, islice(bounds, 1, None)))):
        return [quantile_sorted(q, bounds, counts) for counts in many]
    return [_bucket_quantile(q, bounds, counts) for counts in many]


def histogram_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float:
    """The ``q`` quantile from cumulative ``(upper_bound, count)`` buckets in any order,
    interpolated linearly inside the bucket as Prometheus' ``histogram_quantile`` does
    (NaN without a ``+inf`` bucket or observations)."""
    merged: dict[float, float] = {}
    for bound, count in buckets:
        merged[bound] = merged.get(bound, 0.0) + count
    ordered = sorted(merged.items())
    return quantile_sorted(q, [b for b, _ in ordered], [c for _, c in ordered])
