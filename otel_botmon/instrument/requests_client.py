"""``instrument_requests``: requests-based exchange clients traced, measured and redacted.

Covers python-binance (sync), binance-connector, pybit, alpaca-py, hyperliquid-python-sdk
and ccxt's sync exchanges. ``instrument_requests()`` builds on
opentelemetry-instrumentation-requests (its HTTP client span, with otel_botmon's tracer
and meter providers and the stable HTTP conventions) and adds, like ``instrument_httpx``:

* redaction hooks: every span attribute is scrubbed when the span starts and when the
  response arrives (``url.full`` loses ``signature=``, captured key headers become
  ``REDACTED``);
* a thin wrapper around ``Session.send`` that records ``botmon.exchange.requests`` and
  ``botmon.exchange.request.duration`` (counted once: inside an ``exchange_call`` or an
  instrumented ccxt request, that layer counts it) and the rate-limit gauges.

``instrument_requests(session)`` instruments one ``requests.Session`` instead (the contrib
has no per-session switch, so that session's client span is otel_botmon's own, with the
same stable attributes).
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Iterable
from typing import Any, Final
from urllib.parse import urlsplit

from opentelemetry.trace import SpanKind, Status, StatusCode

from otel_botmon import telemetry
from otel_botmon._internal import report_internal_error
from otel_botmon._state import METER_PROVIDER, TRACER_PROVIDER
from otel_botmon.instrument._http import (
    observe_response,
    remember_key_headers,
    scrub_span,
    stable_http_semconv,
)
from otel_botmon.instrument._values import warn_once
from otel_botmon.redaction import redact_url

__all__ = ["instrument_requests", "is_requests_instrumented", "uninstrument_requests"]

_COMPONENT: Final = "requests"
_MARKER: Final = "_otel_botmon_requests"

_lock = threading.RLock()


class _Settings:
    __slots__ = ("exchange", "hosts")

    def __init__(self, exchange: str | None, hosts: frozenset[str] | None) -> None:
        self.exchange = exchange
        self.hosts = hosts


_global: _Settings | None = None
_contrib_ours = False
_sessions: weakref.WeakSet[Any] = weakref.WeakSet()


def _request_hook(span: Any, request: Any) -> None:
    scrub_span(span, _COMPONENT)


def _response_hook(span: Any, request: Any, response: Any) -> None:
    scrub_span(span, _COMPONENT)


def _observe(settings: _Settings, request: Any, response: Any, exc: BaseException | None,
             duration_s: float) -> None:
    try:
        remember_key_headers(getattr(request, "headers", None), _COMPONENT)
        parts = urlsplit(str(getattr(request, "url", "") or ""))
        host = parts.hostname
        if settings.hosts is not None and host not in settings.hosts:
            return
        observe_response(
            _COMPONENT, settings.exchange, host, parts.path or "/",
            getattr(response, "status_code", None), getattr(response, "headers", None),
            exc, duration_s, str(getattr(request, "method", "") or "GET"))
    except Exception as internal:
        report_internal_error(_COMPONENT, internal)


def _send_wrapper(settings: _Settings) -> Callable[..., Any]:
    def send(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
             kwargs: dict[str, Any]) -> Any:
        request = args[0] if args else kwargs.get("request")
        start = time.perf_counter()
        try:
            response = wrapped(*args, **kwargs)
        except Exception as exc:
            _observe(settings, request, None, exc, time.perf_counter() - start)
            raise
        _observe(settings, request, response, None, time.perf_counter() - start)
        return response

    return send


def _session_send(settings: _Settings, original: Callable[..., Any]) -> Callable[..., Any]:
    """One session's ``send``: a stable-conventions client span plus the metrics."""

    def send(request: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        span: Any = None
        try:
            parts = urlsplit(str(request.url))
            method = str(request.method or "GET").upper()
            attributes: dict[str, Any] = {"http.request.method": method,
                                          "url.full": redact_url(str(request.url))}
            if parts.hostname:
                attributes["server.address"] = parts.hostname
            if parts.port:
                attributes["server.port"] = parts.port
            span = telemetry.tracer().start_span(method, kind=SpanKind.CLIENT,
                                                     attributes=attributes)
        except Exception as internal:
            report_internal_error(_COMPONENT, internal)
        try:
            response = original(request, **kwargs)
        except Exception as exc:
            _end_span(span, None, exc)
            _observe(settings, request, None, exc, time.perf_counter() - start)
            raise
        _end_span(span, response, None)
        _observe(settings, request, response, None, time.perf_counter() - start)
        return response

    return send


def _end_span(span: Any, response: Any, exc: BaseException | None) -> None:
    if span is None:
        return
    try:
        status = getattr(response, "status_code", None)
        if isinstance(status, int):
            span.set_attribute("http.response.status_code", status)
        error = type(exc).__qualname__ if exc is not None else (
            str(status) if isinstance(status, int) and status >= 400 else None)
        if error is not None:
            span.set_attribute("error.type", error)
            span.set_status(Status(StatusCode.ERROR))
        span.end()
    except Exception as internal:
        report_internal_error(_COMPONENT, internal)


def _check(session: object, exchange: object, hosts: object) -> frozenset[str] | None:
    import requests

    if session is not None and not isinstance(session, requests.Session):
        raise TypeError("instrument_requests: session must be a requests.Session, got "
                        f"{type(session).__name__}")
    if exchange is not None and (not isinstance(exchange, str) or not exchange.strip()):
        raise TypeError(f"instrument_requests: exchange must be a non-empty string, got "
                        f"{exchange!r:.60}")
    if hosts is None:
        return None
    if isinstance(hosts, str) or not isinstance(hosts, Iterable):
        raise TypeError("instrument_requests: hosts must be a list of host names")
    return frozenset(str(h).lower() for h in hosts)


def instrument_requests(
    session: Any = None, exchange: str | None = None, *, hosts: Iterable[str] | None = None,
) -> None:
    """Trace, measure and redact requests made with the ``requests`` library.

    ``session=None`` instruments every ``requests.Session`` (and ``requests.get`` ...);
    a session instruments only that one. ``exchange`` names the exchange on the metrics
    (default: ``configure(exchange=...)``, else the exchange whose API host the request
    went to); ``hosts`` limits the exchange metrics to these host names. Calling it again
    updates ``exchange``/``hosts``. Raises TypeError for a non-Session or a bad
    ``exchange``/``hosts``; never raises for anything that happens during requests.
    """
    host_set = _check(session, exchange, hosts)
    stable_http_semconv()
    with _lock:
        if session is None:
            _instrument_all(_Settings(exchange, host_set))
        else:
            _instrument_one(session, _Settings(exchange, host_set))


def _instrument_all(settings: _Settings) -> None:
    global _global, _contrib_ours
    if _global is not None:  # instrumented already (its providers follow configure())
        _global.exchange, _global.hosts = settings.exchange, settings.hosts
        return
    import requests
    from opentelemetry.instrumentation.requests import RequestsInstrumentor
    from wrapt import wrap_function_wrapper

    instrumentor = RequestsInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry:
        warn_once("instrument_requests", "contrib",
                  "otel_botmon: requests was already instrumented by OpenTelemetry without "
                  "otel_botmon's redaction hooks; only the exchange metrics are added")
    else:
        # Proxies: the contrib's tracer and instruments follow configure() and shutdown().
        providers = {"tracer_provider": TRACER_PROVIDER, "meter_provider": METER_PROVIDER}
        instrumentor.instrument(request_hook=_request_hook, response_hook=_response_hook,
                                **providers)
        _contrib_ours = True
    wrap_function_wrapper(requests.Session, "send", _send_wrapper(settings))
    _global = settings


def _instrument_one(session: Any, settings: _Settings) -> None:
    if _global is not None:
        warn_once("instrument_requests", "all-and-one",
                  "otel_botmon: instrument_requests(session) ignored: every session is "
                  "already instrumented by instrument_requests()")
        return
    current: _Settings | None = session.__dict__.get(_MARKER)
    if current is not None:
        current.exchange, current.hosts = settings.exchange, settings.hosts
        return
    session.send = _session_send(settings, session.send)
    session.__dict__[_MARKER] = settings
    _sessions.add(session)


def uninstrument_requests(session: Any = None) -> None:
    """Undo :func:`instrument_requests` for one session, or (``None``) for everything."""
    global _global, _contrib_ours
    with _lock:
        if session is not None:
            _uninstrument_one(session)
            return
        for one in list(_sessions):
            _uninstrument_one(one)
        if _global is None:
            return
        import requests
        from opentelemetry.instrumentation.requests import RequestsInstrumentor
        from opentelemetry.instrumentation.utils import unwrap

        unwrap(requests.Session, "send")
        if _contrib_ours:
            RequestsInstrumentor().uninstrument()
            _contrib_ours = False
        _global = None


def _uninstrument_one(session: Any) -> None:
    values = getattr(session, "__dict__", {})
    if values.pop(_MARKER, None) is None:
        return
    values.pop("send", None)
    _sessions.discard(session)


def is_requests_instrumented(session: Any = None) -> bool:
    """Whether every session (``None``) or this session is instrumented."""
    if session is None:
        return _global is not None
    return _global is not None or _MARKER in getattr(session, "__dict__", {})
