"""MetricHistory: ingesting the SDK's cumulative data, bounds, vanishing and retyped metrics."""

from __future__ import annotations

import pytest
from opentelemetry.metrics import Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from otel_botmon import conventions as conv
from otel_botmon.query import Labels, MetricHistory, MetricKind, Sample, compile_condition


@pytest.fixture
def sdk() -> tuple[InMemoryMetricReader, MeterProvider]:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    yield reader, provider
    provider.shutdown()


def test_ingest_counters_gauges_and_histograms(sdk) -> None:
    reader, provider = sdk
    meter = provider.get_meter("test")
    trades = meter.create_counter(conv.TRADES.name)
    pnl = meter.create_up_down_counter(conv.PNL_REALIZED.name)
    duration = meter.create_histogram(
        conv.TRADE_DURATION.name, explicit_bucket_boundaries_advisory=[0.5, 1.0, 2.0]
    )
    attrs = {conv.TRADING_SYMBOL: "BTCUSDT", conv.HTTP_RESPONSE_STATUS_CODE: 200, "flag": True}
    trades.add(2, attrs)
    pnl.add(-5.5, {conv.TRADING_SYMBOL: "BTCUSDT"})
    duration.record(0.7, {conv.TRADING_SYMBOL: "BTCUSDT"})
    duration.record(3.0, {conv.TRADING_SYMBOL: "BTCUSDT"})
    history = MetricHistory()
    history.ingest(reader.get_metrics_data(), at=100.0)

    assert history.kind(conv.TRADES.name) is MetricKind.COUNTER
    assert history.kind(conv.PNL_REALIZED.name) is MetricKind.UP_DOWN_COUNTER
    assert history.kind(conv.TRADE_DURATION.name) is MetricKind.HISTOGRAM
    [sample] = history.latest(conv.TRADES.name, 100.0)
    # attribute values become strings, booleans in Prometheus' spelling
    assert sample == Sample(
        Labels({conv.TRADING_SYMBOL: "BTCUSDT", conv.HTTP_RESPONSE_STATUS_CODE: "200",
                "flag": "true"}), 2.0)
    [(_, points)] = history.histogram_windows(conv.TRADE_DURATION.name, 0, 100)
    [(_, point)] = points
    # cumulative by upper bound, like Prometheus' le buckets
    bounds, counts, sum_, total = point
    assert dict(zip(bounds, counts, strict=True)) == {
        0.5: 0.0, 1.0: 1.0, 2.0: 1.0, float("inf"): 2.0,
    }
    assert (sum_, total) == (3.7, 2.0)
    assert compile_condition("pnl < -5").evaluate(history, 100.0)[0].value == -5.5


def test_vanished_series_become_stale(sdk) -> None:
    reader, provider = sdk
    current: dict[str, float] = {"exchange_api": 2.0, "database": 0.0}

    def observe(_options):
        return [Observation(v, {conv.HEALTH_COMPONENT: k}) for k, v in current.items()]

    provider.get_meter("test").create_observable_gauge(conv.HEALTH_STATUS.name, [observe])
    history = MetricHistory()
    history.ingest(reader.get_metrics_data(), at=0.0)
    assert len(history.latest(conv.HEALTH_STATUS.name, 0.0)) == 2
    del current["exchange_api"]
    history.ingest(reader.get_metrics_data(), at=10.0)
    [left] = history.latest(conv.HEALTH_STATUS.name, 10.0)
    assert left.labels[conv.HEALTH_COMPONENT] == "database"
    current.clear()  # the whole metric disappears from the collection
    history.ingest(reader.get_metrics_data(), at=20.0)
    assert history.latest(conv.HEALTH_STATUS.name, 20.0) == []


def test_metric_that_changes_type_starts_over() -> None:
    history = MetricHistory()
    history.add_point("x", {}, 1.0, 0)
    history.add_histogram_point("x", {}, [1.0], [1, 0], 0.5, 1, 10)
    assert history.kind("x") is MetricKind.HISTOGRAM
    assert history.latest("x", 10) == []
    history.add_point("x", {}, 3.0, 20, kind=MetricKind.COUNTER)
    assert history.latest("x", 20) == [Sample(Labels(), 3.0)]


def test_ingest_of_nothing_is_harmless() -> None:
    history = MetricHistory()
    history.ingest(None, at=0.0)
    assert history.metric_names() == set()


def test_ring_buffer_bounds_points_per_series() -> None:
    history = MetricHistory(max_points_per_series=5)
    for t in range(100):
        history.add_point("g", {}, float(t), float(t))
    [(_, points)] = history.window("g", 0, 100)
    assert [p[0] for p in points] == [95, 96, 97, 98, 99]


def test_points_older_than_max_age_are_pruned() -> None:
    history = MetricHistory(max_age_s=60)
    history.add_point("old", {}, 1.0, 0)
    history.add_point("young", {}, 1.0, 100)
    history.prune(120)
    assert history.metric_names() == {"young"}
    assert history.series_count() == 1


def test_out_of_order_points_are_ignored_and_same_time_replaces() -> None:
    history = MetricHistory()
    history.add_point("g", {}, 1.0, 10)
    history.add_point("g", {}, 2.0, 5)
    history.add_point("g", {}, 3.0, 10)
    assert history.window("g", 0, 20) == [(Labels(), [(10, 3.0)])]


def test_invalid_bounds_are_rejected() -> None:
    with pytest.raises(ValueError):
        MetricHistory(max_age_s=0)
    with pytest.raises(ValueError):
        MetricHistory(max_points_per_series=1)


def test_labels_are_hashable_mappings() -> None:
    a = Labels({"b": "2", "a": "1"})
    assert a == Labels([("a", "1"), ("b", "2")]) == {"a": "1", "b": "2"}
    assert hash(a) == hash(Labels({"a": "1", "b": "2"}))
    assert list(a) == ["a", "b"]
    assert a.only(["a"]) == {"a": "1"} and a.without(["a"]) == {"b": "2"}
    assert Sample({"x": "y"}, 1.0).labels == Labels({"x": "y"})  # type: ignore[arg-type]


def test_ingest_only_the_metrics_rules_read(sdk) -> None:
    reader, provider = sdk
    meter = provider.get_meter("test")
    meter.create_counter(conv.TRADES.name).add(1)
    meter.create_counter(conv.TRADE_VOLUME.name).add(1)
    history = MetricHistory()
    history.ingest(reader.get_metrics_data(), at=0.0, only={conv.TRADES.name})
    assert history.metric_names() == {conv.TRADES.name}
    history.ingest(reader.get_metrics_data(), at=10.0)
    history.ingest(reader.get_metrics_data(), at=20.0, only={conv.TRADES.name})
    # a metric outside `only` is not marked stale: it was skipped, not gone
    assert len(history.latest(conv.TRADE_VOLUME.name, 20.0)) == 1
