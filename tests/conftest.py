"""Shared fixtures: an isolated, in-memory telemetry pipeline per test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_botmon import _internal
from otel_botmon import telemetry as botmon_telemetry

_OTEL_ENV = (
    "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES", "OTEL_METRIC_EXPORT_INTERVAL",
    "OTEL_SDK_DISABLED",
)


class TestTelemetry:
    """A configured pipeline plus helpers to read what it recorded."""

    __test__ = False

    def __init__(self, tel: botmon_telemetry.Telemetry, spans: InMemorySpanExporter) -> None:
        self.tel = tel
        self.exporter = spans
        self.metric_reader = tel.metric_reader

    def spans(self) -> tuple[ReadableSpan, ...]:
        return self.exporter.get_finished_spans()

    def metrics(self) -> dict[str, Any]:
        """Metric name -> Metric, from one collection of the in-memory reader."""
        data = self.metric_reader.get_metrics_data()
        found: dict[str, Any] = {}
        if data is None:
            return found
        for rm in data.resource_metrics:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    found[metric.name] = metric
        return found

    def points(self, name: str) -> list[Any]:
        metric = self.metrics().get(name)
        return list(metric.data.data_points) if metric is not None else []

    def attribute_sets(self, name: str) -> list[dict[str, Any]]:
        return [dict(p.attributes) for p in self.points(name)]

    def point(self, name: str, attrs: dict[str, Any]) -> Any:
        """The data point of ``name`` whose attributes are exactly ``attrs``."""
        for p in self.points(name):
            if dict(p.attributes) == attrs:
                return p
        raise AssertionError(f"{name}: no point with {attrs}; have {self.attribute_sets(name)}")

    def value(self, name: str, **attributes: Any) -> Any:
        """Value (sum/gauge) or the histogram point whose attributes include ``attributes``."""
        wanted = {k.replace("__", "."): v for k, v in attributes.items()}
        for point in self.points(name):
            if all(point.attributes.get(k) == v for k, v in wanted.items()):
                return getattr(point, "value", point)
        return None


@pytest.fixture(autouse=True)
def _clean_otel_environ(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in _OTEL_ENV:
        monkeypatch.delenv(name, raising=False)
    yield
    botmon_telemetry.shutdown(timeout_s=5.0)
    _internal.reset_internal_errors()


@pytest.fixture
def telemetry() -> Iterator[TestTelemetry]:
    """A fresh otel_botmon pipeline with in-memory spans and metrics."""
    exporter = InMemorySpanExporter()
    tel = botmon_telemetry.configure(
        "test-bot", bot_name="test", exchange="binance", strategy="unit",
        span_processors=[SimpleSpanProcessor(exporter)], set_global=False,
    )
    yield TestTelemetry(tel, exporter)
    tel.shutdown()


@pytest.fixture
def metrics(telemetry: TestTelemetry) -> TestTelemetry:
    """Exact-attribute lookups into the in-memory reader (``point``, ``attribute_sets``)."""
    return telemetry


@pytest.fixture
def artifacts_dir() -> str:
    """Where tests keep files worth looking at after a run (screenshots, logs)."""
    path = os.path.join(os.path.dirname(os.path.dirname(__file__)), "test-artifacts")
    os.makedirs(path, exist_ok=True)
    return path
