"""PromQL's maths, each function once: the float arithmetic of reductions, rate
extrapolation and histogram quantiles, step for step as Prometheus 2.42 does them.

Summation order and method decide the last bits of a result, and a rule comparing
``sum(x) >= 1`` over ten series of ``0.1`` fires or not on those bits. So each reduction
here performs the same operations in the same order as Prometheus' engine:

* ``sum`` (aggregation): plain left-to-right addition;
* ``avg`` (aggregation): the running mean ``mean += v/n - mean/n``, keeping an infinite
  mean when the next value is finite or the same infinity;
* ``sum_over_time``: Kahan-Neumaier compensated summation (``kahanSumInc``);
* ``avg_over_time``: the running mean with Kahan-Neumaier compensation;
* ``min``/``max`` and ``min_over_time``/``max_over_time``: a NaN is replaced by any
  later value, and never replaces a number;
* ``rate``/``increase``/``delta``: :func:`extrapolate` (``extrapolatedRate``), for one
  series or for many series (or histogram buckets) sampled at the same times at once;
* ``histogram_quantile``: :func:`histogram_quantiles` (``bucketQuantile``), for one set
  of buckets or many of one layout at once.

Python's built-in ``sum`` is not used: from Python 3.12 it compensates, which
Prometheus' ``sum`` does not. The fast paths (many series at once) are branches of these
functions, not copies; the tests hold a plain per-series reference to compare with.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import deque
from collections.abc import Iterable, Sequence
from functools import reduce
from itertools import compress, islice, repeat
from operator import add, and_, le, lt, mul, sub, truediv
from typing import NamedTuple

from otel_botmon.query._types import BOUNDS, COUNTS, HistogramPoint, histogram_decreased

__all__ = [
    "Window",
    "aggregate_avg",
    "aggregate_max",
    "aggregate_min",
    "aggregate_sum",
    "avg_over_time",
    "bucket_rates",
    "extrapolate",
    "extrapolated_change",
    "go_div",
    "histogram_quantile",
    "histogram_quantiles",
    "kahan_sum_inc",
    "max_over_time",
    "merge_buckets",
    "min_over_time",
    "sum_over_time",
    "window",
]


def kahan_sum_inc(inc: float, total: float, c: float) -> tuple[float, float]:
    """One step of Kahan-Neumaier summation: the new sum and compensation."""
    t = total + inc
    if abs(total) >= abs(inc):
        c += (total - t) + inc
    else:
        c += (inc - t) + total
    return t, c


def aggregate_sum(values: Sequence[float]) -> float:
    """``sum`` across series: plain addition in order."""
    return reduce(add, values) if values else 0.0


def aggregate_avg(values: Sequence[float]) -> float:
    """``avg`` across series: Prometheus' running mean."""
    mean = values[0]
    count = 1.0
    for v in values[1:]:
        count += 1.0
        # an infinite mean stays when the next value is the same infinity or finite (a
        # NaN mean stays NaN either way)
        if mean - mean == 0.0 or not (v == mean or v - v == 0.0):
            mean += v / count - mean / count
    return mean


def aggregate_max(values: Sequence[float]) -> float:
    best = values[0]
    for v in values[1:]:
        if best < v or best != best:
            best = v
    return best


def aggregate_min(values: Sequence[float]) -> float:
    best = values[0]
    for v in values[1:]:
        if best > v or best != best:
            best = v
    return best


def max_over_time(values: Sequence[float]) -> float:
    best = values[0]
    for v in values:
        if v > best or best != best:
            best = v
    return best


def min_over_time(values: Sequence[float]) -> float:
    best = values[0]
    for v in values:
        if v < best or best != best:
            best = v
    return best


def sum_over_time(values: Sequence[float]) -> float:
    total, c = 0.0, 0.0
    for v in values:
        total, c = kahan_sum_inc(v, total, c)
    if math.isinf(total):
        return total
    return total + c


def avg_over_time(values: Sequence[float]) -> float:
    mean, c = 0.0, 0.0
    count = 0
    for v in values:
        count += 1
        if math.isinf(mean) and (
            (math.isinf(v) and (mean > 0) == (v > 0)) or not (math.isinf(v) or math.isnan(v))
        ):
            continue
        mean, c = kahan_sum_inc(v / count - mean / count, mean, c)
    if math.isinf(mean):
        return mean
    return mean + c


# --- rate, increase, delta ---------------------------------------------------------------


class Window(NamedTuple):
    """The shape of a window ``[start, end]`` whose ``n >= 2`` points go from ``t0`` to
    ``t1``: what extrapolation needs, the same for every series sampled at those times."""

    factor: float  # change -> result for a series that is not a young counter
    to_start: float
    sampled: float
    threshold: float
    half: float
    end_part: float
    duration: float | None  # the range when the result is per second, else None


def window(
    n: int, t0: float, t1: float, start: float, end: float, *, per_second: bool
) -> Window | None:
    """The :class:`Window` of ``n`` points from ``t0`` to ``t1`` in ``[start, end]``;
    None when fewer than two points or they span no time."""
    sampled = t1 - t0
    if n < 2 or sampled <= 0:
        return None
    average_gap = sampled / (n - 1)
    threshold = average_gap * 1.1
    half = average_gap / 2
    to_start = t0 - start
    to_end = end - t1
    end_part = to_end if to_end < threshold else half
    interval = sampled
    interval += to_start if to_start < threshold else half
    interval += end_part
    # one factor, divided by the range after, as Prometheus
    factor = interval / sampled
    duration = None
    if per_second:
        duration = end - start
        factor /= duration
    return Window(factor, to_start, sampled, threshold, half, end_part, duration)


def extrapolate(
    shape: Window | None, change: Sequence[float], first: Sequence[float], *, counter: bool
) -> list[float]:
    """Prometheus' ``extrapolatedRate`` of each series (or histogram bucket) whose value
    went from ``first[k]`` by ``change[k]`` (resets already added) over a window of
    ``shape``: the change extrapolated to the window's edges when the points come close
    enough to them, per second when the shape says so. A counter whose extrapolation
    would reach back before it was zero is extrapolated back to zero only. NaN for every
    series when ``shape`` is None."""
    if shape is None:
        return [math.nan] * len(change)
    out = list(map(mul, change, repeat(shape.factor)))
    to_start = shape.to_start
    if not counter or not to_start > 0:
        return out
    sampled = shape.sampled
    # young counters: first / change < to_start / sampled. Candidates are found at C
    # speed with a margin that only admits more; each is then decided exactly as
    # Prometheus does (durationToZero < durationToStart). An unchanged series (an empty
    # bucket) is never a candidate: 0 < 0 does not hold.
    reach = to_start / sampled * (1 + 1e-9)
    candidates = list(map(lt, first, map(mul, change, repeat(reach))))
    if True not in candidates:
        return out
    # the candidates that are counters started inside the reach: a positive change
    # from a non-negative start (C-level passes over the candidates only)
    index = list(compress(range(len(candidates)), candidates))
    deltas = list(map(change.__getitem__, index))
    initials = list(map(first.__getitem__, index))
    valid = list(map(and_, map(lt, repeat(0.0), deltas), map(le, repeat(0.0), initials)))
    index = list(compress(index, valid))
    deltas = list(compress(deltas, valid))
    initials = list(compress(initials, valid))
    to_zero = list(map(mul, repeat(sampled), map(truediv, initials, deltas)))
    young = list(map(lt, to_zero, repeat(to_start)))
    if True not in young:
        return out
    threshold, half = shape.threshold, shape.half
    starts = [z if z < threshold else half for z in compress(to_zero, young)]
    factors: Iterable[float] = map(
        truediv, map(add, map(add, repeat(sampled), starts), repeat(shape.end_part)),
        repeat(sampled),
    )
    if shape.duration is not None:
        factors = map(truediv, factors, repeat(shape.duration))
    deque(map(out.__setitem__, compress(index, young),
              map(mul, compress(deltas, young), factors)), maxlen=0)
    return out


def extrapolated_change(
    points: Sequence[tuple[float, float]], start: float, end: float, *, counter: bool,
    per_second: bool,
) -> float | None:
    """``increase``/``rate`` (``counter``) or ``delta`` of one series' ``points`` over
    ``[start, end]``: the change between its first and last point plus, for a counter,
    the value before each reset; ``None`` with fewer than two points."""
    if len(points) < 2:
        return None
    first_t, first_v = points[0]
    last_t, last_v = points[-1]
    result = last_v - first_v
    if counter:
        previous = 0.0
        for _, v in points:
            if v < previous:  # a reset: the counter restarted from zero
                result += previous
            previous = v
    shape = window(len(points), first_t, last_t, start, end, per_second=per_second)
    if shape is None:
        return None
    return extrapolate(shape, (result,), (first_v,), counter=counter)[0]


def bucket_rates(
    points: Sequence[tuple[float, HistogramPoint]], start: float, end: float
) -> tuple[tuple[float, ...], list[float]] | None:
    """Per-second rate of every cumulative bucket of one histogram series over
    ``[start, end]`` (each bucket a counter, resets added), with the buckets' upper
    bounds; ``None`` with fewer than two points of its newest layout."""
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
    shape = window(n, t0, t1, start, end, per_second=True)
    return bounds, extrapolate(shape, change, first[COUNTS], counter=True)


# --- histogram_quantile ------------------------------------------------------------------


def histogram_quantile(q: float, bounds: Sequence[float], counts: Sequence[float]) -> float:
    """The ``q`` quantile of cumulative bucket ``counts`` by upper ``bounds`` (see
    :func:`histogram_quantiles`)."""
    return histogram_quantiles(q, bounds, (counts,))[0]


def histogram_quantiles(
    q: float, bounds: Sequence[float], many: Iterable[Sequence[float]],
    *, ascending: bool = False,
) -> list[float]:
    """The ``q`` quantile of each cumulative bucket counts in ``many``, all by the upper
    ``bounds``, exactly as Prometheus' ``bucketQuantile``: ``-Inf``/``+Inf`` for ``q``
    out of [0, 1], NaN without a ``+Inf`` bucket or observations; equal bounds merged,
    decreasing counts raised to the running maximum (a NaN count stays NaN), the bucket
    found by Go's binary search and the rank interpolated with Go's float division.
    ``ascending``: the caller has checked that every counts in ``many`` ascends (each
    ``<=`` the next, so no NaN), which each then need not check again."""
    if math.isnan(q):
        return [math.nan for _ in many]
    if q < 0 or q > 1:
        return [math.copysign(math.inf, q) for _ in many]
    if not bounds or bounds[-1] != math.inf:
        return [math.nan for _ in many]
    if not all(map(lt, bounds, islice(bounds, 1, None))):  # unsorted or duplicate bounds
        if any(bound != bound for bound in bounds):
            # a NaN bound has no place in the order (Prometheus' answer then depends on
            # the order its series come in): no quantile, rather than sorting forever
            return [math.nan for _ in many]
        return [histogram_quantile(q, *merge_buckets([(bounds, counts)])) for counts in many]
    if len(bounds) < 2:
        return [math.nan for _ in many]
    if ascending:
        return [_bucket_quantile(q, bounds, counts, True) for counts in many]
    return [_bucket_quantile(q, bounds, counts) for counts in many]


def merge_buckets(
    layouts: Iterable[tuple[Sequence[float], Sequence[float]]],
) -> tuple[list[float], list[float]]:
    """One ascending bucket layout from ``(bounds, counts)`` pairs of any layouts: the
    counts of equal bounds added (Prometheus merges ``le="1"`` and ``le="1.0"``)."""
    merged: dict[float, float] = {}
    for bounds, counts in layouts:
        for bound, count in zip(bounds, counts, strict=True):
            merged[bound] = merged.get(bound, 0.0) + count
    ordered = sorted(merged.items())
    return [b for b, _ in ordered], [c for _, c in ordered]


def _bucket_quantile(
    q: float, bounds: Sequence[float], counts: Sequence[float], ascending: bool = False,
) -> float:
    """The quantile of ascending, distinct ``bounds`` ending at +Inf, ``0 <= q <= 1``
    (``ascending``: ``counts`` are known to ascend)."""
    fixed: Sequence[float] = counts
    # False with a NaN count
    ordered = ascending or all(map(le, counts, islice(counts, 1, None)))
    if not ordered:
        fixed = _monotonic(counts)
    observations = fixed[-1]
    if observations == 0:
        return math.nan
    rank = q * observations
    top = len(bounds) - 1
    if ordered and rank == rank:
        # counts in order and no NaN: every binary search finds the first count >= rank,
        # so C's bisect gives what Go's sort.Search gives
        b = bisect_left(fixed, rank, 0, top)
    else:
        # Go's sort.Search(top, counts[i] >= rank): the same probes, so NaN counts (or
        # a NaN rank) lead where they lead in Prometheus
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


def go_div(a: float, b: float) -> float:
    """``a / b`` with IEEE semantics as Go computes it (no ZeroDivisionError)."""
    if b == 0:
        if a == 0 or a != a:
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)
    return a / b
