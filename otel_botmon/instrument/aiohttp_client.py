"""``instrument_aiohttp``: aiohttp-based exchange clients traced, measured and redacted.

Covers ``ccxt.async_support``, python-binance's ``AsyncClient`` and anything else on
``aiohttp.ClientSession``. Built on aiohttp's own request-tracing hooks
(``aiohttp.TraceConfig``: ``on_request_start``, ``on_request_end``,
``on_request_exception``). opentelemetry-instrumentation-aiohttp-client is not used: its
releases pin an older OpenTelemetry SDK than otel_botmon needs, so this module emits
what it would, in the stable HTTP conventions:

* a CLIENT span ``{METHOD}`` (a child of the current trade or exchange call) with
  ``http.request.method``, ``url.full`` (redacted), ``server.address``,
  ``server.port``, ``http.response.status_code`` and ``error.type``;
* ``http.client.request.duration`` (s) with the same low-cardinality attributes;
* ``botmon.exchange.requests`` / ``botmon.exchange.request.duration``, counted once, and
  the rate-limit gauges from the response headers.

``instrument_aiohttp()`` instruments every ``ClientSession`` created afterwards;
``instrument_aiohttp(session)`` one existing session.
"""

from __future__ import annotations

import threading
import time
import types
import weakref
from collections.abc import Iterable
from typing import Any, Final

from opentelemetry.trace import SpanKind, Status, StatusCode

from otel_botmon import telemetry
from otel_botmon._internal import report_internal_error
from otel_botmon.instrument._http import (
    observe_response,
    remember_key_headers,
    stable_http_semconv,
)
from otel_botmon.instrument._values import warn_once
from otel_botmon.redaction import redact_url

__all__ = ["instrument_aiohttp", "is_aiohttp_instrumented", "uninstrument_aiohttp"]

_COMPONENT: Final = "aiohttp"
_MARKER: Final = "_otel_botmon_aiohttp"
HTTP_CLIENT_DURATION: Final = "http.client.request.duration"
# OpenTelemetry's recommended boundaries for http.client.request.duration.
_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0,
                   7.5, 10.0)

_lock = threading.RLock()


class _Settings:
    __slots__ = ("exchange", "hosts")

    def __init__(self, exchange: str | None, hosts: frozenset[str] | None) -> None:
        self.exchange = exchange
        self.hosts = hosts

    def histogram(self) -> Any:
        return _DURATION


# A proxy: it follows configure() and shutdown() (otel_botmon._state).
_DURATION = telemetry.proxy_instrument(
    HTTP_CLIENT_DURATION,
    lambda meter: meter.create_histogram(
        HTTP_CLIENT_DURATION, unit="s", description="Duration of HTTP client requests.",
        explicit_bucket_boundaries_advisory=list(_BUCKETS)))


_global: _Settings | None = None
# Session -> its settings (aiohttp warns on custom attributes of a ClientSession).
_sessions: weakref.WeakKeyDictionary[Any, _Settings] = weakref.WeakKeyDictionary()


def _trace_config(settings: _Settings) -> Any:
    import aiohttp

    async def on_start(session: Any, ctx: types.SimpleNamespace, params: Any) -> None:
        ctx.otel_botmon = None
        remember_key_headers(getattr(params, "headers", None), _COMPONENT)
        try:
            url = params.url
            method = str(params.method).upper()
            attrs: dict[str, Any] = {"http.request.method": method,
                                     "url.full": redact_url(str(url))}
            if url.host:
                attrs["server.address"] = url.host
            if url.port:
                attrs["server.port"] = url.port
            span = telemetry.tracer().start_span(method, kind=SpanKind.CLIENT,
                                                     attributes=attrs)
            ctx.otel_botmon = (span, attrs, time.perf_counter())
        except Exception as exc:
            report_internal_error(_COMPONENT, exc)

    async def on_end(session: Any, ctx: types.SimpleNamespace, params: Any) -> None:
        _finish(settings, ctx, params.url, params.response, None, params.method)

    async def on_exception(session: Any, ctx: types.SimpleNamespace, params: Any) -> None:
        _finish(settings, ctx, params.url, None, params.exception, params.method)

    config = aiohttp.TraceConfig()
    config.on_request_start.append(on_start)
    config.on_request_end.append(on_end)
    config.on_request_exception.append(on_exception)
    config.freeze()
    setattr(config, _MARKER, True)
    return config


def _finish(settings: _Settings, ctx: types.SimpleNamespace, url: Any, response: Any,
            exc: BaseException | None, method: object = None) -> None:
    started = getattr(ctx, "otel_botmon", None)
    if started is None:
        return
    ctx.otel_botmon = None
    span, attrs, start = started
    duration = time.perf_counter() - start
    try:
        status = getattr(response, "status", None) if response is not None else None
        error = type(exc).__qualname__ if exc is not None else (
            str(status) if isinstance(status, int) and status >= 400 else None)
        metric_attrs = {k: v for k, v in attrs.items() if k != "url.full"}
        if isinstance(status, int):
            span.set_attribute("http.response.status_code", status)
            metric_attrs["http.response.status_code"] = status
        if error is not None:
            span.set_attribute("error.type", error)
            metric_attrs["error.type"] = error
            span.set_status(Status(StatusCode.ERROR))
        span.end()
        settings.histogram().record(duration, metric_attrs)
        host = url.host
        if settings.hosts is None or host in settings.hosts:
            observe_response(_COMPONENT, settings.exchange, host, url.path or "/", status,
                             getattr(response, "headers", None), exc, duration,
                             str(method or "GET"))
    except Exception as internal:
        report_internal_error(_COMPONENT, internal)


def _init_wrapper(settings: _Settings) -> Any:
    def init(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        configs = list(kwargs.get("trace_configs") or [])
        configs.append(_trace_config(settings))
        kwargs["trace_configs"] = configs
        return wrapped(*args, **kwargs)

    return init


def _check(session: object, exchange: object, hosts: object) -> frozenset[str] | None:
    import aiohttp

    if session is not None and not isinstance(session, aiohttp.ClientSession):
        raise TypeError("instrument_aiohttp: session must be an aiohttp.ClientSession, got "
                        f"{type(session).__name__}")
    if exchange is not None and (not isinstance(exchange, str) or not exchange.strip()):
        raise TypeError(f"instrument_aiohttp: exchange must be a non-empty string, got "
                        f"{exchange!r:.60}")
    if hosts is None:
        return None
    if isinstance(hosts, str) or not isinstance(hosts, Iterable):
        raise TypeError("instrument_aiohttp: hosts must be a list of host names")
    return frozenset(str(h).lower() for h in hosts)


def instrument_aiohttp(
    session: Any = None, exchange: str | None = None, *, hosts: Iterable[str] | None = None,
) -> None:
    """Trace, measure and redact requests made with ``aiohttp.ClientSession``.

    ``session=None`` instruments every session created afterwards; a session instruments
    that one. ``exchange`` and ``hosts`` as for :func:`instrument_requests`. Calling it
    again updates them. Raises TypeError for a non-session or a bad ``exchange``/``hosts``;
    never raises for anything that happens during requests.
    """
    host_set = _check(session, exchange, hosts)
    stable_http_semconv()
    global _global
    with _lock:
        if session is None:
            if _global is not None:
                _global.exchange, _global.hosts = exchange, host_set
                return
            import aiohttp
            from wrapt import wrap_function_wrapper

            settings = _Settings(exchange, host_set)
            wrap_function_wrapper(aiohttp.ClientSession, "__init__", _init_wrapper(settings))
            _global = settings
            return
        current = _sessions.get(session)
        if current is not None:
            current.exchange, current.hosts = exchange, host_set
            return
        if any(getattr(c, _MARKER, False) for c in session._trace_configs):
            warn_once("instrument_aiohttp", "twice",
                      "otel_botmon: instrument_aiohttp(session) ignored: the session was "
                      "created while every session was instrumented")
            return
        settings = _Settings(exchange, host_set)
        # aiohttp keeps a session's trace configs in a private list; sessions made
        # before instrumenting have no other way in.
        session._trace_configs.append(_trace_config(settings))
        _sessions[session] = settings


def uninstrument_aiohttp(session: Any = None) -> None:
    """Undo :func:`instrument_aiohttp` for one session, or (``None``) for new sessions and
    every session instrumented one by one."""
    global _global
    with _lock:
        targets = [session] if session is not None else list(_sessions)
        for one in targets:
            if _sessions.pop(one, None) is None:
                continue
            one._trace_configs[:] = [c for c in one._trace_configs
                                     if not getattr(c, _MARKER, False)]
        if session is None and _global is not None:
            import aiohttp
            from opentelemetry.instrumentation.utils import unwrap

            unwrap(aiohttp.ClientSession, "__init__")
            _global = None


def is_aiohttp_instrumented(session: Any = None) -> bool:
    """Whether new sessions (``None``) or this session are instrumented."""
    if session is None:
        return _global is not None
    return any(getattr(c, _MARKER, False) for c in getattr(session, "_trace_configs", ()))
