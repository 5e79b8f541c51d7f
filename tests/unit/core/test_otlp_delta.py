"""OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=delta reaches the wire as deltas.

otel_botmon aggregates cumulatively (its alert evaluator reads the in-memory reader);
for an OTLP exporter that prefers delta, counters and histograms go out as the change
since the last successful export. Checked against a real OTLP/HTTP receiver.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality as Wire
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Metric,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from otel_botmon import conventions as conv
from otel_botmon import telemetry
from otel_botmon.exporters.temporality import CumulativeToDelta, with_preferred_temporality
from tests.otlp_receiver import OtlpReceiver

SYMBOL = {conv.TRADING_SYMBOL: "BTCUSDT", conv.TRADING_OUTCOME: "filled"}


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[OtlpReceiver]:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "delta")
    with OtlpReceiver() as running:
        yield running


@pytest.fixture
def tel(receiver: OtlpReceiver) -> Iterator[telemetry.Telemetry]:
    """otel_botmon exporting to the receiver, pushed only by force_flush()."""
    running = telemetry.configure("delta-bot", otlp_endpoint=receiver.endpoint,
                                  export_interval_s=3600, set_global=False)
    yield running
    running.shutdown(timeout_s=5)


def _pushed(receiver: OtlpReceiver, name: str, count: int) -> list[tuple[Any, Any]]:
    """The first ``count`` exports' (metric, data point) of ``name``, in order."""
    receiver.wait_for(lambda r: len(_points(r, name)) >= count)
    return _points(receiver, name)[:count]


def _points(receiver: OtlpReceiver, name: str) -> list[tuple[Any, Any]]:
    out = []
    for _, _, metric in receiver.metrics():
        if metric.name == name:
            data = getattr(metric, metric.WhichOneof("data"))
            out.extend((data, point) for point in data.data_points)
    return out


def test_counters_and_histograms_go_out_as_deltas(
    receiver: OtlpReceiver, tel: telemetry.Telemetry,
) -> None:
    trades = telemetry.instrument(conv.TRADES)
    durations = telemetry.instrument(conv.TRADE_DURATION)
    trades.add(3, SYMBOL)
    durations.record(0.2, SYMBOL)
    durations.record(0.3, SYMBOL)
    assert tel.force_flush(timeout_s=10)
    receiver.wait_for(lambda r: len(_points(r, conv.TRADE_DURATION.name)) >= 1)
    trades.add(4, SYMBOL)
    durations.record(7.0, SYMBOL)
    assert tel.force_flush(timeout_s=10)
    (sum1, first), (sum2, second) = _pushed(receiver, conv.TRADES.name, 2)
    assert sum1.aggregation_temporality == sum2.aggregation_temporality == Wire.Value(
        "AGGREGATION_TEMPORALITY_DELTA")
    assert sum2.is_monotonic
    assert (first.as_int or first.as_double) == 3
    assert (second.as_int or second.as_double) == 4
    assert second.start_time_unix_nano == first.time_unix_nano  # intervals chain
    (h1, one), (_, two) = _pushed(receiver, conv.TRADE_DURATION.name, 2)
    assert h1.aggregation_temporality == Wire.Value("AGGREGATION_TEMPORALITY_DELTA")
    assert (one.count, two.count) == (2, 1)
    assert two.sum == pytest.approx(7.0) and sum(two.bucket_counts) == 1
    assert two.max == 7.0  # the cumulative maximum moved: it is this interval's
    assert two.start_time_unix_nano == one.time_unix_nano


def test_a_failed_export_is_carried_into_the_next(
    receiver: OtlpReceiver, tel: telemetry.Telemetry,
) -> None:
    trades = telemetry.instrument(conv.TRADES)
    trades.add(2, SYMBOL)
    assert tel.force_flush(timeout_s=10)
    _pushed(receiver, conv.TRADES.name, 1)
    receiver.fail_next(1, status=400)  # not retried: this export is lost
    trades.add(5, SYMBOL)
    tel.force_flush(timeout_s=10)
    trades.add(1, SYMBOL)
    receiver.reset()
    assert tel.force_flush(timeout_s=10)
    [(_, point)] = _pushed(receiver, conv.TRADES.name, 1)
    assert (point.as_int or point.as_double) == 6  # 5 from the failed export, plus 1


def test_up_down_counters_stay_cumulative_under_delta(
    receiver: OtlpReceiver, tel: telemetry.Telemetry,
) -> None:
    pnl = telemetry.instrument(conv.PNL_REALIZED)
    pnl.add(2, {conv.TRADING_SYMBOL: "ETHUSDT"})
    assert tel.force_flush(timeout_s=10)
    pnl.add(1, {conv.TRADING_SYMBOL: "ETHUSDT"})
    assert tel.force_flush(timeout_s=10)
    (data, first), (_, second) = _pushed(receiver, conv.PNL_REALIZED.name, 2)
    assert data.aggregation_temporality == Wire.Value("AGGREGATION_TEMPORALITY_CUMULATIVE")
    assert ((first.as_int or first.as_double), (second.as_int or second.as_double)) == (2, 3)


def test_delta_otlp_and_cumulative_influxdb_share_one_collection(
    receiver: OtlpReceiver,
) -> None:
    """InfluxDB takes cumulative data; with OTLP preferring delta on the same interval
    both are still fed from one collection."""
    tel = telemetry.configure(
        "delta-bot", otlp_endpoint=receiver.endpoint, export_interval_s=3600,
        set_global=False,
        influxdb={"url": "http://127.0.0.1:9", "token": "", "org": "o", "bucket": "b"},
    )
    try:
        telemetry.instrument(conv.TRADES).add(1, SYMBOL)
        tel.force_flush(timeout_s=1)  # InfluxDB is unreachable: its part fails
        [(data, _)] = _pushed(receiver, conv.TRADES.name, 1)
        assert data.aggregation_temporality == Wire.Value("AGGREGATION_TEMPORALITY_DELTA")
    finally:
        tel.shutdown(timeout_s=1)


class _Recorder(MetricExporter):
    def __init__(self, preferred: dict[type, AggregationTemporality]) -> None:
        super().__init__(preferred_temporality=preferred)
        self.exported: list[MetricsData] = []

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000,
               **kwargs: Any) -> MetricExportResult:
        self.exported.append(metrics_data)
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        pass


def _counter_data(value: float, start: int, time: int) -> MetricsData:
    point = NumberDataPoint(attributes={"a": "1"}, start_time_unix_nano=start,
                            time_unix_nano=time, value=value)
    metric = Metric(name="c", description="", unit="", data=Sum(
        data_points=[point], aggregation_temporality=AggregationTemporality.CUMULATIVE,
        is_monotonic=True))
    return MetricsData(resource_metrics=[ResourceMetrics(
        resource=Resource.create({}), schema_url="",
        scope_metrics=[ScopeMetrics(scope=InstrumentationScope("s"), metrics=[metric],
                                    schema_url="")])])


def test_a_restarted_or_reset_counter_starts_a_new_interval() -> None:
    from opentelemetry.sdk.metrics import Counter

    inner = _Recorder({Counter: AggregationTemporality.DELTA})
    exporter = with_preferred_temporality(inner)
    assert isinstance(exporter, CumulativeToDelta)
    for value, start, time in ((10, 1, 5), (15, 1, 9), (4, 20, 25), (2, 20, 30), (7, 20, 35)):
        exporter.export(_counter_data(value, start, time))
    points = [d.resource_metrics[0].scope_metrics[0].metrics[0].data.data_points[0]
              for d in inner.exported]
    # a restart (new start time) at 25 is sent whole from 20; a reset at 30 (same start
    # time, lower value) counts for the interval since the previous point only
    assert [(p.value, p.start_time_unix_nano) for p in points] == [
        (10, 1), (5, 5), (4, 20), (2, 25), (5, 30)]


def test_cumulative_exporters_are_left_as_they_are() -> None:
    inner = _Recorder({})
    assert with_preferred_temporality(inner) is inner


def test_a_stream_an_observable_instrument_skips_continues_where_it_was() -> None:
    """An observable counter's callback may report nothing for a stream in one collect;
    when the stream is back, only the change since its last export is sent."""
    from opentelemetry.metrics import CallbackOptions, Observation
    from opentelemetry.sdk.metrics import Counter, MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader]).get_meter("m")
    script = iter([[10], [], [15]])

    def observe(options: CallbackOptions) -> list[Observation]:
        return [Observation(v, {"k": "A"}) for v in next(script)]

    meter.create_observable_counter("bytes", callbacks=[observe])
    meter.create_counter("orders").add(1)  # keeps every collect non-empty
    inner = _Recorder({Counter: AggregationTemporality.DELTA})
    exporter = CumulativeToDelta(inner)
    for _ in range(3):
        data = reader.get_metrics_data()
        assert data is not None
        exporter.export(data)
    sent = [p for d in inner.exported for rm in d.resource_metrics
            for sm in rm.scope_metrics for m in sm.metrics if m.name == "bytes"
            for p in m.data.data_points]
    assert [p.value for p in sent] == [10, 5]
    assert sent[1].start_time_unix_nano == sent[0].time_unix_nano


def test_streams_gone_for_good_are_forgotten() -> None:
    """The state stays bounded: streams missing from 100 successful exports in a row are
    dropped once it holds far more streams than an export reports."""
    from opentelemetry.sdk.metrics import Counter

    resource = Resource.create({})  # one process: one resource (and instance id)

    def data(streams: int) -> MetricsData:
        points = [NumberDataPoint(attributes={"k": str(k)}, start_time_unix_nano=1,
                                  time_unix_nano=2, value=1.0) for k in range(streams)]
        metric = Metric(name="c", description="", unit="", data=Sum(
            data_points=points, aggregation_temporality=AggregationTemporality.CUMULATIVE,
            is_monotonic=True))
        return MetricsData(resource_metrics=[ResourceMetrics(
            resource=resource, schema_url="",
            scope_metrics=[ScopeMetrics(scope=InstrumentationScope("s"), metrics=[metric],
                                        schema_url="")])])

    exporter = CumulativeToDelta(_Recorder({Counter: AggregationTemporality.DELTA}))
    exporter.export(data(1500))
    for _ in range(99):
        exporter.export(data(1))
    assert len(exporter._previous) == 1500  # missing from 99 exports: still remembered
    exporter.export(data(1))  # the 100th
    assert len(exporter._previous) == 1
