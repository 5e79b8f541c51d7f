"""Ingest and instant selectors give exactly what one Series per series gives.

Ingest appends a steady SDK collect as one row and writes any other shape point by
point; instant selectors read a whole row when every series has a value in it. Each is
checked against ``Series`` (one ring buffer per series) on histories with gaps, stale
markers, resets, NaN and rewrites (a point at the same time again).
"""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
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
from otel_botmon.query._series import Series
from otel_botmon.query._types import TIME_SLACK

GAUGE = conv.EXCHANGE_RATELIMIT_USED.name
COUNTER = conv.EXCHANGE_REQUESTS.name
LATENCY = conv.EXCHANGE_REQUEST_DURATION.name

values_strategy = st.one_of(
    st.integers(0, 100).map(float), st.just(math.nan), st.just(-1.0), st.just(math.inf)
)


def _same_series(a: Series, b: Series) -> bool:
    def same(x: object, y: object) -> bool:
        return x == y or (isinstance(x, float) and isinstance(y, float)
                          and math.isnan(x) and math.isnan(y))
    # a point within the time slack of a row of other series is stored at that row's time
    return (
        len(a.times) == len(b.times)
        and all(abs(x - y) <= TIME_SLACK for x, y in zip(a.times, b.times, strict=True))
        and len(a.values) == len(b.values)
        and all(same(x, y) for x, y in zip(a.values, b.values, strict=True))
    )


@st.composite
def shared_time_series(draw: st.DrawFn) -> tuple[list[Series], float, float]:
    """Series mostly written at the same times, some with gaps, stale markers, resets."""
    count = draw(st.integers(1, 6))
    series = [Series(draw(st.integers(2, 8))) for _ in range(count)]
    levels = [0.0] * count
    t = draw(st.floats(0, 100))
    for _ in range(draw(st.integers(0, 12))):
        t += draw(st.sampled_from([10.0, 10.0, 5.0, 0.5, 1e-10]))
        for i, s in enumerate(series):
            event = draw(st.integers(0, 15))
            if event == 0:
                continue  # a gap: this series' times differ from the others' from now on
            if event == 1:
                s.append(t, None)
                continue
            levels[i] = 0.0 if event == 2 else levels[i] + draw(st.integers(0, 9))
            s.append(t, levels[i])
    end = t + draw(st.sampled_from([-20.0, -10.0, 0.0, 1e-10, 5.0, 400.0]))
    start = end - draw(st.sampled_from([0.0, 10.0, 30.0, 60.0, 300.0]))
    return series, start, end


@settings(max_examples=300, deadline=None)
@given(shared_time_series(), st.sampled_from([0.0, 1e-10, 100.0, 299.0, 301.0]))
def test_instant_selector_equals_series_latest(
    case: tuple[list[Series], float, float], after: float,
) -> None:
    series, _, end = case
    history = MetricHistory()
    for i, s in enumerate(series):
        for t, v in zip(s.times, s.values, strict=True):
            if v is None:
                history.mark_stale(GAUGE, {"i": str(i)}, t)
            else:
                history.add_point(GAUGE, {"i": str(i)}, v, t)
    now = end + after
    got = {s.labels["i"]: s.value for s in compile_condition(GAUGE).values(history, now)}
    want = {}
    for labels, stored in history.select(GAUGE):
        value = stored.latest(now, history.lookback_s)
        if value is not None:
            want[labels["i"]] = value
    assert got.keys() == want.keys()
    assert all(got[k] == want[k] or (math.isnan(got[k]) and math.isnan(want[k])) for k in got)


def _data(metrics: list[Metric]) -> MetricsData:
    scope = ScopeMetrics(scope=InstrumentationScope("t"), metrics=metrics, schema_url="")
    return MetricsData(resource_metrics=[
        ResourceMetrics(resource=Resource.create({}), scope_metrics=[scope], schema_url="")
    ])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.one_of(st.none(), values_strategy), min_size=3, max_size=3),
                min_size=1, max_size=10),
       st.lists(st.sampled_from([10.0, 10.0, 0.0, -5.0, 1e-10]), min_size=10, max_size=10),
       st.booleans())
def test_ingest_stores_what_series_append_stores(
    rows: list[list[float | None]], steps: list[float], monotonic: bool,
) -> None:
    """Cumulative sums and gauges through ingest (same attribute objects every collect,
    as the SDK hands them) equal Series.append of the same values, stale markers for
    missing points included; a repeated or earlier time takes the rewrite path."""
    attrs = [{"i": str(i)} for i in range(3)]
    history = MetricHistory()
    expected = {i: Series(history.max_points_per_series) for i in range(3)}
    t = 1000.0
    for row, step in zip(rows, steps, strict=False):
        t += step
        points = [
            NumberDataPoint(attributes=attrs[i], start_time_unix_nano=0, time_unix_nano=1,
                            value=v)
            for i, v in enumerate(row) if v is not None
        ]
        data = (
            Sum(data_points=points, is_monotonic=monotonic,
                aggregation_temporality=AggregationTemporality.CUMULATIVE)
            if monotonic else Gauge(data_points=points)
        )
        history.ingest(_data([Metric(name=COUNTER, description="", unit="", data=data)]), t)
        for i, v in enumerate(row):
            if v is not None:
                expected[i].append(t, v)
            elif expected[i].values and expected[i].last_value is not None:
                expected[i].append(t, None)
    stored = dict(history.select(COUNTER))
    for i, want in expected.items():
        got = stored.get(Labels({"i": str(i)}))
        if got is None:
            assert not want.times
        else:
            assert _same_series(got, want)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.integers(0, 5), min_size=3, max_size=3), min_size=1,
                max_size=8),
       st.lists(st.sampled_from([10.0, 0.0, -5.0]), min_size=8, max_size=8))
def test_ingest_stores_histograms_as_series_append_does(
    increments: list[list[int]], steps: list[float],
) -> None:
    """Histogram points through ingest (bucket counts that may also go down: a restart)
    equal Series.append of the same whole points."""
    attrs = {"i": "0"}
    bounds = (0.5, 1.0)
    history = MetricHistory()
    counts = [0, 0, 0]
    t = 1000.0
    appended: list[tuple[float, list[int]]] = []
    for incs, step in zip(increments, steps, strict=False):
        t += step
        counts = [0, 0, 0] if sum(incs) == 0 else [c + d for c, d in zip(counts, incs,
                                                                           strict=True)]
        point = HistogramDataPoint(
            attributes=attrs, start_time_unix_nano=0, time_unix_nano=1,
            count=sum(counts), sum=float(sum(counts)), bucket_counts=list(counts),
            explicit_bounds=bounds, min=0.0, max=1.0,
        )
        data = Histogram(data_points=[point],
                         aggregation_temporality=AggregationTemporality.CUMULATIVE)
        history.ingest(_data([Metric(name=LATENCY, description="", unit="s", data=data)]), t)
        appended.append((t, list(counts)))
    reference = MetricHistory()
    for at, c in appended:
        reference.add_histogram_point(LATENCY, attrs, bounds, c, float(sum(c)), sum(c), at)
    [(_, got)] = history.select(LATENCY)
    [(_, want)] = reference.select(LATENCY)
    assert _same_series(got, want)


def test_a_histogram_without_points_in_the_window_is_left_out() -> None:
    history = MetricHistory()
    for at in (0.0, 10.0, 20.0):
        history.add_histogram_point(LATENCY, {"ex": "old"}, [1.0], [1, int(at)], 1.0, 1 + at,
                                    at)
    for at in (500.0, 510.0, 520.0):
        history.add_histogram_point(LATENCY, {"ex": "new"}, [1.0], [1, int(at)], 1.0, 1 + at,
                                    at)
    samples = compile_condition(f"p95({LATENCY}[1m])").values(history, 520.0)
    assert [s.labels["ex"] for s in samples] == ["new"]
    assert history.kind(LATENCY) is MetricKind.HISTOGRAM
