"""Capture your bot's otel_botmon spans and metrics in memory, in your own tests.

With pytest, ask for the ``capture_telemetry`` fixture (registered by otel_botmon's
pytest plugin when the package is installed; ``-p otel_botmon.pytest_plugin`` where
plugin auto-loading is off)::

    def test_buy_is_recorded(capture_telemetry):
        bot.buy("BTCUSDT", quantity=0.001)
        (span,) = capture_telemetry.spans("trade BTCUSDT")
        assert span.attributes["trading.outcome"] == "filled"
        assert capture_telemetry.metric_value("botmon.trades", trading_outcome="filled") == 1

Without pytest (this module does not import it), ``with capture() as cap:`` does the same.

The capture calls ``otel_botmon.configure()`` with an in-memory span exporter, ignoring
``OTEL_*`` variables that would send data elsewhere or disable the SDK. When the code
under test calls ``configure()`` itself (in its ``start()``, say), the pipeline it builds
records into the capture too, and metrics recorded before the switch still count: the
capture reads every pipeline built while it is active. On exit every such pipeline is
shut down. It records into otel_botmon's own providers and leaves the global
OpenTelemetry providers alone, so spans your code creates through
``opentelemetry.trace.get_tracer()`` directly are not captured.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_botmon import _internal
from otel_botmon import telemetry as _telemetry
from otel_botmon.instrument import _values

__all__ = ["TelemetryCapture", "capture"]

# Variables that would make a test export over the network or record nothing.
_HERMETIC_ENV = (
    "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_METRIC_EXPORT_INTERVAL", "OTEL_SDK_DISABLED",
)


class _CaptureSpanProcessor(SpanProcessor):
    """Hands each ended span to the capture's exporter; outlives the pipelines it joins
    (their shutdown must not stop the exporter the next pipeline also writes to)."""

    def __init__(self, exporter: InMemorySpanExporter) -> None:
        self._exporter = exporter

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        self._exporter.export((span,))

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class _PipelineWatch:
    """Registered with ``telemetry`` while a capture is active: sees every pipeline."""

    def __init__(self, span_processor: SpanProcessor) -> None:
        self.span_processor = span_processor
        self.pipelines: list[_telemetry.Telemetry] = []
        self.retired: list[Any] = []  # the last MetricsData of each pipeline shut down
        self._lock = threading.Lock()

    def built(self, tel: _telemetry.Telemetry) -> None:
        with self._lock:
            if tel not in self.pipelines:
                self.pipelines.append(tel)

    def retiring(self, tel: _telemetry.Telemetry) -> None:
        with self._lock:
            if tel not in self.pipelines:
                return
            self.pipelines.remove(tel)
        data = tel.metric_reader.get_metrics_data()
        if data is not None:
            with self._lock:
                self.retired.append(data)

    def live(self) -> list[_telemetry.Telemetry]:
        with self._lock:
            return [tel for tel in self.pipelines if not tel._closed]


class TelemetryCapture:
    """What the code under test recorded: finished spans and current metric values."""

    __test__ = False  # not a test class, despite living next to tests

    def __init__(
        self,
        telemetry: _telemetry.Telemetry,
        exporter: InMemorySpanExporter,
        watch: _PipelineWatch | None = None,
    ) -> None:
        self._first = telemetry
        self._exporter = exporter
        self._watch = watch

    @property
    def telemetry(self) -> _telemetry.Telemetry:
        """The newest pipeline recording into this capture (the code's own after it
        called ``configure()``)."""
        live = self._watch.live() if self._watch is not None else []
        return live[-1] if live else self._first

    @property
    def metric_reader(self) -> Any:
        """The in-memory metric reader of :attr:`telemetry` (for an ``AlertManager``)."""
        return self.telemetry.metric_reader

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
        """Metric name -> SDK ``Metric``, from one collection of the in-memory reader.

        When several pipelines recorded during the capture (the code under test called
        ``configure()``), a metric's points are those of all of them, oldest first.
        """
        watch = self._watch
        if watch is None:
            datas = [self._first.metric_reader.get_metrics_data()]
        else:
            datas = [*watch.retired]
            datas += [tel.metric_reader.get_metrics_data() for tel in watch.live()]
        found: dict[str, Any] = {}
        for data in datas:
            if data is None:
                continue
            for resource_metrics in data.resource_metrics:
                for scope_metrics in resource_metrics.scope_metrics:
                    for metric in scope_metrics.metrics:
                        found[metric.name] = _merged(found.get(metric.name), metric)
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

    def metric_point(
        self, name: str, attributes: Mapping[str, Any] | None = None, /, **attrs: Any
    ) -> Any:
        """The one data point of ``name`` whose attributes are exactly the given ones.

        Same attribute spelling as :meth:`metric_points`; AssertionError (listing the
        attribute sets there are) when there is no such point. When the code under test
        re-configured, the newest pipeline's point.
        """
        wanted = dict(attributes or {})
        points = self.metric_points(name, wanted, **attrs)
        for point in reversed(points):  # the newest pipeline's, after a re-configure
            have = dict(point.attributes or {})
            if len(have) == len(wanted) + len(attrs):
                return point
        raise AssertionError(
            f"{name}: no point with exactly {wanted or attrs}; "
            f"have {self.metric_attribute_sets(name)}"
        )

    def metric_attribute_sets(self, name: str) -> list[dict[str, Any]]:
        """The attribute set of each data point of ``name`` (empty when it has none)."""
        metric = self.metrics().get(name)
        if metric is None:
            return []
        return [dict(point.attributes or {}) for point in metric.data.data_points]

    def metric_count(
        self, name: str, attributes: Mapping[str, Any] | None = None, /, **attrs: Any
    ) -> int:
        """Number of measurements a histogram received over the matching points."""
        return sum(int(point.count) for point in self.metric_points(name, attributes, **attrs))


def _merged(earlier: Any, metric: Any) -> Any:
    """``metric`` with the points of the same metric from an earlier pipeline first."""
    if earlier is None:
        return metric
    points: Sequence[Any] = (*earlier.data.data_points, *metric.data.data_points)
    return dataclasses.replace(metric, data=dataclasses.replace(metric.data, data_points=points))


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
    watch = _PipelineWatch(_CaptureSpanProcessor(exporter))
    configure_kwargs.setdefault("set_global", False)
    try:
        _values.reset_warnings()
        _internal.reset_internal_errors()
        _telemetry.add_observer(watch)
        try:
            tel = _telemetry.configure(service_name, **configure_kwargs)
            yield TelemetryCapture(tel, exporter, watch)
        finally:
            _telemetry.remove_observer(watch)
            for pipeline in [tel for tel in watch.pipelines if not tel._closed]:
                pipeline.shutdown()
    finally:
        os.environ.update(saved)


def __getattr__(name: str) -> Any:
    # The pytest fixture lives in the plugin module so that importing this one does not
    # import pytest; ``from otel_botmon.testing import capture_telemetry`` still works.
    if name == "capture_telemetry":
        from otel_botmon.pytest_plugin import capture_telemetry

        return capture_telemetry
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
