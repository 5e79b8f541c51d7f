"""Capture your bot's otel_botmon spans and metrics in memory, in your own tests.

With pytest, enable the plugin (``-p otel_botmon.testing``, ``pytest_plugins =
["otel_botmon.testing"]`` in your top-level conftest, or import the fixture there) and
ask for ``capture_telemetry``::

    def test_buy_is_recorded(capture_telemetry):
        bot.buy("BTCUSDT", quantity=0.001)
        (span,) = capture_telemetry.spans("trade BTCUSDT")
        assert span.attributes["trading.outcome"] == "filled"
        assert capture_telemetry.metric_value("botmon.trades", trading_outcome="filled") == 1

Without pytest, ``with capture() as cap:`` does the same.

The capture calls ``otel_botmon.configure()`` with an in-memory span exporter, ignoring
``OTEL_*`` variables that would send data elsewhere or disable the SDK, and shuts the
pipeline down afterwards (a pipeline your code configured before is replaced, not
restored). It records into otel_botmon's own providers and leaves the global
OpenTelemetry providers alone, so spans your code creates through
``opentelemetry.trace.get_tracer()`` directly are not captured.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_botmon import _internal
from otel_botmon import telemetry as _telemetry
from otel_botmon.instrument import _values

__all__ = ["TelemetryCapture", "capture", "capture_telemetry"]

# Variables that would make a test export over the network or record nothing.
_HERMETIC_ENV = (
    "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_METRIC_EXPORT_INTERVAL", "OTEL_SDK_DISABLED",
)


class TelemetryCapture:
    """What the code under test recorded: finished spans and current metric values."""

    __test__ = False  # not a test class, despite living next to tests

    def __init__(self, telemetry: _telemetry.Telemetry, exporter: InMemorySpanExporter) -> None:
        self.telemetry = telemetry
        self._exporter = exporter

    # --- spans ----------------------------------------------------------------------

    def spans(self, name: str | None = None) -> list[ReadableSpan]:
        """Finished spans in the order they ended, optionally only those named ``name``."""
        found = list(self._exporter.get_finished_spans())
        return found if name is None else [s for s in found if s.name == name]

    def span(self, name: str) -> ReadableSpan:
        """The one finished span named ``name``; AssertionError if there are 0 or 2+."""
        found = self.spans(name)
        if len(found) != 1:
            names = sorted({s.name for s in self.spans()})
            raise AssertionError(
                f"expected exactly one span named {name!r}, found {len(found)}; "
                f"finished span names: {names}"
            )
        return found[0]

    def clear_spans(self) -> None:
        """Forget the spans finished so far (metrics are cumulative and stay)."""
        self._exporter.clear()

    # --- metrics --------------------------------------------------------------------

    def metrics(self) -> dict[str, Any]:
        """Metric name -> SDK ``Metric``, from one collection of the in-memory reader."""
        data = self.telemetry.metric_reader.get_metrics_data()
        found: dict[str, Any] = {}
        if data is None:
            return found
        for resource_metrics in data.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    found[metric.name] = metric
        return found

    def metric_names(self) -> set[str]:
        """Names of every metric with at least one data point."""
        return set(self.metrics())

    def metric_points(
        self, name: str, attributes: Mapping[str, Any] | None = None, /, **attrs: Any
    ) -> list[Any]:
        """Data points of metric ``name`` whose attributes include the given ones.

        Attributes are given as a mapping (``{"trading.symbol": "BTCUSDT"}``) and/or as
        keywords with dots written as underscores (``trading_symbol="BTCUSDT"``).
        """
        metric = self.metrics().get(name)
        if metric is None:
            return []
        wanted = dict(attributes or {})
        points = []
        for point in metric.data.data_points:
            have = point.attributes or {}
            if all(have.get(k) == v for k, v in wanted.items()) and all(
                _keyword_matches(have, key, value) for key, value in attrs.items()
            ):
                points.append(point)
        return points

    def metric_value(
        self, name: str, attributes: Mapping[str, Any] | None = None, /, **attrs: Any
    ) -> float:
        """Sum over matching points: counter/gauge values, or histogram sums (0 if none)."""
        total = 0.0
        for point in self.metric_points(name, attributes, **attrs):
            value = getattr(point, "value", None)
            total += point.sum if value is None else value
        return total

    def metric_count(
        self, name: str, attributes: Mapping[str, Any] | None = None, /, **attrs: Any
    ) -> int:
        """Number of measurements a histogram received over the matching points."""
        return sum(int(point.count) for point in self.metric_points(name, attributes, **attrs))


def _keyword_matches(have: Mapping[str, Any], keyword: str, value: Any) -> bool:
    if keyword in have:
        return bool(have[keyword] == value)
    for key, found in have.items():
        if key.replace(".", "_") == keyword:
            return bool(found == value)
    return False


@contextmanager
def capture(service_name: str = "test-bot", **configure_kwargs: Any) -> Iterator[TelemetryCapture]:
    """Configure otel_botmon to record in memory for the duration of the block.

    Extra keyword arguments go to :func:`otel_botmon.telemetry.configure` (for example
    ``bot_name=``); ``span_processors`` are added next to the in-memory one.
    """
    saved = {name: os.environ.pop(name) for name in _HERMETIC_ENV if name in os.environ}
    exporter = InMemorySpanExporter()
    processors = [SimpleSpanProcessor(exporter), *configure_kwargs.pop("span_processors", ())]
    configure_kwargs.setdefault("set_global", False)
    try:
        _values.reset_warnings()
        _internal.reset_internal_errors()
        tel = _telemetry.configure(service_name, span_processors=processors, **configure_kwargs)
        try:
            yield TelemetryCapture(tel, exporter)
        finally:
            tel.shutdown()
    finally:
        os.environ.update(saved)


@pytest.fixture
def capture_telemetry() -> Iterator[TelemetryCapture]:
    """otel_botmon spans and metrics recorded during the test, kept in memory."""
    with capture() as captured:
        yield captured
