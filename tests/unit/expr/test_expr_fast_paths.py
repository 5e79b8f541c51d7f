"""The evaluation fast paths give exactly what the straightforward computation gives.

Fast paths: rate/increase/delta from a window's first and last point with one
extrapolation shared by series sampled at the same times; quantiles that skip the
bucket repair when counts already ascend; ingest that caches series per SDK attributes
object and keeps running totals for delta temporality.
"""

from __future__ import annotations

import math
import operator

from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from otel_botmon import conventions as conv
from otel_botmon.query import Labels, MetricHistory, MetricKind, compile_condition
from otel_botmon.query._eval import BucketRates
from otel_botmon.query._maths import histogram_quantile, histogram_quantiles
from tests.unit.expr import _reference
from tests.unit.expr._reference import extrapolated_change

COUNTER = conv.EXCHANGE_REQUESTS.name


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


@st.composite
def counter_histories(draw: st.DrawFn) -> tuple[MetricHistory, float]:
    """Several series written at shared times, with resets, gaps and stale markers."""
    history = MetricHistory()
    series = draw(st.integers(1, 5))
    levels = [float(draw(st.integers(0, 200))) for _ in range(series)]
    t = draw(st.floats(0, 100))
    for _ in range(draw(st.integers(1, 14))):
        t += draw(st.sampled_from([10.0, 10.0, 10.0, 5.0, 15.0, 0.5]))
        for i in range(series):
            event = draw(st.integers(0, 19))
            if event == 0:
                continue  # a gap
            if event == 1:
                history.mark_stale(COUNTER, {"i": str(i)}, t)
                continue
            levels[i] = 0.0 if event == 2 else levels[i] + draw(st.integers(0, 50))
            history.add_point(COUNTER, {"i": str(i)}, levels[i], t, kind=MetricKind.COUNTER)
    return history, t + draw(st.sampled_from([0.0, 2.5, 9.0, 40.0]))


@settings(max_examples=300, deadline=None)
@given(counter_histories(), st.sampled_from(["rate", "increase", "delta"]),
       st.sampled_from(["30s", "1m", "5m"]))
def test_rate_increase_delta_equal_the_computation_over_all_points(
    case: tuple[MetricHistory, float], func: str, window: str,
) -> None:
    history, now = case
    range_s = {"30s": 30.0, "1m": 60.0, "5m": 300.0}[window]
    got = {
        s.labels["i"]: s.value
        for s in compile_condition(f"{func}({COUNTER}[{window}])").values(history, now)
    }
    want = {}
    for labels, points in history.window(COUNTER, now - range_s, now):
        value = extrapolated_change(points, now - range_s, now, counter=func != "delta",
                                    per_second=func == "rate")
        if value is not None:
            want[labels["i"]] = value
    assert got.keys() == want.keys()
    assert all(_same(got[k], want[k]) for k in got), (got, want)


LATENCY = conv.EXCHANGE_REQUEST_DURATION.name
_BOUNDS = (0.1, 0.5, 1.0)  # one object for every point, as an SDK instrument hands it


def _latency_point(attributes: dict[str, str], counts: list[int]) -> HistogramDataPoint:
    return HistogramDataPoint(
        attributes=attributes, start_time_unix_nano=0, time_unix_nano=1, count=sum(counts),
        sum=0.1 * sum(counts), bucket_counts=list(counts), explicit_bounds=_BOUNDS, min=0, max=0,
    )


def _histogram_collect(points: list[HistogramDataPoint]) -> MetricsData:
    data = Histogram(data_points=points,
                     aggregation_temporality=AggregationTemporality.CUMULATIVE)
    metric = Metric(name=LATENCY, description="", unit="s", data=data)
    scope = ScopeMetrics(scope=InstrumentationScope("t"), metrics=[metric], schema_url="")
    return MetricsData(resource_metrics=[
        ResourceMetrics(resource=Resource.create({}), scope_metrics=[scope], schema_url="")
    ])


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 6), st.lists(st.lists(st.integers(0, 10**6), min_size=4, max_size=4),
                                   min_size=2, max_size=8),
       st.sampled_from(["by ()", "by (g)"]), st.sampled_from([0.5, 0.95]))
def test_grouped_quantile_adds_bucket_rates_series_by_series(
    series: int, steps: list[list[int]], by: str, q: float,
) -> None:
    """``pNN(h[w]) by (...)`` sums each group's bucket rates in series order, one bucket
    rate at a time (the fast path adds whole layouts at once), then takes the quantile."""
    history = MetricHistory()
    attrs = [{"i": str(k), "g": str(k % 2)} for k in range(series)]
    totals = [[0] * 4 for _ in range(series)]
    t = 0.0
    for step in steps:
        t += 10.0
        points = []
        for k in range(series):
            # uneven growth per series and bucket, so the sums' last bits depend on order
            totals[k] = [c + (d * (k + 3)) // 7 for c, d in zip(totals[k], step, strict=True)]
            points.append(_latency_point(attrs[k], totals[k]))
        history.ingest(_histogram_collect(points), t)
    got = {s.labels.get("g", ""): s.value for s in compile_condition(
        f"p{round(q * 100)}({LATENCY}[1m]) {by}").values(history, t)}
    groups: dict[str, list[float] | None] = {}
    for labels, points in history.histogram_windows(LATENCY, t - 60.0, t):
        rates = _reference.bucket_rates(points, t - 60.0, t)
        if rates is None:
            continue
        key = labels["g"] if by == "by (g)" else ""
        total = groups.get(key)
        groups[key] = rates[1] if total is None else [a + b for a, b in
                                                       zip(total, rates[1], strict=True)]
    bounds = (*map(float, _BOUNDS), math.inf)
    want = {k: _reference.quantile(q, bounds, v) for k, v in groups.items() if v is not None}
    assert got.keys() == want.keys()
    assert all(_same(got[k], want[k]) for k in got), (got, want)


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 5),
       st.lists(st.lists(st.tuples(st.integers(0, 9), st.lists(st.integers(0, 10**4),
                                                                min_size=4, max_size=4)),
                         min_size=5, max_size=5),
                min_size=2, max_size=8),
       st.sampled_from([0.5, 0.95]))
def test_quantiles_of_whole_collects_equal_the_general_computation(
    series: int, steps: list[list[tuple[int, list[int]]]], q: float,
) -> None:
    """Over whole collects the series clean throughout the window are read end to end;
    with resets and missing points, some or all series are read point by point instead.
    Either way ``pNN(h[w])`` equals each series' own quantile, and ``by ()`` equals the
    general grouping (``by`` a label no series has: one group of every series)."""
    history = MetricHistory()
    attrs = [{"i": str(k), "g": str(k % 2)} for k in range(series)]
    totals = [[0] * 4 for _ in range(series)]
    t = 0.0
    for step in steps:
        t += 10.0
        points = []
        for k in range(series):
            event, growth = step[k]
            if event == 0:
                continue  # not in this collect
            if event == 1:
                totals[k] = [0] * 4  # the process restarted: a reset
            totals[k] = [c + (d * (k + 3)) // 7 for c, d in zip(totals[k], growth,
                                                                strict=True)]
            points.append(_latency_point(attrs[k], totals[k]))
        history.ingest(_histogram_collect(points), t)

    def values(expr: str) -> dict[str, float]:
        return {s.labels.get("i", ""): s.value
                for s in compile_condition(expr).values(history, t)}

    p = f"p{round(q * 100)}({LATENCY}[1m])"
    bounds = (*map(float, _BOUNDS), math.inf)
    want = {}
    for labels, points in history.histogram_windows(LATENCY, t - 60.0, t):
        rates = _reference.bucket_rates(points, t - 60.0, t)
        if rates is not None:
            want[labels["i"]] = _reference.quantile(q, bounds, rates[1])
    for got, general in ((values(p), want), (values(p), values(f"{p} by (i, g)")),
                         (values(f"{p} by ()"), values(f"{p} by (absent)"))):
        assert got.keys() == general.keys()
        assert all(_same(got[k], general[k]) for k in got), (got, general)


counts_strategy = st.lists(
    st.one_of(st.floats(0, 100), st.just(math.nan), st.just(math.inf)), min_size=1, max_size=8,
)


@settings(max_examples=500, deadline=None)
@given(counts_strategy, st.sampled_from([0.0, 0.25, 0.5, 0.95, 0.99, 1.0]), st.booleans())
def test_quantile_equals_the_one_over_repaired_counts(
    counts: list[float], q: float, ascending: bool,
) -> None:
    if ascending:
        counts = sorted(c for c in counts if not math.isnan(c)) or [0.0]
    bounds = [*(0.1 * (i + 1) for i in range(len(counts) - 1)), math.inf]
    repaired = _ensure_monotonic(counts)  # what Prometheus' bucket repair yields
    got = histogram_quantile(q, bounds, counts)
    want = _reference.quantile(q, bounds, repaired)
    assert _same(got, _reference.quantile(q, bounds, counts)), (counts, got)
    assert _same(got, want), (counts, got, want)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.floats(0, 100), min_size=4, max_size=4), max_size=6),
       st.sampled_from([0.0, 0.25, 0.5, 0.95, 1.0]))
def test_quantiles_of_counts_known_to_ascend_equal_the_checked_ones(
    many: list[list[float]], q: float,
) -> None:
    """``ascending=True`` (the caller checked every series at once) skips each series'
    own check and nothing else."""
    many = [sorted(counts) for counts in many]
    bounds = [0.1, 0.5, 1.0, math.inf]
    got = histogram_quantiles(q, bounds, many, ascending=True)
    want = histogram_quantiles(q, bounds, many)
    assert len(got) == len(want)
    assert all(_same(a, b) for a, b in zip(got, want, strict=True)), (got, want)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 5), st.data())
def test_bucket_rates_ascend_when_every_series_does(width: int, data: st.DataObject) -> None:
    """The check of every series at once (a pair of buckets at a time, over all series)
    says what checking each series on its own says, NaN included."""
    values = st.one_of(st.sampled_from([0.0, 1.0, 2.0, 3.0]), st.just(math.nan))
    series = data.draw(st.lists(st.lists(values, min_size=width, max_size=width),
                                max_size=5))
    if data.draw(st.booleans()):  # mostly ascending ones
        series = [sorted(s, key=lambda v: (v != v, v)) for s in series]
    rates = BucketRates([Labels({"i": str(k)}) for k in range(len(series))],
                        tuple(map(float, range(width))), [v for s in series for v in s], {})
    assert rates.ascending() == all(all(map(operator.le, s, s[1:])) for s in series)
    assert len(list(rates.series_rates())) == len(series)


def _ensure_monotonic(counts: list[float]) -> list[float]:
    """Prometheus' ensureMonotonic, transliterated: NaN compares false both ways."""
    out = list(counts)
    high = out[0]
    for i in range(1, len(out)):
        if out[i] > high:
            high = out[i]
        elif out[i] < high:
            out[i] = high
    return out


def _delta_sum(
    points: list[tuple[dict[str, str], float]],
    temporality: AggregationTemporality = AggregationTemporality.DELTA,
) -> MetricsData:
    data_points = [
        NumberDataPoint(attributes=attrs, start_time_unix_nano=0, time_unix_nano=1, value=v)
        for attrs, v in points
    ]
    metric = Metric(
        name=COUNTER, description="", unit="",
        data=Sum(data_points=data_points, is_monotonic=True,
                 aggregation_temporality=temporality),
    )
    scope = ScopeMetrics(scope=InstrumentationScope("t"), metrics=[metric], schema_url="")
    return MetricsData(resource_metrics=[
        ResourceMetrics(resource=Resource.create({}), scope_metrics=[scope], schema_url="")
    ])


def test_delta_temporality_is_summed_into_a_cumulative_history() -> None:
    history = MetricHistory()
    a, b = {"ex": "a"}, {"ex": "b"}
    history.ingest(_delta_sum([(a, 2.0), (b, 1.0)]), at=10.0)
    history.ingest(_delta_sum([(dict(a), 3.0)]), at=20.0)  # a new attributes object
    history.ingest(_delta_sum([(a, 0.5), (b, 4.0)]), at=30.0)
    latest = {s.labels["ex"]: s.value for s in history.latest(COUNTER, 30.0)}
    assert latest == {"a": 5.5, "b": 5.0}
    [(_, points)] = history.window(COUNTER, 15.0, 25.0, lambda labels: labels["ex"] == "a")
    assert points == [(20.0, 5.0)]


def test_a_series_pruned_and_reported_again_is_stored_afresh() -> None:
    history = MetricHistory(max_age_s=100.0)
    attrs = {"ex": "a"}
    history.ingest(_cumulative([(attrs, 1.0)]), at=0.0)
    history.ingest(_cumulative([]), at=10.0)  # vanished: stale marker
    history.prune(500.0)  # every point is older than max_age: the series is dropped
    assert history.series_count() == 0
    history.ingest(_cumulative([(attrs, 7.0)]), at=510.0)  # same attributes object again
    assert [s.value for s in history.latest(COUNTER, 510.0)] == [7.0]
    assert [s.labels for s in history.latest(COUNTER, 510.0)] == [Labels({"ex": "a"})]


def _cumulative(points: list[tuple[dict[str, str], float]]) -> MetricsData:
    return _delta_sum(points, AggregationTemporality.CUMULATIVE)
