"""Metrics become InfluxDB line protocol: one measurement per metric, buckets with `le`."""

from __future__ import annotations

import math

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    Gauge,
    InMemoryMetricReader,
    Metric,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
)
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from otel_botmon import conventions as conv
from otel_botmon.exporters.line_protocol import metrics_to_lines


def _collect(record: object, views: tuple[View, ...] = ()) -> MetricsData:
    reader = InMemoryMetricReader()
    provider = MeterProvider(
        metric_readers=[reader], views=list(views),
        resource=Resource({"service.name": "bot", "bot.name": "alpha", "secret.thing": "x"}),
    )
    assert callable(record)
    record(provider.get_meter("test"))
    data = reader.get_metrics_data()
    provider.shutdown()
    assert data is not None
    return data


def _parse(line: str) -> tuple[str, dict[str, str], dict[str, float], int]:
    """A small parser for the lines these tests produce (escaped spaces allowed)."""
    head, fields, ts = _split_unescaped(line, " ")
    measurement, *tags = _split_unescaped(head, ",")
    tag_map = dict(_split_unescaped(tag, "=", 1) for tag in tags)
    field_map = {k: float(v) for k, v in (f.split("=") for f in fields.split(","))}
    return (_unescape(measurement), {_unescape(k): _unescape(v) for k, v in tag_map.items()},
            field_map, int(ts))


def _unescape(text: str) -> str:
    return text.replace("\\ ", " ").replace("\\,", ",").replace("\\=", "=")


def _split_unescaped(text: str, sep: str, maxsplit: int = -1) -> list[str]:
    parts, current, escaped = [], "", False
    for char in text:
        if char == sep and not escaped and maxsplit != 0:
            parts.append(current)
            current = ""
            maxsplit -= 1
            continue
        escaped = char == "\\" and not escaped
        current += char
    return [*parts, current]


def test_counter_becomes_a_value_field_tagged_with_attributes_and_resource() -> None:
    data = _collect(lambda m: m.create_counter(conv.TRADES.name).add(
        3, {conv.TRADING_SYMBOL: "BTCUSDT", conv.TRADING_OUTCOME: "filled"}))
    [line] = metrics_to_lines(data)
    measurement, tags, fields, ts = _parse(line)
    assert measurement == "botmon.trades"
    assert tags == {"trading.symbol": "BTCUSDT", "trading.outcome": "filled",
                    "service.name": "bot", "bot.name": "alpha"}
    assert fields == {"value": 3.0}
    assert ts > 1_600_000_000 * 10**9  # nanoseconds


def test_only_the_chosen_resource_attributes_become_tags() -> None:
    data = _collect(lambda m: m.create_counter("botmon.trades").add(1))
    [line] = metrics_to_lines(data, resource_attributes=("bot.name",))
    assert _parse(line)[1] == {"bot.name": "alpha"}


def test_gauges_and_up_down_counters_carry_their_current_value() -> None:
    def record(meter: object) -> None:
        meter.create_gauge("botmon.exchange.ratelimit.used").set(1200, {"exchange.name": "b"})  # type: ignore[attr-defined]
        pnl = meter.create_up_down_counter("botmon.pnl.realized")  # type: ignore[attr-defined]
        pnl.add(12.5)
        pnl.add(-20.0)

    lines = {(_parse(line)[0]): _parse(line)[2] for line in metrics_to_lines(_collect(record))}
    assert lines == {"botmon.exchange.ratelimit.used": {"value": 1200.0},
                     "botmon.pnl.realized": {"value": -7.5}}


def test_histogram_gives_summary_fields_and_cumulative_buckets() -> None:
    view = View(instrument_name="botmon.trade.duration",
                aggregation=ExplicitBucketHistogramAggregation(boundaries=(0.1, 1.0)))

    def record(meter: object) -> None:
        hist = meter.create_histogram("botmon.trade.duration", unit="s")  # type: ignore[attr-defined]
        for value in (0.05, 0.5, 0.7, 3.0):
            hist.record(value, {"trading.symbol": "ETHUSDT"})

    parsed = [_parse(line) for line in metrics_to_lines(_collect(record, (view,)))]
    summary = [fields for _, tags, fields, _ in parsed if "le" not in tags]
    assert summary == [{"count": 4.0, "sum": pytest.approx(4.25), "min": 0.05, "max": 3.0}]
    buckets = {tags["le"]: fields["bucket"] for _, tags, fields, _ in parsed if "le" in tags}
    assert buckets == {"0.1": 1.0, "1.0": 3.0, "+Inf": 4.0}
    assert all(tags["trading.symbol"] == "ETHUSDT" for _, tags, _, _ in parsed)


def test_special_characters_are_escaped() -> None:
    data = _collect(lambda m: m.create_counter("botmon.trades").add(
        1, {"trading.symbol": "BTC USDT,x=1", "empty": "", "number": 7}))
    [line] = metrics_to_lines(data, resource_attributes=())
    assert "BTC\\ USDT\\,x\\=1" in line
    _, tags, fields, _ = _parse(line)
    assert tags == {"trading.symbol": "BTC USDT,x=1", "number": "7"}  # empty tag dropped
    assert fields == {"value": 1.0}


def test_non_finite_values_are_left_out() -> None:
    # The SDK refuses non-finite measurements, but an exporter must not trust its input.
    points = [NumberDataPoint({"k": str(v)}, 0, 1, v) for v in (math.inf, math.nan, 2.0)]
    metric = Metric("g", None, None, Gauge(points))
    data = MetricsData([ResourceMetrics(
        Resource({}), [ScopeMetrics(InstrumentationScope("t"), [metric], "")], "")])
    assert [_parse(line)[2] for line in metrics_to_lines(data)] == [{"value": 2.0}]
