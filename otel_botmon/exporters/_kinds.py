"""The SDK's instrument classes, by which metric exporters key their preferences."""

from __future__ import annotations

from opentelemetry.sdk.metrics import (
    Counter,
    Histogram,
    ObservableCounter,
    ObservableGauge,
    ObservableUpDownCounter,
    UpDownCounter,
)
from opentelemetry.sdk.metrics import _Gauge as Gauge
from opentelemetry.sdk.metrics.export import AggregationTemporality

__all__ = ["INSTRUMENT_KINDS", "all_cumulative"]

INSTRUMENT_KINDS: tuple[type, ...] = (
    Counter, UpDownCounter, Histogram, ObservableCounter, ObservableUpDownCounter,
    ObservableGauge, Gauge,
)


def all_cumulative() -> dict[type, AggregationTemporality]:
    """A preference of cumulative temporality for every instrument kind."""
    return dict.fromkeys(INSTRUMENT_KINDS, AggregationTemporality.CUMULATIVE)
