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
* :func:`remember_key_headers`: the API key and passphrase a request carries in an
  exchange's key header are registered as secrets, so an error that echoes them (the
  bot's own exception text, in a trade span) is scrubbed as ``instrument_ccxt``'s keys
  are.
* :func:`endpoint_from_path` (from :mod:`otel_botmon.instrument.exchange`): the bounded
  ``exchange.endpoint`` label for a URL path.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Final

from otel_botmon._internal import report_internal_error
from otel_botmon.exchanges import all_exact_secret_names, all_secret_names
from otel_botmon.instrument.exchange import (
    UNKNOWN,
    default_exchange,
    endpoint_from_path,
    record_exchange_request,
    request_owner,
)
from otel_botmon.instrument.ratelimit import exchange_label, record_response_headers
from otel_botmon.redaction import is_registered_secret, redacted_changes, register_secret

SEMCONV_ENV: Final = "OTEL_SEMCONV_STABILITY_OPT_IN"

# Header names that carry an exchange's API key or passphrase: the same on every request,
# unlike a signature or a timestamp, so worth registering once.
_KEY_HEADERS: Final = frozenset(
    name.lower() for name in (*all_secret_names(), *all_exact_secret_names())
    if any(word in name.lower() for word in ("key", "passphrase", "secret")))
# A bot uses a few keys; a header that changes on every request is not one of them.
_MAX_REMEMBERED: Final = 64
_remembered: set[str] = set()

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


def remember_key_headers(headers: object, component: str) -> None:
    """Register the values of the exchange key and passphrase headers in ``headers`` (a
    request's) as secrets: an exchange error that echoes the key, which python-binance,
    pybit and the like put in the exception the bot sees, is then scrubbed from spans and
    logs. At most 64 values per process; never raises."""
    try:
        items = getattr(headers, "items", None)
        if not callable(items):
            return
        for name, value in items():
            if isinstance(name, bytes):
                name = name.decode("latin-1")
            if not isinstance(name, str) or name.lower() not in _KEY_HEADERS:
                continue
            if isinstance(value, bytes):
                value = value.decode("latin-1")
            if not isinstance(value, str) or not 8 <= len(value) <= 512:
                continue
            if value in _remembered:
                if is_registered_secret(value):
                    continue
            elif len(_remembered) >= _MAX_REMEMBERED:
                continue
            _remembered.add(value)
            register_secret(value)
    except Exception as exc:
        report_internal_error(component, exc)


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
    method: str | None = None,
) -> str:
    """Record one request's outcome: request metrics (once) and rate-limit headers, all
    under one ``exchange.name``, which is returned (for the caller's span).

    The name is decided once per response (:func:`~otel_botmon.instrument.ratelimit.
    exchange_label`): the one the counting layer (an ``exchange_call``, a ccxt
    exchange) was given, else ``exchange``, else ``configure(exchange=...)``; with none,
    the exchange whose host or rate-limit headers the response has. ``method`` (the
    request's HTTP method) picks the rate-limit budget where an exchange's differ by
    method on one path (Gate.io)."""
    name = exchange or UNKNOWN
    try:
        owner = request_owner()
        if owner is not None and owner.exchange:
            name = owner.exchange
        elif not exchange:
            name = default_exchange()
        code = status if isinstance(status, int) and not isinstance(status, bool) else None
        if headers:
            name, _readings = record_response_headers(
                headers, exchange=name, status_code=code, host=host, path=path,
                method=method)
        else:
            name = exchange_label(name, host)
        record_exchange_request(name, endpoint_from_path(path or "/"), code, exc, duration_s)
    except Exception as internal:
        report_internal_error(component, internal)
    return name
