"""The seed's Metric / MetricType / MetricsCollector on OpenTelemetry instruments."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.metrics.export import Gauge, Histogram, Sum

from otel_botmon.performance import (
    Metric,
    MetricCategory,
    MetricsCollector,
    MetricType,
)


@pytest.mark.parametrize(("metric_type", "data_type"), [
    (MetricType.COUNTER, Sum), (MetricType.GAUGE, Gauge),
    (MetricType.HISTOGRAM, Histogram), (MetricType.TIMER, Histogram),
])
def test_each_metric_type_maps_onto_its_instrument(
    telemetry: object, metric_type: MetricType, data_type: type,
) -> None:
    collector = MetricsCollector()
    collector.register_metric(Metric(
        name="custom_trading_metric", metric_type=metric_type,
        category=MetricCategory.TRADING, description="Custom", unit="percentage",
    ))
    collector.record_metric("custom_trading_metric", value=85.5, tags={"strategy": "bollinger_rsi"})
    collector.record_metric("custom_trading_metric", value=14.5, tags={"strategy": "bollinger_rsi"})
    metric = telemetry.metrics()["custom_trading_metric"]  # type: ignore[attr-defined]
    assert isinstance(metric.data, data_type)
    assert metric.unit == "percentage"
    point = metric.data.data_points[0]
    assert dict(point.attributes) == {"strategy": "bollinger_rsi"}
    if metric_type is MetricType.COUNTER:
        assert point.value == 100.0 and metric.data.is_monotonic
    elif metric_type is MetricType.GAUGE:
        assert point.value == 14.5
    else:
        assert (point.count, point.sum) == (2, 100.0)
    summary = collector.summaries()["custom_trading_metric"]
    figures = (summary["last"], summary["count"], summary["min"], summary["max"])
    assert figures == (14.5, 2, 14.5, 85.5)


def test_bad_input_gets_clear_errors(telemetry: object) -> None:
    collector = MetricsCollector()
    with pytest.raises(ValueError, match="invalid"):
        Metric(name="1bad name", metric_type=MetricType.GAUGE)
    with pytest.raises(ValueError):
        Metric(name="ok", metric_type="nonsense")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="takes a Metric"):
        collector.register_metric("custom")  # type: ignore[arg-type]
    with pytest.raises(KeyError, match="not registered"):
        collector.record_metric("unknown", 1.0)
    collector.register_metric(Metric(name="c", metric_type=MetricType.COUNTER))
    collector.register_metric(Metric(name="c", metric_type=MetricType.COUNTER))  # same: no-op
    with pytest.raises(ValueError, match="already registered"):
        collector.register_metric(Metric(name="c", metric_type=MetricType.GAUGE))
    with pytest.raises(ValueError, match="only increase"):
        collector.record_metric("c", -1.0)
    with pytest.raises(TypeError, match="number"):
        collector.record_metric("c", "5")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="finite"):
        collector.record_metric("c", float("nan"))
