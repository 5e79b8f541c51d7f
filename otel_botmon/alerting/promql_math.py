"""The float arithmetic of PromQL's reductions, step for step as Prometheus 2.42 does it.

Summation order and method decide the last bits of a result, and a rule comparing
``sum(x) >= 1`` over ten series of ``0.1`` fires or not on those bits. So each reduction
here performs the same operations in the same order as Prometheus' engine:

* ``sum`` (aggregation): plain left-to-right addition;
* ``avg`` (aggregation): the running mean ``mean += v/n - mean/n``, keeping an infinite
  mean when the next value is finite or the same infinity;
* ``sum_over_time``: Kahan-Neumaier compensated summation (``kahanSumInc``);
* ``avg_over_time``: the running mean with Kahan-Neumaier compensation;
* ``min``/``max`` and ``min_over_time``/``max_over_time``: a NaN is replaced by any
  later value, and never replaces a number.

Python's built-in ``sum`` is not used: from Python 3.12 it compensates, which
Prometheus' ``sum`` does not.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import reduce
from operator import add

__all__ = [
    "aggregate_avg",
    "aggregate_max",
    "aggregate_min",
    "aggregate_sum",
    "avg_over_time",
    "kahan_sum_inc",
    "max_over_time",
    "min_over_time",
    "sum_over_time",
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
    count = 1
    for v in values[1:]:
        count += 1
        if math.isinf(mean) and (
            (math.isinf(v) and (mean > 0) == (v > 0)) or not (math.isinf(v) or math.isnan(v))
        ):
            continue
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
