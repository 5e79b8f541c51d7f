"""The seed's performance monitor: a bounded history of the bot's KPIs.

``PerformanceMonitor`` samples the SDK's in-memory reader on an interval and evaluates
every KPI of the query engine's table (``otel_botmon.query.KPIS``: win rate, error rate,
latency quantiles...) with the same definitions the alert rules use, into a ring buffer
of :class:`PerformanceSample` that the dashboard, ``/api/performance`` and the CLI show.
Its ``metrics_collector`` records the seed's custom metrics
(:mod:`otel_botmon.custom_metrics`).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.sdk.metrics.export import MetricsData

from otel_botmon import telemetry
from otel_botmon._internal import report_internal_error
from otel_botmon.custom_metrics import (
    Metric,
    MetricCategory,
    MetricsCollector,
    MetricSummary,
    MetricType,
)
from otel_botmon.query import KPIS, Condition, MetricHistory, compile_condition

__all__ = [
    "Metric", "MetricCategory", "MetricSummary", "MetricType", "MetricsCollector",
    "PerformanceMonitor", "PerformanceSample", "kpi_table",
]

_HOST_FALLBACK = {"cpu": "cpu", "memory": "memory", "disk": "disk"}
"""KPI -> key of ``host_sample()`` used when the reader has no host metrics."""


def kpi_table() -> dict[str, dict[str, str]]:
    """Every KPI's title, unit, window and definition, by name (JSON-ready)."""
    return {
        name: {"title": kpi.title, "unit": kpi.unit, "window": kpi.window,
               "definition": kpi.definition, "description": kpi.description}
        for name, kpi in KPIS.items()
    }


@dataclass
class PerformanceSample:
    """The KPIs at one moment, by name (``kpi_table()`` gives each one's unit and
    window); ``None`` where nothing was measured yet."""

    timestamp: float
    kpis: dict[str, float | None] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """``{"timestamp": ..., <kpi name>: value, ...}``."""
        return {"timestamp": self.timestamp, **{k: self.kpis.get(k) for k in KPIS}}


class PerformanceMonitor:
    """Samples the telemetry's in-memory reader into a bounded history of KPIs.

    ``sample()`` is cheap enough to call on every ``metrics_collection_interval``; the
    history keeps at most ``history_size`` samples. Each KPI covers its own window (see
    :func:`kpi_table`). ``host_sample`` supplies CPU, memory and disk percentages when no
    host observer feeds the reader. ``window_s`` is accepted for compatibility and
    ignored: the windows are the KPIs' own.
    """

    def __init__(
        self,
        history_size: int = 720,
        host_sample: Callable[[], Mapping[str, float | None]] | None = None,
        window_s: float = 60.0,
    ) -> None:
        if history_size < 1:
            raise ValueError(f"history_size must be >= 1, got {history_size!r}")
        self.metrics_collector = MetricsCollector()
        self._history: deque[PerformanceSample] = deque(maxlen=history_size)
        self._host_sample = host_sample
        self._lock = threading.Lock()
        self._kpis: dict[str, Condition] = {name: compile_condition(name) for name in KPIS}
        self._metrics: set[str] = set()
        for condition in self._kpis.values():
            self._metrics |= condition.referenced_metrics()
        # the longest KPI window is 5 min; a little more keeps its first point
        self._metric_history = MetricHistory(max_age_s=600.0)

    @property
    def history(self) -> list[PerformanceSample]:
        """The samples so far, oldest first."""
        with self._lock:
            return list(self._history)

    @property
    def latest(self) -> PerformanceSample | None:
        with self._lock:
            return self._history[-1] if self._history else None

    def sample(self) -> PerformanceSample:
        """Collect the reader now, append one sample to the history and return it.

        Never raises: a failing collect or KPI yields ``None`` for what it concerns.
        """
        data: MetricsData | None = None
        tel = telemetry.get_telemetry()
        if tel is not None:
            try:
                data = tel.metric_reader.get_metrics_data()
            except Exception as exc:
                report_internal_error("performance.sample", exc)
        return self.sample_from(data, time.time())

    def sample_from(self, data: MetricsData | None, now: float) -> PerformanceSample:
        """Like :meth:`sample`, from one collect ``data`` taken at ``now`` (epoch seconds):
        the alert rules' history ingests the same collect the same way, so a KPI here and
        a rule on that KPI read one value."""
        with self._lock:
            history = self._metric_history
            try:
                history.ingest(data, now, only=self._metrics)
            except Exception as exc:
                report_internal_error("performance.ingest", exc)
            sample = PerformanceSample(timestamp=now, kpis=self._evaluate(history, now))
            self._fill_host(sample)
            self._history.append(sample)
        return sample

    def _evaluate(self, history: MetricHistory, now: float) -> dict[str, float | None]:
        values: dict[str, float | None] = {}
        for name, condition in self._kpis.items():
            try:
                found = condition.evaluate(history, now)
            except Exception as exc:
                report_internal_error(f"performance.kpi.{name}", exc)
                found = []
            value = found[0].value if found else None
            values[name] = None if value is None or value != value else round(value, 9)
        return values

    def _fill_host(self, sample: PerformanceSample) -> None:
        kpis = sample.kpis
        if self._host_sample is None or all(kpis.get(k) is not None for k in _HOST_FALLBACK):
            return
        try:
            host = self._host_sample()
        except Exception as exc:
            report_internal_error("performance.host_sample", exc)
            return
        for name, key in _HOST_FALLBACK.items():
            if kpis.get(name) is None:
                kpis[name] = host.get(key)

    def series(self, fields: Iterable[str], limit: int | None = None) -> dict[str, list[Any]]:
        """Columns of the history for charts: ``{"timestamp": [...], kpi: [...]}``."""
        samples = self.history
        if limit is not None:
            samples = samples[-limit:]
        out: dict[str, list[Any]] = {"timestamp": [round(s.timestamp, 1) for s in samples]}
        for name in fields:
            out[name] = [s.kpis.get(name) for s in samples]
        return out
