"""InfluxDB line protocol for OpenTelemetry metrics.

One measurement per metric, named as in ``otel_botmon.conventions`` (``botmon.trades``):

* counters, up-down counters and gauges: field ``value`` (cumulative for sums);
* histograms: fields ``count``, ``sum``, ``min``, ``max`` and one line per bucket with
  tag ``le`` (upper bound, ``+Inf`` last) and field ``bucket`` (cumulative count), so
  PromQL-speaking stores such as VictoriaMetrics can run ``histogram_quantile``;
* tags: the point's attributes plus the chosen resource attributes; timestamps in ns.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.sdk.metrics.export import (
    ExponentialHistogramDataPoint,
    HistogramDataPoint,
    MetricsData,
    NumberDataPoint,
)

__all__ = ["DEFAULT_RESOURCE_TAGS", "metrics_to_lines"]

DEFAULT_RESOURCE_TAGS: tuple[str, ...] = (
    "service.name",
    "service.instance.id",
    "service.version",
    "deployment.environment",
    "deployment.environment.name",
    "host.name",
    "bot.name",
    "bot.exchange",
    "bot.strategy",
)


def metrics_to_lines(
    metrics_data: MetricsData, resource_attributes: Sequence[str] = DEFAULT_RESOURCE_TAGS
) -> list[str]:
    """Encode OpenTelemetry metrics as InfluxDB line protocol (nanosecond timestamps).

    See the module docstring for the schema. Non-finite values are left out (line
    protocol cannot carry them).
    """
    lines: list[str] = []
    wanted = set(resource_attributes)
    for resource_metrics in metrics_data.resource_metrics:
        resource_tags = {
            key: value for key, value in resource_metrics.resource.attributes.items()
            if key in wanted
        }
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                measurement = metric.name.translate(_ESCAPE_MEASUREMENT)
                for point in metric.data.data_points:
                    tags = {**resource_tags, **(point.attributes or {})}
                    _append_point_lines(lines, _series_key(measurement, tags), point)
    return lines


def _series_key(measurement: str, tags: Mapping[str, Any]) -> str:
    """``measurement,tag=value,...``: escaped, tags sorted (what InfluxDB indexes
    fastest), empty values left out (line protocol has no empty tag values)."""
    parts = [measurement]
    for key in sorted(tags):
        text = _tag_text(tags[key])
        if text:
            parts.append(f"{key.translate(_ESCAPE_KEY)}={_escape_tag_value(text)}")
    return ",".join(parts)


def _append_point_lines(lines: list[str], series: str, point: object) -> None:
    if isinstance(point, NumberDataPoint):
        value = float(point.value)
        if math.isfinite(value):
            lines.append(f"{series} value={value!r} {point.time_unix_nano}")
    elif isinstance(point, HistogramDataPoint):
        ts = point.time_unix_nano
        lines.append(f"{series} {_summary_fields(point)} {ts}")
        # One line per bucket, the series key plus `le` (appended: the key is built once
        # per point, and InfluxDB accepts tags in any order).
        cumulative = 0
        for bound, count in zip(point.explicit_bounds, point.bucket_counts, strict=False):
            cumulative += count
            lines.append(f"{series},le={float(bound)!r} bucket={float(cumulative)!r} {ts}")
        lines.append(f"{series},le=+Inf bucket={float(point.count)!r} {ts}")
    elif isinstance(point, ExponentialHistogramDataPoint):
        lines.append(f"{series} {_summary_fields(point)} {point.time_unix_nano}")


def _summary_fields(point: HistogramDataPoint | ExponentialHistogramDataPoint) -> str:
    values = [f"count={float(point.count)!r}"]
    if math.isfinite(point.sum):
        values.append(f"sum={float(point.sum)!r}")
    if point.count and math.isfinite(point.min) and math.isfinite(point.max):
        values.append(f"min={float(point.min)!r},max={float(point.max)!r}")
    return ",".join(values)


# Line protocol escaping: measurement names escape commas and spaces; tag keys, tag
# values and field keys also escape '='. A newline would end the line, so it is escaped.
_ESCAPE_MEASUREMENT = str.maketrans({",": r"\,", " ": r"\ ", "\n": r"\n"})
_ESCAPE_KEY = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ ", "\n": r"\n"})


def _tag_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        return ",".join(str(item) for item in value)
    return str(value)


def _escape_tag_value(text: str) -> str:
    escaped = text.translate(_ESCAPE_KEY)
    # A trailing backslash would escape the separator after the value; an escaped
    # space after it keeps the line parseable (what influxdb-client's Point does too).
    return escaped + " " if escaped.endswith("\\") else escaped
