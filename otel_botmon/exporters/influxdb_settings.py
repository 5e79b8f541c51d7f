"""Settings of the InfluxDB exporter, importable without influxdb-client.

``configure(influxdb=InfluxDBSettings(...))`` (or a dict of the same fields) turns on
:class:`otel_botmon.exporters.influxdb.InfluxDBMetricExporter`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import urlsplit

from otel_botmon.exporters.line_protocol import DEFAULT_RESOURCE_TAGS
from otel_botmon.redaction import redact_url

__all__ = ["InfluxDBSettings"]


@dataclass(frozen=True)
class InfluxDBSettings:
    """Where and how to write metrics to InfluxDB; validated at construction.

    Raises ``ValueError`` naming the field when a value is unusable.
    """

    url: str
    """Base URL of the server, e.g. ``http://influxdb:8086`` (the exporter posts to
    ``/api/v2/write`` below it)."""
    token: str
    """API token sent as ``Authorization: Token ...``; empty for servers without auth.
    Never shown in ``repr``, logs or errors."""
    org: str
    """Organization name or ID (InfluxDB v2); ignored by v3 and VictoriaMetrics."""
    bucket: str
    """Bucket (v2) or database (v3) to write to."""
    batch_size: int = 1000
    """Lines per HTTP write."""
    timeout_s: float = 5.0
    """Time limit of one HTTP write, connection included."""
    export_interval_s: float | None = None
    """How often the periodic reader hands metrics to the exporter; None: the interval
    given to ``configure()`` (``OTEL_METRIC_EXPORT_INTERVAL``, 60 s by default)."""
    max_buffer_lines: int = 100_000
    """Lines kept while the server is unreachable; the oldest go first beyond this."""
    retry_initial_backoff_s: float = 0.5
    """Wait before the first retry of a failed write; doubles per failure (with jitter)."""
    retry_max_backoff_s: float = 30.0
    """Longest wait between retries, hence the longest delay before noticing recovery."""
    resource_attributes: tuple[str, ...] = DEFAULT_RESOURCE_TAGS
    """Resource attributes copied onto every line as tags."""
    gzip: bool = False
    """Compress request bodies."""

    def __post_init__(self) -> None:
        parts = urlsplit(self.url) if isinstance(self.url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"InfluxDBSettings.url must be an http(s) URL such as "
                f"'http://localhost:8086', got {redact_url(str(self.url))!r}"
            )
        if not isinstance(self.token, str):
            raise ValueError("InfluxDBSettings.token must be a string (empty for no auth)")
        for name in ("org", "bucket"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"InfluxDBSettings.{name} must be a non-empty string")
        for name in ("batch_size", "max_buffer_lines"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(
                    f"InfluxDBSettings.{name} must be a positive integer, got {value!r}"
                )
        for name in ("timeout_s", "export_interval_s", "retry_initial_backoff_s",
                     "retry_max_backoff_s"):
            value = getattr(self, name)
            if name == "export_interval_s" and value is None:
                continue
            if (isinstance(value, bool) or not isinstance(value, (int, float))
                    or not math.isfinite(value) or value <= 0):
                raise ValueError(
                    f"InfluxDBSettings.{name} must be a positive number, got {value!r}"
                )
        if self.max_buffer_lines < self.batch_size:
            raise ValueError("InfluxDBSettings.max_buffer_lines must be at least batch_size")
        keys: object = self.resource_attributes
        if isinstance(keys, str) or not all(isinstance(k, str) for k in self.resource_attributes):
            raise ValueError("InfluxDBSettings.resource_attributes must be a sequence of strings")
        object.__setattr__(self, "resource_attributes", tuple(self.resource_attributes))

    @classmethod
    def coerce(cls, value: InfluxDBSettings | Mapping[str, Any]) -> InfluxDBSettings:
        """Return ``value`` itself, or settings built from a mapping of the same fields.

        Raises ``ValueError`` naming unknown or missing keys, and ``TypeError`` for
        anything that is neither settings nor a mapping.
        """
        if isinstance(value, cls):
            return value
        if not isinstance(value, Mapping):
            raise TypeError(
                f"influxdb must be InfluxDBSettings or a mapping, got {type(value).__name__}"
            )
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError(f"unknown InfluxDB setting(s) {unknown}; known: {sorted(known)}")
        missing = [name for name in ("url", "token", "org", "bucket") if name not in value]
        if missing:
            raise ValueError(f"InfluxDB settings lack required key(s) {missing}")
        return cls(**dict(value))

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{f.name}={self._shown(f.name)!r}" for f in fields(self) if f.name != "token"
        )
        return f"InfluxDBSettings({shown}, token='***')"

    def _shown(self, name: str) -> object:
        value = getattr(self, name)
        return redact_url(value) if name == "url" else value

