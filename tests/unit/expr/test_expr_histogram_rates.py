"""Whole-point bucket rates equal Prometheus' per-bucket-series rate(), resets included."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otel_botmon.query import MetricHistory
from otel_botmon.query._maths import bucket_rates, histogram_quantiles
from tests.unit.expr._reference import extrapolated_change

BOUNDS = [0.5, 1.0, 2.0]


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[tuple[float, list[float]]], float, float]:
    steps = draw(st.integers(min_value=2, max_value=12))
    counts = [float(draw(st.integers(0, 50))) for _ in range(len(BOUNDS) + 1)]
    points = []
    t = draw(st.floats(0, 30))
    for _ in range(steps):
        if draw(st.booleans()) and draw(st.integers(0, 9)) == 0:
            counts = [0.0] * len(counts)  # a process restart: every bucket resets
        counts = [c + draw(st.integers(0, 20)) for c in counts]
        points.append((t, list(counts)))
        t += draw(st.sampled_from([5.0, 10.0, 15.0]))
    end = points[-1][0] + draw(st.floats(0, 20))
    start = end - draw(st.floats(20, 200))
    return points, start, end


@settings(max_examples=300, deadline=None)
@given(histories())
def test_bucket_rates_match_per_bucket_rate(
    case: tuple[list[tuple[float, list[float]]], float, float],
) -> None:
    raw, start, end = case
    history = MetricHistory()
    for t, counts in raw:
        history.add_histogram_point("h", {}, BOUNDS, counts, 0.0, sum(counts), t)
    [(_, series)] = history.select("h")
    points = series.window(start, end)
    cumulative = [
        (t, [sum(counts[: i + 1]) for i in range(len(counts))]) for t, counts in raw
        if start - 1e-9 <= t <= end + 1e-9
    ]
    expected = [
        extrapolated_change([(t, c[i]) for t, c in cumulative], start, end,
                            counter=True, per_second=True)
        for i in range(len(BOUNDS) + 1)
    ]
    got = bucket_rates(points, start, end) if len(points) >= 2 else None
    if expected[0] is None:
        assert got is None
        return
    assert got is not None
    assert got[1] == pytest.approx(expected, rel=1e-9, abs=1e-12)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([0.1, 1.0, 10.0, math.inf, math.nan, -1.0]), min_size=1,
                max_size=8),
       st.floats(min_value=0, max_value=1))
def test_a_nan_bound_gives_nan_not_endless_sorting(bounds: list[float], q: float) -> None:
    """Bucket bounds with a NaN (an ``le="NaN"`` series, or SDK bounds) cannot be put in
    order; the quantile is NaN (it used to recurse until RecursionError)."""
    if not any(math.isnan(b) for b in bounds) or bounds[-1] != math.inf:
        bounds = [*bounds, math.nan, math.inf]
    counts = [float(i) for i in range(len(bounds))]
    [value] = histogram_quantiles(q, bounds, [counts])
    assert math.isnan(value)
