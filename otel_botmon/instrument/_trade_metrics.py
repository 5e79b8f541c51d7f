"""A trade's metrics from one aggregation: the lean path below the SDK's per-measurement cost.

A trade records the same few attribute sets again and again. Through the SDK's
instruments every measurement validates its attributes, hashes them, and is aggregated
once per instrument and reader: five instruments (duration, count, volume, notional,
slippage) cost more than the trade's span. :class:`TradeMetrics` keeps one cell per
attribute set instead, found by a tuple of the already-validated label strings, and
updates it under one lock:

* per (symbol, side, order type, outcome, error type): the duration histogram and the
  trade count (``botmon.trades`` is the histogram's count plus the untimed trades);
* per (symbol, side): volume and notional;
* per (symbol, side, slippage direction): the slippage histogram.

Each metric keeps its own cardinality cap, as each SDK instrument does: untimed trades
do not use up the duration histogram's series, nor fills without a price the notional
counter's. Measurements the SDK's instruments drop are dropped here too: a negative or
non-finite addition to a counter, a non-finite slippage.

The cells are exported with the reader's own collection (:meth:`TradeMetrics.hook`
wraps the collect callback the ``MeterProvider`` gave each reader), as the same
``Metric`` objects the SDK would build: names, units, descriptions, attributes, monotonic
cumulative sums, histogram buckets (``conventions``), and the same cardinality cap with
one ``otel.metric.overflow`` series. Differences, by design: one start time per pipeline
for every series (cumulative since the pipeline started), and no exemplars.

Readers that prefer delta temporality for counters or histograms get the SDK path
(``hook`` refuses them), since interval min/max cannot be derived from cumulative cells;
so do readers that prefer another aggregation than a sum for counters, or another cap
on their series (``cardinality_limits``).
"""

from __future__ import annotations

import math
import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable
from typing import Any, cast

from opentelemetry.sdk.metrics import Counter, Histogram
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    HistogramDataPoint,
    Metric,
    MetricReader,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
)
from opentelemetry.sdk.metrics.export import Histogram as HistogramData
from opentelemetry.sdk.metrics.export import Sum as SumData
from opentelemetry.sdk.metrics.view import DefaultAggregation, SumAggregation
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from otel_botmon import _fork
from otel_botmon import conventions as conv
from otel_botmon.__about__ import __version__

__all__ = ["TradeMetrics"]

_CUMULATIVE = AggregationTemporality.CUMULATIVE
_INF = math.inf
_OVERFLOW: Any = ("otel.metric.overflow",)  # a key no label tuple can equal
_OVERFLOW_ATTRIBUTES = {"otel.metric.overflow": True}
_TRADE_KEYS = (conv.TRADING_SYMBOL, conv.TRADING_SIDE, conv.TRADING_ORDER_TYPE,
               conv.TRADING_OUTCOME, conv.ERROR_TYPE)
_FILL_KEYS = (conv.TRADING_SYMBOL, conv.TRADING_SIDE)
_SLIP_KEYS = (conv.TRADING_SYMBOL, conv.TRADING_SIDE, conv.TRADING_SLIPPAGE_DIRECTION)

Collect = Callable[..., "MetricsData | None"]


class _Hist:
    """An explicit-bucket histogram series (the SDK's aggregation, without its lock);
    ``trades`` counts every trade of the series, timed or not.

    A trade cell also says where its labels' measurements go, each metric under its own
    cap: ``counted`` is the cell whose ``trades`` counts them (itself, or the overflow
    cell), ``timed`` the cell whose histogram holds their durations (itself, the
    overflow cell, or None until the first timed trade of these labels)."""

    __slots__ = ("buckets", "count", "counted", "max", "min", "sum", "timed", "trades")

    def __init__(self, n_buckets: int) -> None:
        self.trades = 0
        self.count = 0
        self.sum = 0.0
        self.min = math.inf
        self.max = -math.inf
        self.buckets = [0] * n_buckets
        self.counted: _Hist = self
        self.timed: _Hist | None = self


def _attributes(keys: tuple[str, ...], labels: tuple[str | None, ...]) -> dict[str, Any]:
    if labels is _OVERFLOW:
        return dict(_OVERFLOW_ATTRIBUTES)
    return {k: v for k, v in zip(keys, labels, strict=True) if v is not None}


class TradeMetrics:
    """The trade metrics of one pipeline, aggregated once, exported by every reader.

    Thread-safe (one lock around each trade's update); bounded (``limit`` series per
    metric plus one overflow series); fork-safe (a child starts from empty cells with a
    new lock, as the SDK's storage does after ``otel_botmon._fork``).
    """

    def __init__(self, resource: Resource, limit: int | None = None) -> None:
        self._resource = resource
        # read when built, as configure() reads it for the SDK's instruments
        self._limit = conv.CARDINALITY_LIMIT if limit is None else limit
        self._lock = threading.Lock()
        self._trades: dict[Any, _Hist] = {}
        self._counted = 0  # label sets with a botmon.trades series of their own
        self._timed = 0  # ... with a botmon.trade.duration series of their own
        self._volumes: dict[Any, float] = {}
        self._notionals: dict[Any, float] = {}
        self._slips: dict[Any, _Hist] = {}
        self._duration_bounds = tuple(conv.DURATION_BUCKETS_S)
        self._slip_bounds = tuple(conv.SLIPPAGE_BUCKETS_BP)
        self._scope = InstrumentationScope(conv.INSTRUMENTATION_SCOPE, __version__, None, None)
        self._start_ns = time.time_ns()
        _fork.register(self)

    # --- the bot's thread -------------------------------------------------------------

    def record(
        self,
        labels: tuple[str | None, str | None, str | None, str, str | None],
        duration_s: float | None,
        fill_qty: float | None,
        notional: float | None,
        slip_direction: str | None,
        slip_bp: float,
    ) -> None:
        """One trade: ``labels`` is (symbol, side, order type, outcome, error type);
        ``duration_s`` None for an untimed trade; ``fill_qty`` None (or not > 0) when
        nothing was filled; ``slip_direction`` None when no slippage is known."""
        with self._lock:
            cell = self._trades.get(labels)
            if cell is None:
                cell = self._new_trade(labels, duration_s is not None)
            cell.counted.trades += 1
            if duration_s is not None:
                hist = cell.timed
                if hist is None:
                    hist = self._timed_cell(cell)
                hist.count += 1
                hist.sum += duration_s
                if duration_s < hist.min:
                    hist.min = duration_s
                if duration_s > hist.max:
                    hist.max = duration_s
                hist.buckets[bisect_left(self._duration_bounds, duration_s)] += 1
            if fill_qty is None and slip_direction is None:
                return
            pair = labels[:2]
            # The SDK's counters drop negative and non-finite additions, its histograms
            # non-finite values (comparisons with NaN are false).
            if fill_qty is not None and 0 < fill_qty < _INF:
                volumes = self._volumes
                total = volumes.get(pair)
                if total is None:
                    self._add_new(volumes, pair, fill_qty)
                else:
                    volumes[pair] = total + fill_qty
                if notional is not None and 0 <= notional < _INF:
                    notionals = self._notionals
                    total = notionals.get(pair)
                    if total is None:
                        self._add_new(notionals, pair, notional)
                    else:
                        notionals[pair] = total + notional
            if slip_direction is not None and slip_bp < _INF:
                key = (*pair, slip_direction)
                slip = self._slips.get(key)
                if slip is None:
                    slip = self._new_hist(self._slips, key, len(self._slip_bounds) + 1)
                slip.count += 1
                slip.sum += slip_bp
                if slip_bp < slip.min:
                    slip.min = slip_bp
                if slip_bp > slip.max:
                    slip.max = slip_bp
                slip.buckets[bisect_left(self._slip_bounds, slip_bp)] += 1

    # (called with the lock held) Past a metric's cap, new attribute sets share its one
    # overflow series; each metric counts its own series, as each SDK instrument does.

    def _new_trade(self, labels: Any, timed: bool) -> _Hist:
        """The cell for labels not seen before: kept when they get a series of their
        own in either metric, else the overflow cell (bounded memory)."""
        limit = self._limit
        if self._counted < limit:
            self._counted += 1
            cell = _Hist(len(self._duration_bounds) + 1)
        elif timed and self._timed < limit:
            cell = _Hist(len(self._duration_bounds) + 1)
            cell.counted = self._overflow()
        else:
            return self._overflow()
        cell.timed = None  # decided by the first timed trade of these labels
        self._trades[labels] = cell
        return cell

    def _timed_cell(self, cell: _Hist) -> _Hist:
        if self._timed < self._limit:
            self._timed += 1
            cell.timed = cell
        else:
            cell.timed = self._overflow()
        return cell.timed

    def _overflow(self) -> _Hist:
        cell = self._trades.get(_OVERFLOW)
        if cell is None:  # counts and times its own trades (counted, timed: itself)
            cell = self._trades[_OVERFLOW] = _Hist(len(self._duration_bounds) + 1)
        return cell

    def _add_new(self, totals: dict[Any, float], key: Any, value: float) -> None:
        if len(totals) >= self._limit:
            key = _OVERFLOW
        # from 0 as the SDK's sums: a first -0.0 adds up to 0.0
        totals[key] = totals.get(key, 0) + value

    def _new_hist(self, cells: dict[Any, _Hist], key: Any, n_buckets: int) -> _Hist:
        if len(cells) >= self._limit:
            key = _OVERFLOW
            found = cells.get(key)
            if found is not None:
                return found
        cell = cells[key] = _Hist(n_buckets)
        return cell

    # --- collection (a reader's thread) ----------------------------------------------

    def hook(self, reader: MetricReader, collect: Collect) -> bool:
        """Make ``reader``'s collections include these metrics; False (nothing changed)
        when the reader wants deltas for counters or histograms, counters not summed, or
        another cap on a counter's series."""
        preferred = reader._instrument_class_temporality
        for kind, temporality in preferred.items():
            if issubclass(kind, (Counter, Histogram)) and temporality is not _CUMULATIVE:
                return False
        # Another aggregation for counters (dropped, last value ...) is the SDK's to make;
        # the histograms' is fixed by configure()'s views, whatever the reader prefers.
        # (the SDK annotates every value as DefaultAggregation; preferences replace them)
        aggregations: Any = reader._instrument_class_aggregation
        for counted, aggregation in aggregations.items():
            if issubclass(counted, Counter) and not isinstance(
                    aggregation, (DefaultAggregation, SumAggregation)):
                return False
        # So is another cap on a counter's series (the SDK's is per reader: 2,000 unless
        # the reader sets one); the histograms' is configure()'s views', as above.
        limits: Any = getattr(reader, "_instrument_class_cardinality_limit", None) or {}
        for counted, limit in limits.items():
            if issubclass(counted, Counter) and limit != self._limit:
                return False

        def collect_with_trades(
            metric_reader: MetricReader, timeout_millis: float = 10_000
        ) -> MetricsData | None:
            return self._merge(collect(metric_reader, timeout_millis=timeout_millis))

        # (the SDK annotates the callback's second parameter wrongly; it is the timeout)
        reader._set_collect_callback(cast(Any, collect_with_trades))
        return True

    def metrics(self) -> list[Metric]:
        """The current cumulative points as the SDK's ``Metric`` objects."""
        now = time.time_ns()
        with self._lock:
            trades = [(k, c.trades, c.count, c.sum, c.min, c.max, tuple(c.buckets))
                      for k, c in self._trades.items()]
            volumes = list(self._volumes.items())
            notionals = list(self._notionals.items())
            slips = [(k, c.count, c.sum, c.min, c.max, tuple(c.buckets))
                     for k, c in self._slips.items()]
        start = self._start_ns
        found: list[Metric] = []
        durations = [
            HistogramDataPoint(
                attributes=_attributes(_TRADE_KEYS, k), start_time_unix_nano=start,
                time_unix_nano=now, count=n, sum=s, bucket_counts=b,
                explicit_bounds=self._duration_bounds, min=lo, max=hi, exemplars=[],
            )
            for k, _t, n, s, lo, hi, b in trades if n
        ]
        found += self._histogram(conv.TRADE_DURATION, durations)
        counts = [self._number(_TRADE_KEYS, k, t, start, now) for k, t, *_ in trades if t]
        found += self._sum(conv.TRADES, counts)
        found += self._sum(conv.TRADE_VOLUME, [
            self._number(_FILL_KEYS, k, v, start, now) for k, v in volumes])
        found += self._sum(conv.TRADE_NOTIONAL, [
            self._number(_FILL_KEYS, k, v, start, now) for k, v in notionals])
        slippage = [
            HistogramDataPoint(
                attributes=_attributes(_SLIP_KEYS, k), start_time_unix_nano=start,
                time_unix_nano=now, count=n, sum=s, bucket_counts=b,
                explicit_bounds=self._slip_bounds, min=lo, max=hi, exemplars=[],
            )
            for k, n, s, lo, hi, b in slips
        ]
        found += self._histogram(conv.TRADE_SLIPPAGE, slippage)
        return found

    @staticmethod
    def _number(
        keys: tuple[str, ...], labels: Any, value: float, start: int, now: int
    ) -> NumberDataPoint:
        return NumberDataPoint(
            attributes=_attributes(keys, labels), start_time_unix_nano=start,
            time_unix_nano=now, value=value, exemplars=[],
        )

    @staticmethod
    def _sum(spec: conv.MetricSpec, points: list[NumberDataPoint]) -> list[Metric]:
        if not points:
            return []
        data = SumData(data_points=points, aggregation_temporality=_CUMULATIVE,
                       is_monotonic=True)
        return [Metric(name=spec.name, description=spec.description, unit=spec.unit,
                       data=data)]

    @staticmethod
    def _histogram(spec: conv.MetricSpec, points: list[HistogramDataPoint]) -> list[Metric]:
        if not points:
            return []
        data = HistogramData(data_points=points, aggregation_temporality=_CUMULATIVE)
        return [Metric(name=spec.name, description=spec.description, unit=spec.unit,
                       data=data)]

    def _merge(self, data: MetricsData | None) -> MetricsData | None:
        extra = self.metrics()
        if not extra:
            return data
        if data is None or not data.resource_metrics:
            scope = ScopeMetrics(scope=self._scope, metrics=extra,
                                 schema_url=self._scope.schema_url or "")
            return MetricsData(resource_metrics=[ResourceMetrics(
                resource=self._resource, scope_metrics=[scope],
                schema_url=self._resource.schema_url,
            )])
        resource_metrics = data.resource_metrics[0]
        for scope_metrics in resource_metrics.scope_metrics:
            if scope_metrics.scope == self._scope:
                _extend(scope_metrics.metrics, extra)
                return data
        _extend(resource_metrics.scope_metrics,
                [ScopeMetrics(scope=self._scope, metrics=extra,
                              schema_url=self._scope.schema_url or "")])
        return data

    # --- fork -------------------------------------------------------------------------

    def _after_fork_in_child(self) -> None:
        # The child is a new service instance: its series start from nothing, under its
        # own service.instance.id (else they land on the parent's series at the backend).
        self._lock = threading.Lock()
        self._resource = _fork.child_resource(self._resource)
        self._trades = {}
        self._counted = self._timed = 0
        self._volumes = {}
        self._notionals = {}
        self._slips = {}
        self._start_ns = time.time_ns()


def _extend(target: Any, items: Iterable[Any]) -> None:
    # The SDK builds these as lists; a tuple from elsewhere is left as it is.
    if isinstance(target, list):
        target.extend(items)
