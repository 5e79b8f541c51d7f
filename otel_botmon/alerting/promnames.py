"""How botmon metric and attribute names appear in Prometheus.

The translation is the one of ``opentelemetry-exporter-prometheus`` (and the
OpenTelemetry specification's Prometheus compatibility rules), so exported rules query
the series that a Prometheus scraping the bot (or an OTLP Collector) actually stores:

* characters other than ``[a-zA-Z0-9:]`` become ``_`` (``botmon.trade.duration`` ->
  ``botmon_trade_duration``), attribute keys likewise (``trading.symbol`` ->
  ``trading_symbol``);
* the unit is appended (``s`` -> ``_seconds``, ``By`` -> ``_bytes``; annotations such as
  ``{trade}`` and the unit ``1`` add nothing);
* monotonic counters end in ``_total``; histograms become ``_bucket`` (label ``le``),
  ``_sum`` and ``_count``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from otel_botmon import conventions as c
from otel_botmon.query import MetricKind
from otel_botmon.query.syntax import known_metric_kinds

__all__ = ["PromSeries", "prom_label", "prom_metric", "reverse_labels", "reverse_names"]

_NAME_INVALID = re.compile(r"[^a-zA-Z0-9:]+")
_LABEL_INVALID = re.compile(r"[^a-zA-Z0-9]+")
_UNIT_ANNOTATION = re.compile(r"\{.*\}")
_UNITS = {
    "d": "days", "h": "hours", "min": "minutes", "s": "seconds", "ms": "milliseconds",
    "us": "microseconds", "ns": "nanoseconds", "By": "bytes", "KiBy": "kibibytes",
    "MiBy": "mebibytes", "GiBy": "gibibytes", "KBy": "kilobytes", "MBy": "megabytes",
    "GBy": "gigabytes", "1": "", "%": "percent",
}


def _sanitize(name: str, invalid: re.Pattern[str]) -> str:
    if name and name[0].isdigit():
        name = "_" + name[1:]
    return invalid.sub("_", name)


def prom_label(name: str) -> str:
    """The Prometheus label name of attribute ``name``."""
    return _sanitize(name, _LABEL_INVALID)


def _unit_suffix(unit: str) -> str:
    unit = _UNIT_ANNOTATION.sub("", unit)
    if unit in _UNITS:
        return _UNITS[unit]
    return _NAME_INVALID.sub("_", unit).strip("_")


def _units() -> dict[str, str]:
    return {spec.name: spec.unit for spec in c.ALL_METRICS}


def prom_metric(metric: str, kind: MetricKind, component: str | None = None,
                unit: str | None = None) -> str:
    """The Prometheus series name of ``metric`` (a histogram's ``component`` is
    ``bucket``, ``sum`` or ``count``). ``unit`` defaults to the one in conventions."""
    name = _sanitize(metric, _NAME_INVALID)
    suffix = _unit_suffix(unit if unit is not None else _units().get(metric, ""))
    if suffix and not name.endswith("_" + suffix):
        name += "_" + suffix
    if kind is MetricKind.HISTOGRAM:
        return f"{name}_{component or 'bucket'}"
    if kind is MetricKind.COUNTER and not name.endswith("_total"):
        name += "_total"
    return name


@dataclass(frozen=True)
class PromSeries:
    """What a Prometheus series name stands for in botmon."""

    metric: str
    kind: MetricKind
    component: str | None  # bucket / sum / count of a histogram


def reverse_names(extra: Mapping[str, MetricKind] | None = None) -> dict[str, PromSeries]:
    """Prometheus series name -> botmon metric, for every known metric."""
    kinds = {**known_metric_kinds(), **(extra or {})}
    out: dict[str, PromSeries] = {}
    for metric, kind in kinds.items():
        if kind is MetricKind.HISTOGRAM:
            for component in ("bucket", "sum", "count"):
                out[prom_metric(metric, kind, component)] = PromSeries(metric, kind, component)
        else:
            out[prom_metric(metric, kind)] = PromSeries(metric, kind, None)
    return out


def reverse_labels() -> dict[str, str]:
    """Prometheus label name -> attribute key, for every attribute in conventions."""
    keys = {key for spec in c.ALL_METRICS for key in spec.attributes}
    keys.update(
        value for name, value in vars(c).items()
        if name.isupper() and isinstance(value, str) and "." in value
        and not value.startswith(("botmon.", "system.", "process."))
    )
    return {prom_label(key): key for key in keys}
