"""The seed's custom metrics: ``Metric``, ``MetricType``, ``MetricCategory`` and the
``MetricsCollector`` that records them through OpenTelemetry instruments, so custom
metrics are exported like every other one.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from otel_botmon import telemetry
from otel_botmon._internal import report_internal_error
from otel_botmon.redaction import redact_labels

_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-/]{0,254}$")


class MetricType(str, Enum):
    """How a custom metric's values combine; decides the OpenTelemetry instrument."""

    COUNTER = "counter"  # monotonic sum: Counter.add
    GAUGE = "gauge"  # last value wins: synchronous Gauge.set
    HISTOGRAM = "histogram"  # distribution: Histogram.record
    TIMER = "timer"  # a duration distribution: Histogram.record


class MetricCategory(str, Enum):
    """What a custom metric is about (kept as the ``metric.category`` attribute)."""

    TRADING = "trading"
    SYSTEM = "system"
    API = "api"
    DATABASE = "database"
    PERFORMANCE = "performance"
    CUSTOM = "custom"


@dataclass(frozen=True)
class Metric:
    """A custom metric definition (the seed's ``Metric``).

    Raises ``ValueError`` at construction for a name OpenTelemetry would reject or a
    unit longer than 63 characters.
    """

    name: str
    metric_type: MetricType
    category: MetricCategory = MetricCategory.CUSTOM
    description: str = ""
    unit: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME_RE.match(self.name):
            raise ValueError(
                f"Metric name {self.name!r} is invalid: start with a letter, then letters, "
                "digits, '_', '.', '-' or '/', at most 255 characters"
            )
        object.__setattr__(self, "metric_type", MetricType(self.metric_type))
        object.__setattr__(self, "category", MetricCategory(self.category))
        if not isinstance(self.unit, str) or len(self.unit) > 63 or not self.unit.isascii():
            raise ValueError(f"Metric {self.name!r}: unit must be ASCII, at most 63 characters")


@dataclass
class MetricSummary:
    """Local running figures of one custom metric (all tag sets together)."""

    last: float = math.nan
    count: int = 0
    total: float = 0.0
    minimum: float = math.inf
    maximum: float = -math.inf

    def add(self, value: float) -> None:
        self.last = value
        self.count += 1
        self.total += value
        self.minimum = min(self.minimum, value)
        self.maximum = max(self.maximum, value)


class MetricsCollector:
    """Registry of custom metrics, recording through OpenTelemetry instruments."""

    def __init__(self) -> None:
        self._metrics: dict[str, Metric] = {}
        self._summaries: dict[str, MetricSummary] = {}
        self._instruments: dict[str, Any] = {}
        self._lock = threading.Lock()

    def register_metric(self, metric: Metric) -> None:
        """Register ``metric``; registering the same definition again is a no-op.

        Raises ``TypeError`` for a non-``Metric`` and ``ValueError`` when another
        definition already uses the name.
        """
        if not isinstance(metric, Metric):
            raise TypeError(f"register_metric() takes a Metric, got {type(metric).__name__}")
        with self._lock:
            existing = self._metrics.get(metric.name)
            if existing is not None and existing != metric:
                raise ValueError(
                    f"metric {metric.name!r} is already registered as {existing.metric_type.value}"
                    f"/{existing.category.value}; names must be unique"
                )
            self._metrics[metric.name] = metric
            self._summaries.setdefault(metric.name, MetricSummary())

    @property
    def metrics(self) -> dict[str, Metric]:
        """The registered metrics by name (a copy)."""
        with self._lock:
            return dict(self._metrics)

    def record_metric(
        self, name: str, value: float, tags: Mapping[str, str] | None = None
    ) -> None:
        """Record ``value`` for the registered metric ``name`` with ``tags`` as attributes.

        Raises ``KeyError`` for an unregistered name, ``TypeError`` for a non-numeric or
        ``ValueError`` for a non-finite value or a negative counter increment.
        """
        metric = self._metrics.get(name)
        if metric is None:
            raise KeyError(f"metric {name!r} is not registered; call register_metric() first")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"metric {name!r}: value must be a number, got {type(value).__name__}")
        if not math.isfinite(value):
            raise ValueError(f"metric {name!r}: value must be finite, got {value!r}")
        if metric.metric_type is MetricType.COUNTER and value < 0:
            raise ValueError(f"counter {name!r} can only increase, got {value!r}")
        # tags become metric attributes on every export: a URL or a key must not ride along
        attributes = redact_labels(tags)
        with self._lock:
            self._summaries[name].add(float(value))
        try:
            self._record(metric, float(value), attributes)
        except Exception as exc:  # an SDK failure must not reach the bot
            report_internal_error("performance.record_metric", exc)

    def summaries(self) -> dict[str, dict[str, Any]]:
        """Per metric: type, category, unit and last/count/sum/min/max (JSON-friendly)."""
        with self._lock:
            out: dict[str, dict[str, Any]] = {}
            for name, metric in self._metrics.items():
                s = self._summaries[name]
                out[name] = {
                    "type": metric.metric_type.value,
                    "category": metric.category.value,
                    "unit": metric.unit,
                    "description": metric.description,
                    "last": None if s.count == 0 else s.last,
                    "count": s.count,
                    "sum": s.total,
                    "min": None if s.count == 0 else s.minimum,
                    "max": None if s.count == 0 else s.maximum,
                }
            return out

    def _record(self, metric: Metric, value: float, attributes: dict[str, str]) -> None:
        instrument = self._instrument(metric)
        if metric.metric_type is MetricType.COUNTER:
            instrument.add(value, attributes)
        elif metric.metric_type is MetricType.GAUGE:
            instrument.set(value, attributes)
        else:
            instrument.record(value, attributes)

    def _instrument(self, metric: Metric) -> Any:
        # A proxy per metric, made once: it follows configure() and shutdown().
        instrument = self._instruments.get(metric.name)
        if instrument is None:
            unit, description, kind = metric.unit, metric.description, metric.metric_type

            def create(meter: Any) -> Any:
                if kind is MetricType.COUNTER:
                    return meter.create_counter(metric.name, unit, description)
                if kind is MetricType.GAUGE:
                    return meter.create_gauge(metric.name, unit, description)
                return meter.create_histogram(metric.name, unit, description)

            instrument = telemetry.proxy_instrument(
                f"custom:{kind.value}:{metric.name}", create)
            with self._lock:
                self._instruments[metric.name] = instrument
        return instrument
