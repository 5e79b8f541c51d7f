"""The SDK's OTLP/HTTP span exporter with the request encoded by :mod:`.otlp_spans`.

Everything but the encoding is the SDK's: endpoint, headers, compression, retries, the
size limit and the exporter's own metrics. The request bytes are the same.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.http import trace_exporter as _sdk
from opentelemetry.exporter.otlp.proto.http._common import (
    RequestPayloadTooLargeError,
    _is_request_too_large,
)
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.semconv.attributes.http_attributes import HTTP_RESPONSE_STATUS_CODE

from otel_botmon.exporters.compact_spans import EncodedSpans
from otel_botmon.exporters.otlp_spans import encode_spans

__all__ = ["OTLPSpanExporter", "lean_transport"]


class OTLPSpanExporter(_sdk.OTLPSpanExporter):
    """``opentelemetry.exporter.otlp.proto.http.trace_exporter.OTLPSpanExporter`` encoding
    its batches with :func:`otel_botmon.exporters.otlp_spans.encode_spans`, or sending
    an :class:`~otel_botmon.exporters.compact_spans.EncodedSpans` batch as it is."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._shutdown:
            return super().export(spans)  # the SDK's warning and result
        with self._metrics.export_operation(len(spans)) as result:
            try:
                batch: Any = spans
                data = batch.data if type(batch) is EncodedSpans else encode_spans(spans)
            except Exception as error:  # as the SDK: the batch fails, the thread lives
                _sdk._logger.error("Failed to encode span batch: %s", error)
                result.error = error
                return SpanExportResult.FAILURE
            if _is_request_too_large(data, self._max_request_size):
                _sdk._logger.warning(
                    "Dropping span batch: serialized size %d bytes exceeds max_request_size "
                    "%d bytes.", len(data), self._max_request_size)
                result.error = RequestPayloadTooLargeError(
                    f"Serialized span request size {len(data)} bytes exceeds "
                    f"max_request_size {self._max_request_size} bytes.")
                return SpanExportResult.FAILURE
            sent = self._client.export(data)
            if not sent.success:
                result.error = sent.error
                result.error_attrs = (
                    {HTTP_RESPONSE_STATUS_CODE: sent.status_code}
                    if sent.status_code is not None else None)
                return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS


def lean_transport(url: str) -> Any | None:
    """:class:`~otel_botmon.exporters.lean_http.LeanHTTPTransport` for a plain
    ``http://`` endpoint that the SDK's default requests transport would reach directly,
    else None (keep the default).

    requests spends about three times the Python operations per request (environment
    proxies, netrc and CA bundle looked up again for every export), and even the SDK's
    urllib3 transport makes nine system calls per export: each releases the GIL, a chance
    for the exporting thread to take it back from the bot (see lean_http.py). Over plain
    HTTP with no proxy, no netrc entry and no credential provider, they all send the same
    request. HTTPS, proxies and everything else keep requests.
    """
    if not url.startswith("http://"):
        return None
    if any(name.startswith("OTEL_PYTHON_EXPORTER_OTLP") and "CREDENTIAL_PROVIDER" in name
           for name in os.environ):
        return None
    try:
        from requests.utils import get_environ_proxies, get_netrc_auth

        from otel_botmon.exporters.lean_http import LeanHTTPTransport
    except ImportError:  # pragma: no cover - another SDK layout (no transport interface)
        return None
    if get_environ_proxies(url) or get_netrc_auth(url) is not None:
        return None
    return LeanHTTPTransport()
