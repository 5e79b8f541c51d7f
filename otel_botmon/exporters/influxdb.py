"""Export metrics to InfluxDB (v2, v3, or anything serving ``/api/v2/write``).

:class:`InfluxDBMetricExporter` is an OpenTelemetry ``MetricExporter``: put it in a
``PeriodicExportingMetricReader`` (``configure(influxdb=InfluxDBSettings(...))`` does).
``export()`` only turns the metrics into line protocol and appends them to a bounded
in-memory buffer: it never waits on the network, whatever state the server is in. A
writer thread sends the buffer in batches through influxdb-client's write API; when the
server is unreachable it keeps the lines, retries with capped exponential backoff and
drops the oldest lines once the buffer is full. When the server returns, the backlog is
written and writing goes on.

The line-protocol schema (one measurement per metric, histogram buckets tagged ``le``)
is described in :mod:`otel_botmon.exporters.line_protocol`.

We keep our own buffer instead of influxdb-client's batching mode because that mode
buffers without bound while the server is down and its ``close()`` waits out retries;
a trading bot needs both memory and shutdown time bounded.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.domain.write_precision import WritePrecision
from influxdb_client.rest import ApiException
from opentelemetry.sdk.metrics.export import (
    MetricExporter,
    MetricExportResult,
    MetricsData,
)

from otel_botmon import _fork
from otel_botmon._internal import report_internal_error
from otel_botmon.exporters._kinds import all_cumulative
from otel_botmon.exporters.influxdb_settings import InfluxDBSettings
from otel_botmon.exporters.line_protocol import DEFAULT_RESOURCE_TAGS, metrics_to_lines
from otel_botmon.redaction import MIN_SECRET_LENGTH, redact_url, register_secret

__all__ = [
    "DEFAULT_RESOURCE_TAGS",
    "InfluxDBExportStats",
    "InfluxDBMetricExporter",
    "InfluxDBSettings",
    "metrics_to_lines",
]

_log = logging.getLogger(__name__)
_COMPONENT = "exporters.influxdb"


# Status codes worth retrying: the server may accept the same body later.
_RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class InfluxDBExportStats:
    """A snapshot of the exporter's counters, from :meth:`InfluxDBMetricExporter.stats`."""

    buffered_lines: int
    """Lines waiting to be written (including a batch being written)."""
    written_lines: int
    """Lines the server accepted."""
    dropped_lines: int
    """Lines lost: buffer overflow while the server was down, or rejected by the server."""
    failed_writes: int
    """HTTP writes that failed (each retry counts)."""
    last_error: str | None
    """Short description of the most recent failure, without secrets."""
    healthy: bool
    """False from a failed write until the next successful one."""



class InfluxDBMetricExporter(MetricExporter):
    """An OpenTelemetry metric exporter writing line protocol to InfluxDB.

    Arguments are those of :class:`InfluxDBSettings` (validated the same way). Sums are
    exported cumulatively, so a lost write costs resolution, never totals. Failures never
    reach the caller: they are logged when writing starts failing and when it recovers,
    counted in :meth:`stats` and in ``botmon.internal.errors``.
    """

    def __init__(
        self,
        url: str,
        token: str,
        org: str,
        bucket: str,
        *,
        batch_size: int = 1000,
        timeout_s: float = 5.0,
        export_interval_s: float | None = None,
        max_buffer_lines: int = 100_000,
        retry_initial_backoff_s: float = 0.5,
        retry_max_backoff_s: float = 30.0,
        resource_attributes: Sequence[str] = DEFAULT_RESOURCE_TAGS,
        gzip: bool = False,
    ) -> None:
        settings = InfluxDBSettings(
            url=url, token=token, org=org, bucket=bucket, batch_size=batch_size,
            timeout_s=timeout_s, export_interval_s=export_interval_s,
            max_buffer_lines=max_buffer_lines,
            retry_initial_backoff_s=retry_initial_backoff_s,
            retry_max_backoff_s=retry_max_backoff_s,
            resource_attributes=tuple(resource_attributes), gzip=gzip,
        )
        super().__init__(preferred_temporality=all_cumulative())
        if len(settings.token) >= MIN_SECRET_LENGTH:
            # Scrubbed from every text otel_botmon logs or reports from now on.
            register_secret(settings.token)
        self.settings = settings
        self._client = InfluxDBClient(
            url=settings.url, token=settings.token or None,  # type: ignore[arg-type]
            org=settings.org,
            timeout=int(settings.timeout_s * 1000), enable_gzip=settings.gzip,
        )
        self._write_api = self._client.write_api(write_options=SYNCHRONOUS)
        self._buffer: deque[str] = deque()
        self._cond = threading.Condition()
        self._wake = threading.Event()  # cuts a retry backoff short on shutdown
        self._in_flight = 0
        self._closing = False
        self._closed = False
        self._deadline = math.inf  # monotonic time by which shutdown must be done
        self._written = 0
        self._dropped = 0
        self._failed = 0
        self._last_error: str | None = None
        self._healthy = True
        self._worker = threading.Thread(
            target=self._run, name="botmon-influxdb-writer", daemon=True
        )
        self._worker.start()
        _fork.register(self)

    def _after_fork_in_child(self) -> None:
        """The parent writes its own lines: the child keeps none of them nor the
        parent's connections, and gets a new lock and writer thread."""
        self._cond = threading.Condition()
        self._wake = threading.Event()
        self._buffer.clear()
        self._in_flight = 0
        _fork.reset_connections(self._client)
        if not self._closing:
            self._worker = threading.Thread(
                target=self._run, name="botmon-influxdb-writer", daemon=True
            )
            self._worker.start()

    @classmethod
    def from_settings(
        cls, settings: InfluxDBSettings | Mapping[str, Any]
    ) -> InfluxDBMetricExporter:
        """Build an exporter from :class:`InfluxDBSettings` or a mapping of its fields."""
        s = InfluxDBSettings.coerce(settings)
        return cls(
            s.url, s.token, s.org, s.bucket, batch_size=s.batch_size, timeout_s=s.timeout_s,
            export_interval_s=s.export_interval_s, max_buffer_lines=s.max_buffer_lines,
            retry_initial_backoff_s=s.retry_initial_backoff_s,
            retry_max_backoff_s=s.retry_max_backoff_s,
            resource_attributes=s.resource_attributes, gzip=s.gzip,
        )

    def __repr__(self) -> str:
        return f"InfluxDBMetricExporter({self.settings!r})"

    # --- MetricExporter --------------------------------------------------------------

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        """Queue the metrics for the writer thread; returns without network I/O.

        ``FAILURE`` only after shutdown or if encoding fails (reported as an internal
        error); a full buffer drops its oldest lines instead.
        """
        if self._closing:
            return MetricExportResult.FAILURE
        try:
            lines = metrics_to_lines(metrics_data, self.settings.resource_attributes)
        except Exception as exc:
            report_internal_error(_COMPONENT, exc)
            return MetricExportResult.FAILURE
        with self._cond:
            self._buffer.extend(lines)
            self._trim_buffer()
            self._cond.notify_all()
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        """Wait until every queued line is written; False if that took over the timeout."""
        with self._cond:
            return self._cond.wait_for(
                lambda: (not self._buffer and not self._in_flight) or self._closed,
                timeout=max(timeout_millis, 0) / 1000,
            ) and not self._buffer

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        """Write what is buffered (one attempt per batch) and stop, within the timeout."""
        timeout_s = max(timeout_millis, 0) / 1000
        with self._cond:
            if self._closing:
                return
            self._closing = True
            self._deadline = time.monotonic() + timeout_s
            self._cond.notify_all()
        self._wake.set()
        self._worker.join(timeout_s)
        if not self._worker.is_alive():
            # Closing the client under a write still in progress would race with it.
            self._client.close()  # type: ignore[no-untyped-call]

    def stats(self) -> InfluxDBExportStats:
        """The exporter's counters right now."""
        with self._cond:
            return InfluxDBExportStats(
                buffered_lines=len(self._buffer) + self._in_flight,
                written_lines=self._written,
                dropped_lines=self._dropped,
                failed_writes=self._failed,
                last_error=self._last_error,
                healthy=self._healthy,
            )

    # --- writer thread ---------------------------------------------------------------

    def _trim_buffer(self) -> None:
        overflow = len(self._buffer) + self._in_flight - self.settings.max_buffer_lines
        dropped = min(max(overflow, 0), len(self._buffer))
        for _ in range(dropped):
            self._buffer.popleft()
        self._dropped += dropped

    def _run(self) -> None:
        backoff = self.settings.retry_initial_backoff_s
        while True:
            batch = self._take_batch()
            if batch is None:
                break
            retry_after = self._write(batch)
            retry = retry_after is not None
            with self._cond:
                self._in_flight = 0
                if retry:
                    # Back to the head: order is kept and the buffer bound still applies.
                    self._buffer.extendleft(reversed(batch))
                    self._trim_buffer()
                self._cond.notify_all()
            if not retry:
                backoff = self.settings.retry_initial_backoff_s
                continue
            if self._closing:
                break  # shutdown allows one attempt; the rest is lost
            # Jitter keeps a fleet of bots from retrying in lockstep after an outage.
            wait = max(backoff * random.uniform(0.8, 1.2),
                       min(retry_after or 0.0, self.settings.retry_max_backoff_s))
            self._wake.wait(wait)
            backoff = min(backoff * 2, self.settings.retry_max_backoff_s)
        with self._cond:
            # Whatever shutdown could not write in time is lost: say so in the counters.
            self._dropped += len(self._buffer)
            self._buffer.clear()
            self._closed = True
            self._cond.notify_all()

    def _take_batch(self) -> list[str] | None:
        with self._cond:
            while not self._buffer:
                if self._closing:
                    return None
                self._cond.wait()
            if self._closing and time.monotonic() >= self._deadline:
                return None
            size = min(self.settings.batch_size, len(self._buffer))
            batch = [self._buffer.popleft() for _ in range(size)]
            self._in_flight = size
            return batch

    def _write(self, batch: list[str]) -> float | None:
        """Send one batch. None when done with it (written, or rejected for good);
        otherwise the server's Retry-After in seconds (0.0 when it gave none)."""
        try:
            self._write_api.write(
                bucket=self.settings.bucket, org=self.settings.org,
                record="\n".join(batch),
                write_precision=WritePrecision.NS,  # type: ignore[arg-type]
            )
        except Exception as exc:
            return self._on_failure(batch, exc)
        with self._cond:
            self._written += len(batch)
            recovered = not self._healthy
            self._healthy = True
        if recovered:
            _log.info("InfluxDB writes to %s recovered", redact_url(self.settings.url))
        return None

    def _on_failure(self, batch: list[str], exc: Exception) -> float | None:
        status = exc.status if isinstance(exc, ApiException) else None
        retryable = status is None or status in _RETRYABLE_STATUS
        description = _describe(exc, status)
        with self._cond:
            self._failed += 1
            self._last_error = description
            was_healthy = self._healthy
            self._healthy = False
            if not retryable:
                self._dropped += len(batch)
        if was_healthy:
            _log.warning(
                "InfluxDB write to %s failed (%s); %s",
                redact_url(self.settings.url), description,
                "buffering and retrying" if retryable else f"dropped {len(batch)} lines",
            )
        report_internal_error(_COMPONENT, exc)
        return _retry_after_s(exc) if retryable else None


def _retry_after_s(exc: Exception) -> float:
    """The Retry-After header of an HTTP error in seconds; 0.0 when absent or a date."""
    headers = getattr(exc, "headers", None)
    value = headers.get("Retry-After") if headers is not None else None
    try:
        seconds = float(value) if value is not None else 0.0
    except ValueError:
        return 0.0
    return seconds if math.isfinite(seconds) and seconds > 0 else 0.0


def _describe(exc: Exception, status: int | None) -> str:
    # The exception text of urllib3 and influxdb-client may include request details;
    # the type and status code say enough and cannot leak the token.
    if status is not None:
        return f"HTTP {status} {getattr(exc, 'reason', '') or ''}".strip()
    return type(exc).__name__
