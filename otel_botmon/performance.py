"""The seed's performance monitor: a bounded history of the bot's key figures.

``PerformanceMonitor`` samples the SDK's in-memory reader on an interval into a ring
buffer of :class:`PerformanceSample` that the dashboard charts; its
``metrics_collector`` records the seed's custom metrics (:mod:`otel_botmon.custom_metrics`).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from opentelemetry.sdk.metrics.export import (
    Gauge,
    HistogramDataPoint,
    MetricsData,
    NumberDataPoint,
    Sum,
)
from opentelemetry.sdk.metrics.export import (
    Histogram as HistogramData,
)

from otel_botmon import conventions as conv
from otel_botmon import telemetry
from otel_botmon._internal import report_internal_error
from otel_botmon.custom_metrics import (
    Metric,
    MetricCategory,
    MetricsCollector,
    MetricSummary,
    MetricType,
)

__all__ = [
    "Metric", "MetricCategory", "MetricSummary", "MetricType", "MetricsCollector",
    "PerformanceMonitor", "PerformanceSample", "histogram_quantile",
]


@dataclass
class PerformanceSample:
    """Key figures at one moment; ``None`` where nothing was measured yet.

    Latencies are in milliseconds, utilizations in percent; windowed figures (latency
    quantiles, error rate) cover the monitor's rolling window (one minute by default).
    """

    timestamp: float
    cpu_percent: float | None = None
    memory_percent: float | None = None
    disk_percent: float | None = None
    trades_total: int = 0
    trades_failed: int = 0
    trade_latency_p50_ms: float | None = None
    trade_latency_p95_ms: float | None = None
    api_requests_total: int = 0
    api_errors_total: int = 0
    api_latency_avg_ms: float | None = None
    api_latency_p95_ms: float | None = None
    api_error_rate: float | None = None
    """Share of exchange requests in the window that failed (0..1)."""
    pnl_realized: float = 0.0
    positions_closed: int = 0
    win_rate: float | None = None
    """Percent of closed positions that were wins."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _HistState:
    counts: list[int]
    bounds: tuple[float, ...]
    total: float
    n: int


@dataclass
class _Snapshot:
    trade_hist: dict[frozenset[Any], _HistState] = field(default_factory=dict)
    api_hist: dict[frozenset[Any], _HistState] = field(default_factory=dict)
    trades_total: int = 0
    trades_failed: int = 0
    api_total: int = 0
    api_errors: int = 0
    pnl: float = 0.0
    wins: int = 0
    closed: int = 0
    gauges: dict[str, float] = field(default_factory=dict)


def _is_api_error(attributes: Mapping[str, Any]) -> bool:
    status = attributes.get(conv.HTTP_RESPONSE_STATUS_CODE)
    if attributes.get(conv.ERROR_TYPE):
        return True
    try:
        return status is not None and int(status) >= 400
    except (TypeError, ValueError):
        return False


def _read_snapshot(data: MetricsData | None) -> _Snapshot:
    snap = _Snapshot()
    if data is None:
        return snap
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                _absorb(snap, metric.name, metric.data)
    return snap


def _absorb(snap: _Snapshot, name: str, data: Any) -> None:
    if isinstance(data, HistogramData):
        target = {
            conv.TRADE_DURATION.name: snap.trade_hist,
            conv.EXCHANGE_REQUEST_DURATION.name: snap.api_hist,
        }.get(name)
        if target is None:
            return
        hist_points: list[HistogramDataPoint] = list(data.data_points)
        for p in hist_points:
            key = frozenset((p.attributes or {}).items())
            target[key] = _HistState(list(p.bucket_counts), tuple(p.explicit_bounds),
                                     float(p.sum), int(p.count))
        return
    if not isinstance(data, (Sum, Gauge)):
        return
    points: list[NumberDataPoint] = list(data.data_points)
    for point in points:
        attrs = point.attributes or {}
        value = float(point.value)
        if name == conv.TRADES.name:
            snap.trades_total += int(value)
            if attrs.get(conv.TRADING_OUTCOME) in ("rejected", "error"):
                snap.trades_failed += int(value)
        elif name == conv.EXCHANGE_REQUESTS.name:
            snap.api_total += int(value)
            if _is_api_error(attrs):
                snap.api_errors += int(value)
        elif name == conv.PNL_REALIZED.name:
            snap.pnl += value
        elif name == conv.POSITIONS_CLOSED.name:
            snap.closed += int(value)
            if attrs.get(conv.TRADING_RESULT) == conv.PositionResult.WIN.value:
                snap.wins += int(value)
        elif name in (conv.SYSTEM_CPU_UTILIZATION.name, conv.SYSTEM_MEMORY_UTILIZATION.name):
            snap.gauges[name] = value
        elif name == conv.SYSTEM_FILESYSTEM_UTILIZATION.name:
            # the fullest filesystem is the one that matters for alerts
            snap.gauges[name] = max(value, snap.gauges.get(name, 0.0))


def _window(
    now: dict[frozenset[Any], _HistState], before: dict[frozenset[Any], _HistState]
) -> tuple[list[int], tuple[float, ...], float, int] | None:
    """Bucket counts, bounds, sum and count of all series' observations since ``before``."""
    merged: list[int] | None = None
    bounds: tuple[float, ...] = ()
    total, n = 0.0, 0
    for key, h in now.items():
        prev = before.get(key)
        if prev is not None and (prev.bounds != h.bounds or prev.n > h.n):
            prev = None  # the stream was reset (re-configure): count it from scratch
        counts = h.counts
        if prev is not None:
            counts = [a - b for a, b in zip(h.counts, prev.counts, strict=True)]
        if merged is None:
            merged, bounds = list(counts), h.bounds
        elif bounds == h.bounds:
            merged = [a + b for a, b in zip(merged, counts, strict=True)]
        else:
            continue
        total += h.total - (prev.total if prev else 0.0)
        n += h.n - (prev.n if prev else 0)
    if merged is None or n <= 0:
        return None
    return merged, bounds, total, n


def histogram_quantile(q: float, counts: list[int], bounds: tuple[float, ...]) -> float | None:
    """The ``q`` quantile (0..1) of an explicit-bucket histogram, interpolated linearly
    inside the bucket that holds it, as Prometheus' ``histogram_quantile`` does.

    Returns ``None`` for an empty histogram; the open last bucket yields its lower bound.
    """
    n = sum(counts)
    if n <= 0:
        return None
    rank = q * n
    seen = 0
    for i, c in enumerate(counts):
        if c and seen + c >= rank:
            lower = bounds[i - 1] if i > 0 else 0.0
            if i >= len(bounds):
                return lower
            upper = bounds[i]
            return lower + (upper - lower) * ((rank - seen) / c)
        seen += c
    return bounds[-1] if bounds else None


class PerformanceMonitor:
    """Samples the telemetry's in-memory reader into a bounded history.

    ``sample()`` is cheap enough to call on every ``metrics_collection_interval``; the
    history keeps at most ``history_size`` samples. Latency quantiles and error rates
    cover the last ``window_s`` seconds. ``host_sample`` supplies CPU, memory and disk
    percentages when no host observer feeds the reader.
    """

    def __init__(
        self,
        history_size: int = 720,
        host_sample: Callable[[], Mapping[str, float | None]] | None = None,
        window_s: float = 60.0,
    ) -> None:
        if history_size < 1:
            raise ValueError(f"history_size must be >= 1, got {history_size!r}")
        if not window_s > 0:
            raise ValueError(f"window_s must be > 0, got {window_s!r}")
        self.metrics_collector = MetricsCollector()
        self.window_s = float(window_s)
        self._history: deque[PerformanceSample] = deque(maxlen=history_size)
        # earlier snapshots, oldest first; the window's baseline is the oldest one kept
        self._snapshots: deque[tuple[float, _Snapshot]] = deque(maxlen=256)
        self._host_sample = host_sample
        self._lock = threading.Lock()

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

        Never raises: a failing collect yields a sample with only host figures.
        """
        data: MetricsData | None = None
        tel = telemetry.get_telemetry()
        if tel is not None:
            try:
                data = tel.metric_reader.get_metrics_data()
            except Exception as exc:
                report_internal_error("performance.sample", exc)
        snap = _read_snapshot(data)
        now = time.monotonic()
        with self._lock:
            while len(self._snapshots) > 1 and self._snapshots[1][0] <= now - self.window_s:
                self._snapshots.popleft()
            baseline = self._snapshots[0][1] if self._snapshots else _Snapshot()
            sample = self._build(snap, baseline)
            self._snapshots.append((now, snap))
            self._history.append(sample)
        return sample

    def _build(self, snap: _Snapshot, prev: _Snapshot) -> PerformanceSample:
        s = PerformanceSample(timestamp=time.time())
        self._fill_host(s, snap)
        s.trades_total, s.trades_failed = snap.trades_total, snap.trades_failed
        trade = _window(snap.trade_hist, prev.trade_hist)
        if trade is not None:
            counts, bounds, _, _ = trade
            s.trade_latency_p50_ms = _ms(histogram_quantile(0.5, counts, bounds))
            s.trade_latency_p95_ms = _ms(histogram_quantile(0.95, counts, bounds))
        s.api_requests_total, s.api_errors_total = snap.api_total, snap.api_errors
        api = _window(snap.api_hist, prev.api_hist)
        if api is not None:
            counts, bounds, total, n = api
            s.api_latency_avg_ms = _ms(total / n)
            s.api_latency_p95_ms = _ms(histogram_quantile(0.95, counts, bounds))
        window_requests = snap.api_total - prev.api_total
        if window_requests > 0:
            errors = max(0, snap.api_errors - prev.api_errors)
            s.api_error_rate = min(1.0, errors / window_requests)
        s.pnl_realized, s.positions_closed = snap.pnl, snap.closed
        if snap.closed:
            s.win_rate = 100.0 * snap.wins / snap.closed
        return s

    def _fill_host(self, s: PerformanceSample, snap: _Snapshot) -> None:
        cpu = snap.gauges.get(conv.SYSTEM_CPU_UTILIZATION.name)
        mem = snap.gauges.get(conv.SYSTEM_MEMORY_UTILIZATION.name)
        disk = snap.gauges.get(conv.SYSTEM_FILESYSTEM_UTILIZATION.name)
        s.cpu_percent = None if cpu is None else round(cpu * 100.0, 2)
        s.memory_percent = None if mem is None else round(mem * 100.0, 2)
        s.disk_percent = None if disk is None else round(disk * 100.0, 2)
        if self._host_sample is not None and None in (s.cpu_percent, s.memory_percent):
            try:
                host = self._host_sample()
            except Exception as exc:
                report_internal_error("performance.host_sample", exc)
                return
            s.cpu_percent = s.cpu_percent if s.cpu_percent is not None else host.get("cpu")
            s.memory_percent = (
                s.memory_percent if s.memory_percent is not None else host.get("memory")
            )
            s.disk_percent = s.disk_percent if s.disk_percent is not None else host.get("disk")

    def series(self, fields: Iterable[str], limit: int | None = None) -> dict[str, list[Any]]:
        """Columns of the history for charts: ``{"timestamp": [...], field: [...]}``."""
        samples = self.history
        if limit is not None:
            samples = samples[-limit:]
        out: dict[str, list[Any]] = {"timestamp": [round(s.timestamp, 1) for s in samples]}
        for name in fields:
            out[name] = [getattr(s, name) for s in samples]
        return out


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 3)
