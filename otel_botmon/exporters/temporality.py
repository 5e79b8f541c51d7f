"""Delta temporality for exporters that prefer it, from otel_botmon's cumulative data.

otel_botmon pushes the data of its one in-memory reader, which aggregates cumulatively
(the alert evaluator reads it). An exporter may prefer delta temporality, e.g. an OTLP
exporter with ``OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=delta`` for a backend
that ingests deltas only. :func:`with_preferred_temporality` wraps such an exporter in
:class:`CumulativeToDelta`, which hands it, for the instrument kinds it prefers as delta,
the change of each stream since the last successful export:

* monotonic sums (counters) use the preference for ``Counter``, non-monotonic sums that
  for ``UpDownCounter``, histograms that for ``Histogram``; gauges are left alone;
* a point's start time is the end time of the stream's previous exported point; a stream
  seen for the first time or restarted (new start time) is sent whole, from its own
  start time; one reset without a new start time (a counter or bucket that went down, a
  new bucket layout) sends its whole value for the interval since the previous point;
* a stream an observable instrument skips in some collects continues from its last
  exported point when it comes back (it is forgotten after 100 exports without it);
* a histogram's ``min``/``max`` of the interval are not known from cumulative data
  unless the cumulative minimum (maximum) moved within it; otherwise they are left out;
* the state moves on only when the export succeeds, so a failed export's change goes
  out with the next one instead of being lost.

Exporters that prefer cumulative temporality everywhere are returned unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from operator import lt, sub
from typing import Any

from opentelemetry.sdk.metrics import Counter, Histogram, UpDownCounter
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    HistogramDataPoint,
    Metric,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.metrics.export import Histogram as HistogramData

from otel_botmon.exporters._kinds import all_cumulative

__all__ = ["CumulativeToDelta", "with_preferred_temporality"]

_DELTA = AggregationTemporality.DELTA
# a stream missing from this many successful exports in a row is forgotten (only once
# the state holds many more streams than an export reports)
_FORGET_AFTER_EXPORTS = 100
_CUMULATIVE = AggregationTemporality.CUMULATIVE


def with_preferred_temporality(exporter: MetricExporter) -> MetricExporter:
    """``exporter`` fed deltas where it prefers them (see the module), or ``exporter``
    itself when it prefers cumulative temporality for every instrument kind."""
    preferred = exporter._preferred_temporality or {}
    if _DELTA not in preferred.values():
        return exporter
    return CumulativeToDelta(exporter)


class CumulativeToDelta(MetricExporter):
    """A metric exporter that takes cumulative data and hands ``inner`` deltas for the
    instrument kinds ``inner`` prefers as delta (see the module). Exports are expected
    one at a time (a ``MetricPusher`` or a handoff sender thread calls it)."""

    def __init__(self, inner: MetricExporter) -> None:
        preferred = inner._preferred_temporality or {}
        # what this exporter takes: the cumulative data of otel_botmon's reader
        super().__init__(
            preferred_temporality=all_cumulative(),
            preferred_aggregation=dict(inner._preferred_aggregation or {}),
        )
        self.inner = inner
        self._monotonic = preferred.get(Counter) is _DELTA
        self._non_monotonic = preferred.get(UpDownCounter) is _DELTA
        self._histograms = preferred.get(Histogram) is _DELTA
        # stream key -> (its last exported cumulative point, the number of the successful
        # export that had it): a stream an observable instrument skipped for a while
        # continues from there when it comes back
        self._previous: dict[tuple[Any, ...], tuple[Any, int]] = {}
        self._exports = 0

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        current: dict[tuple[Any, ...], Any] = {}
        converted = self._convert(metrics_data, current)
        result = self.inner.export(converted, timeout_millis=timeout_millis, **kwargs)
        if result is MetricExportResult.SUCCESS:
            self._exports += 1
            previous = self._previous
            for key, point in current.items():
                previous[key] = (point, self._exports)
            if len(previous) > 2 * len(current) + 1000:  # streams that went for good
                oldest = self._exports - _FORGET_AFTER_EXPORTS
                self._previous = {k: v for k, v in previous.items() if v[1] > oldest}
        return result

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return bool(self.inner.force_flush(timeout_millis=timeout_millis))

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self.inner.shutdown(timeout_millis=timeout_millis, **kwargs)

    def __repr__(self) -> str:
        return f"CumulativeToDelta({self.inner!r})"

    # --- conversion ------------------------------------------------------------------

    def _last(self, key: tuple[Any, ...]) -> Any:
        entry = self._previous.get(key)
        return entry[0] if entry is not None else None

    def _convert(self, data: MetricsData, current: dict[tuple[Any, ...], Any]) -> MetricsData:
        resources = []
        for rm in data.resource_metrics:
            resource_key = _frozen(rm.resource.attributes)
            scopes = []
            for sm in rm.scope_metrics:
                scope = sm.scope
                scope_key = (resource_key, scope.name, scope.version, scope.schema_url)
                metrics = [self._metric(metric, scope_key, current) for metric in sm.metrics]
                scopes.append(ScopeMetrics(scope=scope, metrics=metrics,
                                           schema_url=sm.schema_url))
            resources.append(ResourceMetrics(resource=rm.resource, scope_metrics=scopes,
                                             schema_url=rm.schema_url))
        return MetricsData(resource_metrics=resources)

    def _metric(
        self, metric: Metric, scope_key: tuple[Any, ...], current: dict[tuple[Any, ...], Any]
    ) -> Metric:
        data = metric.data
        if getattr(data, "aggregation_temporality", None) is not _CUMULATIVE:
            return metric  # gauges, and data that is not cumulative
        if isinstance(data, Sum):
            if not (self._monotonic if data.is_monotonic else self._non_monotonic):
                return metric
            points: list[Any] = [
                self._sum_point(p, (scope_key, metric.name, _frozen(p.attributes)),
                                data.is_monotonic, current)
                for p in data.data_points
            ]
            new_data: Any = Sum(data_points=points, aggregation_temporality=_DELTA,
                                is_monotonic=data.is_monotonic)
        elif isinstance(data, HistogramData):
            if not self._histograms:
                return metric
            points = [
                self._histogram_point(p, (scope_key, metric.name, _frozen(p.attributes)),
                                      current)
                for p in data.data_points
            ]
            new_data = HistogramData(data_points=points, aggregation_temporality=_DELTA)
        else:
            return metric  # exponential histograms are not produced by otel_botmon
        return Metric(name=metric.name, description=metric.description, unit=metric.unit,
                      data=new_data)

    def _sum_point(
        self, point: NumberDataPoint, key: tuple[Any, ...], monotonic: bool,
        current: dict[tuple[Any, ...], Any],
    ) -> NumberDataPoint:
        current[key] = point
        previous = self._last(key)
        if previous is None or previous.start_time_unix_nano != point.start_time_unix_nano:
            return point  # new or restarted: the whole value since its start
        since = previous.time_unix_nano
        if monotonic and not point.value >= previous.value:
            # reset without a new start time: the value counted since, for this interval
            return replace(point, start_time_unix_nano=since)
        return replace(point, start_time_unix_nano=since, value=point.value - previous.value)

    def _histogram_point(
        self, point: HistogramDataPoint, key: tuple[Any, ...],
        current: dict[tuple[Any, ...], Any],
    ) -> HistogramDataPoint:
        current[key] = point
        previous = self._last(key)
        if previous is None or previous.start_time_unix_nano != point.start_time_unix_nano:
            return point  # new or restarted: the whole value since its start
        if (tuple(previous.explicit_bounds) != tuple(point.explicit_bounds)
                or len(previous.bucket_counts) != len(point.bucket_counts)
                or not point.count >= previous.count
                or True in map(lt, point.bucket_counts, previous.bucket_counts)):
            # reset without a new start time: what was counted since, for this interval
            return replace(point, start_time_unix_nano=previous.time_unix_nano)
        count = point.count - previous.count
        # the interval's extremes are known only where the cumulative ones moved
        minimum = point.min if count and point.min < previous.min else None
        maximum = point.max if count and point.max > previous.max else None
        return replace(
            point, start_time_unix_nano=previous.time_unix_nano, count=count,
            sum=point.sum - previous.sum,
            bucket_counts=list(map(sub, point.bucket_counts, previous.bucket_counts)),
            min=minimum, max=maximum,  # type: ignore[arg-type]  # OTLP: optional fields
        )


def _frozen(attributes: Mapping[str, Any] | None) -> tuple[tuple[str, Any], ...]:
    if not attributes:
        return ()
    return tuple(sorted(
        (k, tuple(v) if isinstance(v, list) else v) for k, v in attributes.items()
    ))
