"""What an OTLP/HTTP endpoint answers, read as the OTLP specification asks.

The SDK's client looks only at the status: it never reads a successful answer's
``partial_success`` (spans or data points the endpoint rejected, with its reason), so
rejected telemetry vanished without a word; and it takes any ``Retry-After`` that
parses as a number, so ``-5`` (not a valid delay) or a date already past sent the batch
again six times at once to an endpoint asking for less traffic.

:class:`ReadAnswers` wraps the exporter's transport: a partial success is counted
(``rejected``) and logged at most once a minute, and remains a success (the request was
accepted: retrying would send the accepted part twice); a ``Retry-After`` that is not a
non-negative whole number of seconds or a future HTTP-date is dropped, so the client
backs off exponentially instead.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Final, Literal

from opentelemetry.exporter.http.transport._base import BaseHTTPResult, BaseHTTPTransport

__all__ = ["ReadAnswers"]

logger = logging.getLogger("otel_botmon")

Signal = Literal["spans", "metrics", "logs"]

_LOG_EVERY_S: Final = 60.0
_MAX_ANSWER: Final = 1 << 20  # decompressed: an OTLP answer is a few bytes
_MAX_MESSAGE: Final = 200
_DELAY_SECONDS: Final = re.compile(r"[0-9]{1,10}(\.[0-9]{1,6})?")  # the SDK takes fractions
_UNPRINTABLE: Final = re.compile(r"[^\x20-\x7e]")
_ITEMS: Final = {"spans": "spans", "metrics": "data points", "logs": "log records"}


def _response_type(signal: Signal) -> Any:
    if signal == "spans":
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceResponse,
        )
        return ExportTraceServiceResponse
    if signal == "metrics":
        from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
            ExportMetricsServiceResponse,
        )
        return ExportMetricsServiceResponse
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
    return ExportLogsServiceResponse


def _valid_retry_after(value: str) -> bool:
    """Whether ``value`` is a delay the client may wait for (RFC 9110 section 10.2.3):
    non-negative seconds, or an HTTP-date still ahead."""
    value = value.strip()
    if _DELAY_SECONDS.fullmatch(value):
        return True
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return False
    try:
        return when.timestamp() > time.time()
    except (OverflowError, ValueError, OSError):
        return False


class _Headers(Mapping[str, str]):
    """Headers without one name (case-insensitive), otherwise ``inner``'s."""

    __slots__ = ("_inner", "_without")

    def __init__(self, inner: Mapping[str, str], without: str) -> None:
        self._inner, self._without = inner, without

    def __getitem__(self, key: str) -> str:
        if key.lower() == self._without:
            raise KeyError(key)
        return self._inner[key]

    def __iter__(self) -> Any:
        return (key for key in self._inner if key.lower() != self._without)

    def __len__(self) -> int:
        return sum(1 for _ in self)


@dataclass(frozen=True, slots=True)
class _WithoutRetryAfter(BaseHTTPResult):
    inner: Any = field(default=None, repr=False)

    def content(self) -> bytes:
        return bytes(self.inner.content())

    def headers(self) -> Mapping[str, str]:
        return _Headers(self.inner.headers(), "retry-after")


class ReadAnswers(BaseHTTPTransport):
    """``inner``'s requests, with the answers read as the module docstring says.

    ``rejected`` counts the items (spans, data points) endpoints reported rejected.
    """

    def __init__(self, inner: BaseHTTPTransport, signal: Signal) -> None:
        self.inner = inner
        self.signal: Signal = signal
        self.rejected = 0
        self._lock = threading.Lock()
        self._logged_at: float | None = None
        self._unlogged = 0

    def request(self, method: str, url: str, *, headers: dict[str, str] | None = None,
                timeout: float | None = None, data: bytes | None = None) -> BaseHTTPResult:
        result = self.inner.request(method, url, headers=headers, timeout=timeout, data=data)
        status = result.status_code
        try:
            if status is not None and 200 <= status < 300:
                self._read_partial_success(result)
            elif status is not None:
                retry_after = result.headers().get("retry-after")
                if retry_after is not None and not _valid_retry_after(retry_after):
                    return _WithoutRetryAfter(status, result.reason, result.error, result)
        except Exception as exc:  # an odd answer must not fail a delivered batch
            logger.debug("otel_botmon: unreadable OTLP answer: %s", type(exc).__name__)
        return result

    def _read_partial_success(self, result: BaseHTTPResult) -> None:
        body = result.content()
        if not body:
            return  # the usual answer: an empty message
        if body[:2] == b"\x1f\x8b":  # gzip the transport left encoded
            body = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(body, _MAX_ANSWER)
        answer = _response_type(self.signal)()
        content_type = (result.headers().get("content-type") or "").lower()
        if "json" in content_type:
            from google.protobuf import json_format

            json_format.Parse(body.decode("utf-8"), answer, ignore_unknown_fields=True)
        else:
            answer.ParseFromString(body)
        if not answer.HasField("partial_success"):
            return
        partial = answer.partial_success
        rejected = next(
            (value for descriptor, value in partial.ListFields() if descriptor.number == 1), 0)
        message = partial.error_message
        if rejected <= 0 and not message:
            return  # an empty partial_success means full success
        self._report(max(0, int(rejected)), message)

    def _report(self, rejected: int, message: str) -> None:
        now = time.monotonic()
        with self._lock:
            self.rejected += rejected
            self._unlogged += rejected
            if self._logged_at is not None and now - self._logged_at < _LOG_EVERY_S:
                return
            self._logged_at, count, self._unlogged = now, self._unlogged, 0
            total = self.rejected
        from otel_botmon.redaction import redact_text

        shown = _UNPRINTABLE.sub("?", redact_text(message)[:_MAX_MESSAGE]) or "(no message)"
        logger.warning(
            "otel_botmon: the OTLP endpoint accepted the batch but rejected %d %s (%d in all, "
            "counted in rejected; logged at most once a minute): %s",
            count, _ITEMS[self.signal], total, shown)

    def close(self) -> None:
        self.inner.close()

    def is_connection_error(self, exception: Exception | None) -> bool:
        return self.inner.is_connection_error(exception)


def read_answers(exporter: Any, signal: Signal) -> ReadAnswers | None:
    """Wrap the transport of an SDK OTLP/HTTP exporter's client in :class:`ReadAnswers`
    (None when this SDK keeps no such client)."""
    client = getattr(exporter, "_client", None)
    transport = getattr(client, "_transport", None)
    if not isinstance(transport, BaseHTTPTransport):
        return None
    wrapped = ReadAnswers(transport, signal)
    client._transport = wrapped  # type: ignore[union-attr]
    return wrapped
