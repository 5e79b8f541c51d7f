"""One reader feeds OTLP and InfluxDB: same data to both, failures kept apart."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.sdk.metrics import Counter
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    MetricExporter,
    MetricExportResult,
    MetricsData,
)

from otel_botmon import telemetry
from otel_botmon.exporters.fanout import FanoutMetricExporter
from otel_botmon.exporters.influxdb import InfluxDBMetricExporter
from tests.services import free_port


class RecordingExporter(MetricExporter):
    def __init__(self, name: str, calls: list[str], result: Any = MetricExportResult.SUCCESS,
                 temporality: AggregationTemporality = AggregationTemporality.CUMULATIVE) -> None:
        super().__init__(preferred_temporality={Counter: temporality})
        self.name, self.calls, self.result = name, calls, result

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000,
               **kwargs: Any) -> MetricExportResult:
        self.calls.append(f"export {self.name}")
        if isinstance(self.result, Exception):
            raise self.result
        return self.result  # type: ignore[no-any-return]

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        self.calls.append(f"flush {self.name}")
        return self.result is MetricExportResult.SUCCESS

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self.calls.append(f"shutdown {self.name}")


EMPTY = MetricsData(resource_metrics=[])


def test_every_exporter_gets_the_data_in_order() -> None:
    calls: list[str] = []
    fanout = FanoutMetricExporter([RecordingExporter("a", calls), RecordingExporter("b", calls)])
    assert fanout.export(EMPTY) is MetricExportResult.SUCCESS
    assert fanout.force_flush()
    fanout.shutdown()
    assert calls == ["export a", "export b", "flush a", "flush b", "shutdown a", "shutdown b"]


def test_one_failing_exporter_does_not_stop_the_others() -> None:
    calls: list[str] = []
    fanout = FanoutMetricExporter([
        RecordingExporter("a", calls, RuntimeError("boom")),
        RecordingExporter("b", calls, MetricExportResult.FAILURE),
        RecordingExporter("c", calls),
    ])
    assert fanout.export(EMPTY) is MetricExportResult.FAILURE
    assert calls == ["export a", "export b", "export c"]


def test_exporters_wanting_other_temporalities_are_refused() -> None:
    calls: list[str] = []
    with pytest.raises(ValueError, match="temporalities"):
        FanoutMetricExporter([
            RecordingExporter("a", calls),
            RecordingExporter("b", calls, temporality=AggregationTemporality.DELTA),
        ])


def test_configure_with_otlp_and_influxdb_uses_one_pusher() -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    tel = telemetry.configure(
        "fan-bot", otlp_endpoint=dead, set_global=False,
        influxdb={"url": dead, "token": "t", "org": "o", "bucket": "b"},
    )
    assert len(tel.pushers) == 1
    exporter = tel.pushers[0].exporter
    assert isinstance(exporter, FanoutMetricExporter)
    assert isinstance(exporter.exporters[0], InfluxDBMetricExporter)
    tel.shutdown(timeout_s=2.0)


def test_influxdb_with_its_own_interval_gets_its_own_pusher() -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    tel = telemetry.configure(
        "fan-bot-2", otlp_endpoint=dead, export_interval_s=30, set_global=False,
        influxdb={"url": dead, "token": "t", "org": "o", "bucket": "b", "export_interval_s": 5},
    )
    assert len(tel.pushers) == 2
    assert any(isinstance(p.exporter, InfluxDBMetricExporter) for p in tel.pushers)
    assert sorted(p.interval_s for p in tel.pushers) == [5, 30]
    tel.shutdown(timeout_s=2.0)
