"""Push exporters fed from the one in-memory reader, instead of a reader each.

Every MetricReader attached to a MeterProvider aggregates every measurement again, on the
thread that records it: with the always-on in-memory reader plus a periodic OTLP reader,
each decorated trade paid for two aggregations. Both readers use cumulative temporality,
so one collection serves both: a :class:`MetricPusher` collects the in-memory reader on
its own interval and hands the data to an exporter (OTLP, InfluxDB, ...). The bot's call
path then costs the same with an exporter as without one. The data is always
cumulative (the in-memory reader's temporality), whatever an exporter prefers.
"""

from __future__ import annotations

import logging
import threading
import time

from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricExporter

from otel_botmon import _fork

logger = logging.getLogger("otel_botmon")


class MetricPusher:
    """A daemon thread exporting ``reader``'s cumulative data every ``interval_s``."""

    def __init__(
        self,
        reader: InMemoryMetricReader,
        exporter: MetricExporter,
        interval_s: float,
        timeout_s: float = 5.0,
        name: str = "botmon-metric-push",
    ) -> None:
        if not interval_s > 0:
            raise ValueError(f"export interval must be > 0 seconds, got {interval_s!r}")
        self.reader = reader
        self.exporter = exporter
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._name = name
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        _fork.register(self)

    def _after_fork_in_child(self) -> None:
        """A new lock (the push thread may have held it) and a new push thread."""
        self._lock = threading.Lock()
        stopped = self._stop.is_set()
        self._stop = threading.Event()
        if stopped:
            self._stop.set()
            return
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.export_now()

    def export_now(self) -> bool:
        """Collect and export once; False when the collection or export failed."""
        with self._lock:
            return self._export_locked()

    def _export_locked(self) -> bool:
        try:
            data = self.reader.get_metrics_data()
            if data is None:
                return True
            result = self.exporter.export(data, timeout_millis=self.timeout_s * 1000)
            return getattr(result, "name", "SUCCESS") == "SUCCESS"
        except Exception as exc:  # an exporter bug must not kill the push thread
            from otel_botmon._internal import report_internal_error

            report_internal_error("exporters.push", exc)
            return False

    def force_flush(self, timeout_s: float = 5.0) -> bool:
        """Collect, export and flush the exporter, all within ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        if not self._lock.acquire(timeout=max(timeout_s, 0.0)):  # a push is running
            return False
        try:
            ok = self._export_locked()
        finally:
            self._lock.release()
        left_ms = max(0.0, deadline - time.monotonic()) * 1000
        return bool(self.exporter.force_flush(timeout_millis=left_ms)) and ok

    def shutdown(self, timeout_s: float = 5.0) -> None:
        """Export a last time, then shut the exporter down (bounded by the exporter)."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._thread.join(timeout_s)
        self.export_now()
        self.exporter.shutdown(timeout_millis=timeout_s * 1000)
