"""Plain per-series reference implementations of PromQL's maths, ported line by line from
Prometheus 2.42 (``promql/functions.go`` ``extrapolatedRate``, ``promql/quantile.go``
``bucketQuantile``), with no fast path: the engine's ``query._maths`` must agree with
them bit for bit."""

from __future__ import annotations

import math
from collections.abc import Sequence

from otel_botmon.query._types import BOUNDS, COUNTS, HistogramPoint


def extrapolated_change(
    points: Sequence[tuple[float, float]], start: float, end: float, *, counter: bool,
    per_second: bool,
) -> float | None:
    """``rate``/``increase`` (``counter``) or ``delta`` of one series over [start, end]."""
    if len(points) < 2:
        return None
    result = points[-1][1] - points[0][1]
    if counter:
        previous = points[0][1]
        for _, v in points[1:]:
            if v < previous:
                result += previous
            previous = v
    duration_to_start = points[0][0] - start
    duration_to_end = end - points[-1][0]
    sampled = points[-1][0] - points[0][0]
    if sampled <= 0:
        return None
    average = sampled / (len(points) - 1)
    if counter and result > 0 and points[0][1] >= 0:
        duration_to_zero = sampled * (points[0][1] / result)
        if duration_to_zero < duration_to_start:
            duration_to_start = duration_to_zero
    threshold = average * 1.1
    interval = sampled
    interval += duration_to_start if duration_to_start < threshold else average / 2
    interval += duration_to_end if duration_to_end < threshold else average / 2
    factor = interval / sampled
    if per_second:
        factor /= end - start
    return result * factor


def bucket_rates(
    points: Sequence[tuple[float, HistogramPoint]], start: float, end: float
) -> tuple[tuple[float, ...], list[float]] | None:
    """Each bucket of one histogram series read as its own counter series (Prometheus'
    ``rate(h_bucket[w])``), points of the newest layout only."""
    bounds = points[-1][1][BOUNDS]
    points = [(t, p) for t, p in points if p[BOUNDS] == bounds]
    if len(points) < 2:
        return None
    rates = []
    for i in range(len(bounds)):
        value = extrapolated_change([(t, p[COUNTS][i]) for t, p in points], start, end,
                                    counter=True, per_second=True)
        rates.append(math.nan if value is None else value)
    return bounds, rates


def quantile(q: float, bounds: Sequence[float], counts: Sequence[float]) -> float:
    """Prometheus' ``bucketQuantile`` of cumulative ``counts`` by upper ``bounds``."""
    if math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    buckets = sorted(zip(bounds, counts, strict=True), key=lambda b: b[0])
    if not buckets or buckets[-1][0] != math.inf:
        return math.nan
    coalesced: list[list[float]] = []
    for bound, count in buckets:  # coalesceBuckets
        if coalesced and coalesced[-1][0] == bound:
            coalesced[-1][1] += count
        else:
            coalesced.append([bound, count])
    # ensureMonotonic, from the first bucket (promtool 2.42: counts NaN, +Inf, 0 at
    # q=0 give NaN, so a leading NaN is never replaced)
    high = coalesced[0][1]
    for bucket in coalesced[1:]:
        if bucket[1] > high:
            high = bucket[1]
        elif bucket[1] < high:
            bucket[1] = high
    if len(coalesced) < 2:
        return math.nan
    observations = coalesced[-1][1]
    if observations == 0:
        return math.nan
    rank = q * observations
    n = len(coalesced) - 1
    b, j = 0, n  # Go's sort.Search(n, count >= rank): a binary search, not a scan
    while b < j:
        h = (b + j) >> 1
        if not coalesced[h][1] >= rank:
            b = h + 1
        else:
            j = h
    if b == n:
        return coalesced[n - 1][0]
    if b == 0 and coalesced[0][0] <= 0:
        return coalesced[0][0]
    start, end, count = 0.0, coalesced[b][0], coalesced[b][1]
    if b > 0:
        start = coalesced[b - 1][0]
        count -= coalesced[b - 1][1]
        rank -= coalesced[b - 1][1]
    if count == 0:
        ratio = math.nan if rank == 0 or rank != rank else math.copysign(math.inf, rank)
    else:
        ratio = rank / count
    return start + (end - start) * ratio
