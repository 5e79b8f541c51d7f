"""What every HTTP-client instrumentation shares (httpx, requests, aiohttp, ccxt).

* :func:`stable_http_semconv`: the OpenTelemetry contrib instrumentations emit the
  stable HTTP semantic conventions (``http.client.request.duration`` in s,
  ``http.request.method``, ``url.full``, ``server.address``, ``error.type``) unless the
  user set ``OTEL_SEMCONV_STABILITY_OPT_IN`` (``http/dup`` for both, ``default`` for
  the old ones).
* :func:`observe_response`: one response (or failure) into the request metrics (counted
  once, see :func:`otel_botmon.instrument.exchange.record_exchange_request`) and the
  rate-limit gauges.
* :func:`scrub_span`: every span attribute that carries a secret is overwritten with its
  redacted value.
* :func:`endpoint_from_path` (from :mod:`otel_botmon.instrument.exchange`): the bounded
  ``exchange.endpoint`` label for a URL path.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Final

from otel_botmon._internal import report_internal_error
from otel_botmon.exchanges import find_exchange
from otel_botmon.instrument.exchange import (
    UNKNOWN,
    default_exchange,
    endpoint_from_path,
    record_exchange_request,
)
from otel_botmon.instrument.ratelimit import record_ratelimit_headers
from otel_botmon.redaction import redacted_changes

SEMCONV_ENV: Final = "OTEL_SEMCONV_STABILITY_OPT_IN"

_semconv_lock = threading.Lock()


def stable_http_semconv() -> None:
    """Make the contrib HTTP instrumentations use the stable conventions, unless the
    user chose otherwise with ``OTEL_SEMCONV_STABILITY_OPT_IN``. Call before
    instrumenting."""
    with _semconv_lock:
        # The user's choice (``http/dup``, ``default`` ...) stands; unset means stable.
        os.environ.setdefault(SEMCONV_ENV, "http")
        try:
            from opentelemetry.instrumentation._semconv import (
                _OpenTelemetrySemanticConventionStability as Stability,
            )

            # Read once per process: read it again, it may have changed since.
            with Stability._lock:
                Stability._initialized = False
            Stability._initialize()  # type: ignore[no-untyped-call]
        except Exception as exc:  # a contrib version without this private class
            report_internal_error("semconv", exc)


def scrub_span(span: Any, component: str) -> None:
    """Overwrite every span attribute that carries a secret with its redacted value."""
    try:
        if not span.is_recording():
            return
        attributes = getattr(span, "attributes", None)
        if not attributes:
            return
        changed = redacted_changes(attributes)
        if changed:
            span.set_attributes(changed)
    except Exception as exc:
        report_internal_error(component, exc)


def observe_response(
    component: str, exchange: str | None, host: str | None, path: str | None,
    status: object, headers: object, exc: BaseException | None, duration_s: float,
) -> None:
    """Record one request's outcome: request metrics (once) and rate-limit headers."""
    try:
        name = exchange or default_exchange()
        if name == UNKNOWN and host:
            row = find_exchange(host=host)
            name = row.name if row is not None else name
        code = status if isinstance(status, int) and not isinstance(status, bool) else None
        record_exchange_request(name, endpoint_from_path(path or "/"), code, exc, duration_s)
        if headers:
            record_ratelimit_headers(headers, exchange=name, status_code=code, host=host,
                                     path=path)
    except Exception as internal:
        report_internal_error(component, internal)
