"""``instrument_httpx``: exchange HTTP calls traced, measured and scrubbed of secrets.

Builds on opentelemetry-instrumentation-httpx (the HTTP client span, with otel_botmon's
tracer and meter providers) and adds:

* redaction hooks: right after the contrib instrumentation creates a span, and again
  when the response arrives, every span attribute goes through
  :func:`otel_botmon.redaction.redact_attributes` — ``url.full``/``http.url`` lose
  ``signature=``, ``apiKey=`` ..., captured headers such as ``X-MBX-APIKEY`` become
  ``"REDACTED"``. (The contrib itself only strips URL credentials and AWS/Google
  signature parameters.) The attribute values the span was *started* with are
  overwritten before the span ends, so exporters never see them; span processors that
  read attributes in ``on_start`` would.
* a thin wrapper around the transport that records ``botmon.exchange.requests`` and
  ``botmon.exchange.request.duration`` (also for connection errors and timeouts, which
  never reach a response hook; counted once, see ``exchange.RequestOwner``) and the
  exchange's rate-limit headers into the ``botmon.exchange.ratelimit.*`` gauges.

``instrument_httpx()`` instruments every ``httpx.Client``/``AsyncClient`` (through their
default transports); ``instrument_httpx(client)`` one client, whatever its transport (a
no-op while every client is instrumented, so no request is traced twice).
Calling it again is a no-op (it only updates the exchange name), except after
``configure()`` built new providers, when it re-instruments onto them.
``uninstrument_httpx()`` restores everything.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Iterable
from typing import Any, Final

import httpx
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.utils import unwrap
from wrapt import wrap_function_wrapper

from otel_botmon._internal import report_internal_error
from otel_botmon._state import METER_PROVIDER, TRACER_PROVIDER
from otel_botmon.instrument._http import (
    observe_response,
    remember_key_headers,
    scrub_span,
    stable_http_semconv,
)
from otel_botmon.instrument._values import warn_once
from otel_botmon.instrument.exchange import endpoint_from_path

__all__ = ["endpoint_from_path", "instrument_httpx", "uninstrument_httpx"]

_COMPONENT = "httpx"
_MARKER: Final = "_otel_botmon_httpx"
_lock = threading.RLock()
# Bots call the same few paths over and over; remember their labels (bounded).

class _Settings:
    """What one instrumentation (all clients, or one client) records requests as."""

    __slots__ = ("exchange", "hosts")

    def __init__(self, exchange: str | None, hosts: frozenset[str] | None) -> None:
        self.exchange = exchange
        self.hosts = hosts


_global: _Settings | None = None
_clients: weakref.WeakSet[httpx.Client | httpx.AsyncClient] = weakref.WeakSet()


def _scrub_span(span: Any) -> None:
    scrub_span(span, _COMPONENT)


def _request_hook(span: Any, request: Any) -> None:
    _scrub_span(span)


def _response_hook(span: Any, request: Any, response: Any) -> None:
    _scrub_span(span)


async def _async_request_hook(span: Any, request: Any) -> None:
    _scrub_span(span)


async def _async_response_hook(span: Any, request: Any, response: Any) -> None:
    _scrub_span(span)


# --- metrics wrapper around the transport -------------------------------------------------


def _observe(
    settings: _Settings, request: object, response: object, exc: BaseException | None,
    duration_s: float,
) -> None:
    remember_key_headers(getattr(request, "headers", None), _COMPONENT)
    url = getattr(request, "url", None)
    host = getattr(url, "host", None)
    if settings.hosts is not None and host not in settings.hosts:
        return
    observe_response(
        _COMPONENT, settings.exchange, host, str(getattr(url, "path", "") or "/"),
        getattr(response, "status_code", None) if response is not None else None,
        getattr(response, "headers", None) if response is not None else None,
        exc, duration_s, str(getattr(request, "method", "") or "GET"),
    )


def _sync_wrapper(settings: _Settings) -> Callable[..., Any]:
    def handle_request(
        wrapped: Callable[..., Any], instance: object, args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        request = args[0] if args else kwargs.get("request")
        start = time.perf_counter()
        try:
            response = wrapped(*args, **kwargs)
        except Exception as exc:
            _observe(settings, request, None, exc, time.perf_counter() - start)
            raise
        _observe(settings, request, response, None, time.perf_counter() - start)
        return response

    return handle_request


def _async_wrapper(settings: _Settings) -> Callable[..., Any]:
    async def handle_async_request(
        wrapped: Callable[..., Any], instance: object, args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        request = args[0] if args else kwargs.get("request")
        start = time.perf_counter()
        try:
            response = await wrapped(*args, **kwargs)
        except Exception as exc:
            _observe(settings, request, None, exc, time.perf_counter() - start)
            raise
        _observe(settings, request, response, None, time.perf_counter() - start)
        return response

    return handle_async_request


# --- public API ----------------------------------------------------------------------------


def _providers() -> dict[str, Any]:
    # Proxies: the contrib's tracer and instruments follow configure() and shutdown().
    return {"tracer_provider": TRACER_PROVIDER, "meter_provider": METER_PROVIDER}


def _check_args(client: object, exchange: object, hosts: object) -> frozenset[str] | None:
    if client is not None and not isinstance(client, (httpx.Client, httpx.AsyncClient)):
        raise TypeError(
            "instrument_httpx: client must be an httpx.Client or httpx.AsyncClient, "
            f"got {type(client).__name__}"
        )
    if exchange is not None and (not isinstance(exchange, str) or not exchange.strip()):
        raise TypeError(f"instrument_httpx: exchange must be a non-empty string, got "
                        f"{exchange!r:.60}")
    if hosts is None:
        return None
    if isinstance(hosts, str) or not isinstance(hosts, Iterable):
        raise TypeError("instrument_httpx: hosts must be a list of host names, e.g. "
                        "['api.binance.com']")
    return frozenset(str(h).lower() for h in hosts)


def instrument_httpx(
    client: httpx.Client | httpx.AsyncClient | None = None,
    exchange: str | None = None,
    *,
    hosts: Iterable[str] | None = None,
) -> None:
    """Trace, measure and redact httpx requests to an exchange.

    ``client=None`` instruments every ``httpx.Client`` and ``httpx.AsyncClient`` that uses
    httpx's default transport; pass a client to instrument only that one (any transport,
    sync or async). ``exchange`` names the exchange on the metrics (default:
    ``configure(exchange=...)``, else ``"unknown"``). ``hosts`` limits the exchange
    metrics to requests to these host names (spans and redaction still apply to all),
    useful when the same process also posts to webhooks with httpx.

    Call it after ``configure()``. Raises TypeError for a non-httpx client or a bad
    ``exchange``/``hosts``; never raises for anything that happens during requests.
    """
    host_set = _check_args(client, exchange, hosts)
    stable_http_semconv()
    with _lock:
        if client is None:
            _instrument_all(exchange, host_set)
        else:
            _instrument_one(client, exchange, host_set)


def _instrument_all(exchange: str | None, hosts: frozenset[str] | None) -> None:
    global _global
    current = _global
    if current is not None:  # instrumented already (its providers follow configure())
        current.exchange, current.hosts = exchange, hosts
        return
    instrumentor = HTTPXClientInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry:
        # Someone else instrumented httpx without our hooks; doing it again would be a
        # no-op, and unwrapping theirs is not ours to do.
        report_internal_error(_COMPONENT, RuntimeError(
            "httpx is already instrumented by OpenTelemetry without otel_botmon's "
            "redaction hooks; call HTTPXClientInstrumentor().uninstrument() first"))
        return
    instrumentor.instrument(
        request_hook=_request_hook,
        response_hook=_response_hook,
        async_request_hook=_async_request_hook,
        async_response_hook=_async_response_hook,
        **_providers(),
    )
    settings = _Settings(exchange, hosts)
    # Ours wraps the contrib's wrapper, so uninstrument must unwrap ours first.
    wrap_function_wrapper("httpx", "HTTPTransport.handle_request", _sync_wrapper(settings))
    wrap_function_wrapper(
        "httpx", "AsyncHTTPTransport.handle_async_request", _async_wrapper(settings)
    )
    _global = settings


def _transports(client: httpx.Client | httpx.AsyncClient) -> list[Any]:
    # httpx keeps the default transport and the mounted ones privately; the contrib
    # instrumentation relies on the same attributes.
    transports = [client._transport]
    transports.extend(t for t in client._mounts.values() if t is not None)
    return transports


def _instrument_one(
    client: httpx.Client | httpx.AsyncClient, exchange: str | None,
    hosts: frozenset[str] | None,
) -> None:
    if _global is not None:
        # The default transports are wrapped already; wrapping the client too would
        # trace and count each request twice.
        warn_once("instrument_httpx", "all-and-one",
                  "otel_botmon: instrument_httpx(client) ignored: every httpx client is "
                  "already instrumented by instrument_httpx()")
        return
    current: _Settings | None = getattr(client, _MARKER, None)
    if current is not None:  # instrumented already (its providers follow configure())
        current.exchange, current.hosts = exchange, hosts
        return
    is_async = isinstance(client, httpx.AsyncClient)
    HTTPXClientInstrumentor.instrument_client(
        client,
        request_hook=_async_request_hook if is_async else _request_hook,
        response_hook=_async_response_hook if is_async else _response_hook,
        **_providers(),
    )
    settings = _Settings(exchange, hosts)
    method = "handle_async_request" if is_async else "handle_request"
    wrapper = _async_wrapper(settings) if is_async else _sync_wrapper(settings)
    for transport in _transports(client):
        if hasattr(transport, method):
            wrap_function_wrapper(transport, method, wrapper)
    setattr(client, _MARKER, settings)
    _clients.add(client)


def uninstrument_httpx(client: httpx.Client | httpx.AsyncClient | None = None) -> None:
    """Undo :func:`instrument_httpx`: for one client, or (``None``) for all clients and
    every client instrumented individually. Safe to call when nothing is instrumented."""
    with _lock:
        if client is not None:
            _uninstrument_one(client)
            return
        for one in list(_clients):
            _uninstrument_one(one)
        _uninstrument_all()


def _uninstrument_all() -> None:
    global _global
    if _global is None:
        return
    unwrap(httpx.HTTPTransport, "handle_request")
    unwrap(httpx.AsyncHTTPTransport, "handle_async_request")
    HTTPXClientInstrumentor().uninstrument()
    _global = None


def _uninstrument_one(client: httpx.Client | httpx.AsyncClient) -> None:
    if getattr(client, _MARKER, None) is None:
        return
    method = "handle_async_request" if isinstance(client, httpx.AsyncClient) \
        else "handle_request"
    for transport in _transports(client):
        unwrap(transport, method)
    HTTPXClientInstrumentor.uninstrument_client(client)
    setattr(client, _MARKER, None)
    _clients.discard(client)


def is_instrumented(client: httpx.Client | httpx.AsyncClient | None = None) -> bool:
    """Whether :func:`instrument_httpx` is in effect for all clients (``None``) or for
    this client."""
    if client is None:
        return _global is not None
    return getattr(client, _MARKER, None) is not None
