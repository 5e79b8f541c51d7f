"""Exporters that never make the bot wait: handoff queue, shedding, metric pushing."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    InMemoryMetricReader,
    MetricExporter,
    MetricExportResult,
    MetricsData,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from otel_botmon.exporters.handoff import HandoffSpanExporter, ShedWhenBacklogged
from otel_botmon.exporters.push import MetricPusher
from tests.services import wait_until


class BlockingSpanExporter(SpanExporter):
    """Blocks every export until ``release`` is set, like an endpoint that never answers."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.exported: list[str] = []
        self.calls = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.calls += 1
        self.release.wait(10)
        self.exported.extend(span.name for span in spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.release.set()


def test_export_returns_at_once_while_the_endpoint_hangs() -> None:
    inner = BlockingSpanExporter()
    handoff = HandoffSpanExporter(inner, max_batches=2)
    assert handoff.export([]) is SpanExportResult.SUCCESS
    wait_until(lambda: inner.calls == 1)  # the sender is stuck in the first export
    started = time.perf_counter()
    for _ in range(9):
        assert handoff.export([]) is SpanExportResult.SUCCESS
    assert time.perf_counter() - started < 0.5
    assert handoff.backlogged
    assert handoff.dropped_batches == 7  # 1 in flight, 2 queued, the rest pushed out
    inner.release.set()
    assert handoff.force_flush(5_000)
    handoff.shutdown()


def test_spans_are_shed_while_backlogged_and_flow_again_after() -> None:
    inner = BlockingSpanExporter()
    handoff = HandoffSpanExporter(inner, max_batches=1)
    gate = ShedWhenBacklogged(SimpleSpanProcessor(handoff), handoff)
    provider = TracerProvider()
    provider.add_span_processor(gate)
    tracer = provider.get_tracer("t")

    tracer.start_span("in-flight").end()
    wait_until(lambda: inner.calls == 1)
    tracer.start_span("queued").end()
    assert handoff.backlogged
    for _ in range(5):
        tracer.start_span("shed").end()
    assert gate.dropped_spans == 5

    inner.release.set()
    assert handoff.force_flush(5_000)
    tracer.start_span("after").end()
    assert handoff.force_flush(5_000)
    assert inner.exported == ["in-flight", "queued", "after"]
    provider.shutdown()


class RecordingMetricExporter(MetricExporter):
    def __init__(self) -> None:
        super().__init__()
        self.batches: list[MetricsData] = []
        self.shut = False

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000,
               **kwargs: Any) -> MetricExportResult:
        self.batches.append(metrics_data)
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self.shut = True


def test_pusher_exports_the_shared_reader_and_a_last_time_on_shutdown() -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    counter = provider.get_meter("t").create_counter("botmon.trades")
    exporter = RecordingMetricExporter()
    pusher = MetricPusher(reader, exporter, interval_s=0.05)
    counter.add(2)
    wait_until(lambda: len(exporter.batches) >= 1)
    counter.add(3)
    pusher.shutdown(timeout_s=2)
    assert exporter.shut
    last = exporter.batches[-1]
    (point,) = last.resource_metrics[0].scope_metrics[0].metrics[0].data.data_points
    assert point.value == 5  # cumulative: the last export carries everything
    # the in-memory reader still works for the alert evaluator after the pusher collected
    assert reader.get_metrics_data() is not None
    provider.shutdown()


def test_pusher_rejects_a_non_positive_interval() -> None:
    reader = InMemoryMetricReader()
    MeterProvider(metric_readers=[reader])
    try:
        MetricPusher(reader, RecordingMetricExporter(), interval_s=0)
    except ValueError as exc:
        assert "export interval must be > 0" in str(exc)
    else:
        raise AssertionError("expected ValueError")
