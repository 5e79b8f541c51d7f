"""Deprecated location of :class:`~otel_botmon.query.MetricHistory` (the query engine's
history); kept so that ``from otel_botmon.alerting.history import MetricHistory`` works."""

from __future__ import annotations

from otel_botmon.query import Labels, MetricHistory, MetricKind, Sample

__all__ = ["Labels", "MetricHistory", "MetricKind", "Sample"]
