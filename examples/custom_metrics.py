"""Guide: Advanced Configuration / Custom Metrics."""
# ruff: noqa: I001  (the guide's snippet, kept verbatim)

from otel_botmon import SystemMonitor

performance_monitor = SystemMonitor().performance_monitor

from otel_botmon import Metric, MetricType, MetricCategory

# Define custom metric
custom_metric = Metric(
    name="custom_trading_metric",
    metric_type=MetricType.GAUGE,
    category=MetricCategory.TRADING,
    description="Custom trading performance metric",
    unit="percentage"
)

# Register metric
performance_monitor.metrics_collector.register_metric(custom_metric)

# Record metric value
performance_monitor.metrics_collector.record_metric(
    "custom_trading_metric",
    value=85.5,
    tags={"strategy": "bollinger_rsi"}
)


print(performance_monitor.metrics_collector.summaries()["custom_trading_metric"])
