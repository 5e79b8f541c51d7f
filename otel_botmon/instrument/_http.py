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
* :func:`endpoint_from_path`: the bounded ``exchange.endpoint`` label for a URL path.
"""

from __future__ import annotations

import os
import re
import threading
from typing import Any, Final

from otel_botmon._internal import report_internal_error
from otel_botmon.exchanges import find_exchange
from otel_botmon.instrument.exchange import UNKNOWN, default_exchange, record_exchange_request
from otel_botmon.instrument.ratelimit import record_ratelimit_headers
from otel_botmon.redaction import redact_text, redacted_changes

SEMCONV_ENV: Final = "OTEL_SEMCONV_STABILITY_OPT_IN"

_MAX_ENDPOINT_CHARS: Final = 128
# Path segments that are identifiers, not endpoints: numbers, UUIDs, long tokens (a
# Slack webhook's or a Telegram bot's secret path part). Keeps metric cardinality bounded
# and secrets out of the endpoint label.
_ID_SEGMENT: Final = re.compile(r"^(?:\d+|(?=[^/]*\d)[A-Za-z0-9_\-:.=~]{16,})$")
# Bots call the same few paths over and over; remember their labels (bounded).
_ENDPOINT_CACHE_SIZE: Final = 1024
_endpoints: dict[str, str] = {}
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


def endpoint_from_path(path: str) -> str:
    """The ``exchange.endpoint`` label for a URL path: identifiers become ``{id}``.

    ``/api/v3/order`` stays; ``/orders/12345`` gives ``/orders/{id}``. Registered
    secrets are scrubbed and the result is at most 128 characters.
    """
    found = _endpoints.get(path)
    if found is None:
        segments = ["{id}" if _ID_SEGMENT.match(s) else s for s in path.split("/")]
        found = redact_text("/".join(segments) or "/")[:_MAX_ENDPOINT_CHARS]
        if len(_endpoints) >= _ENDPOINT_CACHE_SIZE:
            _endpoints.clear()
        _endpoints[path] = found
    return found


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
