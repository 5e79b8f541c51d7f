"""One metric reader feeding several exporters.

Every ``MetricReader`` on a ``MeterProvider`` keeps its own aggregation of every
measurement, so each extra reader adds work to every ``counter.add()`` on the bot's hot
path. When two push exporters (OTLP and InfluxDB) share an export interval,
:class:`FanoutMetricExporter` lets one ``PeriodicExportingMetricReader`` collect once and
hand the same data to both.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    MetricExporter,
    MetricExportResult,
    MetricsData,
)

from otel_botmon._internal import report_internal_error
from otel_botmon.exporters._kinds import INSTRUMENT_KINDS

__all__ = ["FanoutMetricExporter"]

_COMPONENT = "exporters.fanout"


class FanoutMetricExporter(MetricExporter):
    """Export the same metrics to each of ``exporters``, in order.

    Put the exporters that return at once (InfluxDB's only queues) before those that
    wait on the network. One exporter's failure or exception neither stops the others
    nor reaches the reader's thread as an exception: ``export()`` returns FAILURE if any
    failed, and exceptions are reported as internal errors.

    Raises ``ValueError`` when the exporters prefer different aggregation temporalities
    or aggregations (one collection cannot satisfy both); give each its own
    ``MetricPusher`` instead.
    """

    def __init__(self, exporters: Sequence[MetricExporter]) -> None:
        if not exporters:
            raise ValueError("FanoutMetricExporter needs at least one exporter")
        first = exporters[0]
        for other in exporters[1:]:
            if _temporalities(other) != _temporalities(first):
                raise ValueError(
                    f"{type(other).__name__} prefers other aggregation temporalities than "
                    f"{type(first).__name__}; give each its own MetricPusher"
                )
        # Aggregations follow the first exporter (OTLP); views fix the histogram buckets.
        super().__init__(
            preferred_temporality=dict(first._preferred_temporality or {}),
            preferred_aggregation=dict(first._preferred_aggregation or {}),
        )
        self.exporters: tuple[MetricExporter, ...] = tuple(exporters)

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        deadline = time.monotonic() + timeout_millis / 1000
        result = MetricExportResult.SUCCESS
        for exporter in self.exporters:
            remaining = max(deadline - time.monotonic(), 0.0) * 1000
            try:
                if exporter.export(metrics_data, timeout_millis=remaining) is not (
                    MetricExportResult.SUCCESS
                ):
                    result = MetricExportResult.FAILURE
            except Exception as exc:
                report_internal_error(_COMPONENT, exc)
                result = MetricExportResult.FAILURE
        return result

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        deadline = time.monotonic() + timeout_millis / 1000
        flushed = True
        for exporter in self.exporters:
            remaining = max(deadline - time.monotonic(), 0.0) * 1000
            try:
                flushed = exporter.force_flush(timeout_millis=remaining) and flushed
            except Exception as exc:
                report_internal_error(_COMPONENT, exc)
                flushed = False
        return flushed

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        deadline = time.monotonic() + timeout_millis / 1000
        for exporter in self.exporters:
            remaining = max(deadline - time.monotonic(), 0.0) * 1000
            try:
                exporter.shutdown(timeout_millis=remaining)
            except Exception as exc:
                report_internal_error(_COMPONENT, exc)

    def __repr__(self) -> str:
        return f"FanoutMetricExporter({list(self.exporters)!r})"


def _temporalities(exporter: MetricExporter) -> dict[type, AggregationTemporality]:
    """Effective temporality per instrument class (the SDK defaults to cumulative)."""
    preferred = exporter._preferred_temporality or {}
    return {
        kind: preferred.get(kind, AggregationTemporality.CUMULATIVE) for kind in INSTRUMENT_KINDS
    }
