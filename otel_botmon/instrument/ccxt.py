"""``instrument_ccxt``: every HTTP request of a ccxt exchange traced, measured and redacted.

Built on ccxt's own extension points, for sync ``ccxt`` and ``ccxt.async_support`` alike:
``Exchange.fetch(url, method, headers, body)`` is the one method through which every REST
request goes (``fetch2`` signs and throttles, then calls it), and
``Exchange.on_rest_response(code, reason, url, method, headers, body, ...)`` is the hook
ccxt calls with each raw response before it maps errors. The instance's ``fetch`` and
``on_rest_response`` are replaced by thin wrappers (instance attributes, nothing of ccxt
patched); ``instrument_ccxt()`` without an instance does this for every exchange created
afterwards, by wrapping the base class's ``__init__``.

Per request:

* a CLIENT span ``exchange {endpoint}`` (a child of the current ``trade`` or
  ``exchange_call``) with ``exchange.name`` (the ccxt id), ``exchange.endpoint`` (the URL
  path, identifiers folded), ``http.request.method``, ``url.full`` (redacted),
  ``server.address``/``server.port``, ``http.response.status_code`` and ``error.type``;
* ``botmon.exchange.requests`` and ``botmon.exchange.request.duration``, counted once
  (inside an ``exchange_call`` that call counts it and gets the status);
* the rate-limit gauges from the response headers (:mod:`otel_botmon.exchanges`).

The status is the response's (from ``on_rest_response``), else the one the exception
chain carries. ccxt's errors keep their class as ``error.type`` (``DDoSProtection`` with
418, ``RateLimitExceeded`` with 429, ``RequestTimeout``, ``NetworkError`` ...), and an
``InsufficientFunds``, ``InvalidOrder`` (``OrderNotFound`` ...) or ``BadSymbol`` raised
inside a ``trade`` makes that trade ``trading.outcome=rejected`` with the (redacted)
message as reason. The exchange's ``apiKey``, ``secret``, ``password``, ``uid``,
``privateKey`` and ``walletAddress`` are registered as secrets (again before each
request when they changed), so they are scrubbed from every exported text. What a
request sends under a sensitive header name (its signature, a passphrase's HMAC, a
bearer token) is scrubbed by value, in any layout, from ccxt's log records written
during the request and from the exception it raises (:mod:`otel_botmon._sent`): an
error page echoing the request keeps none of it. Otherwise the bot's exceptions pass
through unchanged; nothing here raises into the bot.
"""

from __future__ import annotations

import inspect
import threading
import time
import weakref
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, Final
from urllib.parse import urlsplit

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from otel_botmon import conventions as conv
from otel_botmon._internal import report_internal_error
from otel_botmon._sent import SENT, scrub_exception, sent_credentials
from otel_botmon.exchanges import find_exchange
from otel_botmon.instrument._badinput import report_bad_input
from otel_botmon.instrument._http import observe_response
from otel_botmon.instrument.exchange import (
    RequestOwner,
    _instruments,
    _status_of_exception,
    claim_request,
    endpoint_from_path,
    release_request,
    request_owner,
)
from otel_botmon.instrument.trading import current_trade
from otel_botmon.redaction import redact_text, redact_url, register_secret

__all__ = ["instrument_ccxt", "is_ccxt_instrumented", "uninstrument_ccxt"]

_COMPONENT: Final = "ccxt"
_MARKER: Final = "_otel_botmon_ccxt"
# ccxt's credentials (Exchange.requiredCredentials) that are secret or identify the
# account; accountId and login are names a dashboard may show.
_SECRET_FIELDS: Final = ("apiKey", "secret", "password", "uid", "privateKey",
                         "walletAddress", "token", "twofa")
# ccxt errors that mean "the exchange said no to this order", not "something broke".
_REJECTIONS: Final = ("InsufficientFunds", "InvalidOrder", "BadSymbol")

_lock = threading.RLock()
_instances: weakref.WeakSet[Any] = weakref.WeakSet()
_all_new = False


class _Request(RequestOwner):
    """What one ccxt request saw: ccxt's response hook fills status and headers."""

    __slots__ = ("headers", "status")

    def __init__(self, exchange: str) -> None:
        super().__init__(exchange)
        self.status: int | None = None
        self.headers: object = None


_CURRENT: ContextVar[_Request | None] = ContextVar("otel_botmon_ccxt_request", default=None)


def _ccxt_base() -> type | None:
    try:
        from ccxt.base.exchange import BaseExchange
    except ImportError:
        return None
    base: type = BaseExchange
    return base


def _bad_input(message: str, key: str) -> None:
    report_bad_input(_COMPONENT, "instrument_ccxt", key, f"otel_botmon: {message}")


def instrument_ccxt(exchange: object = None) -> None:
    """Trace, measure and redact every HTTP request of a ccxt exchange.

    ``exchange``: a ``ccxt`` or ``ccxt.async_support`` exchange instance; ``None``
    instruments every exchange created afterwards. Calling it twice is harmless. A
    non-ccxt object (or ccxt not installed) is logged once and counted in
    ``botmon.internal.errors``; this never raises.
    """
    global _all_new
    try:
        base = _ccxt_base()
        if base is None:
            _bad_input("instrument_ccxt: ccxt is not installed", "no-ccxt")
            return
        if exchange is None:
            with _lock:
                if not _all_new:
                    from wrapt import wrap_function_wrapper

                    wrap_function_wrapper(base, "__init__", _init_wrapper)
                    _all_new = True
            return
        if not isinstance(exchange, base):
            _bad_input(f"instrument_ccxt: {type(exchange).__name__} is not a ccxt exchange "
                       "(ccxt.binance(), ccxt.async_support.okx() ...); ignored",
                       f"type:{type(exchange).__name__}")
            return
        _instrument_instance(exchange)
    except Exception as exc:
        report_internal_error(_COMPONENT, exc)


def uninstrument_ccxt(exchange: object = None) -> None:
    """Undo :func:`instrument_ccxt` for one exchange, or (``None``) for all of them and
    for exchanges created from now on. Never raises."""
    global _all_new
    try:
        with _lock:
            if exchange is not None:
                _uninstrument_instance(exchange)
                return
            for one in list(_instances):
                _uninstrument_instance(one)
            base = _ccxt_base()
            if _all_new and base is not None:
                from opentelemetry.instrumentation.utils import unwrap

                unwrap(base, "__init__")
            _all_new = False
    except Exception as exc:
        report_internal_error(_COMPONENT, exc)


def is_ccxt_instrumented(exchange: object = None) -> bool:
    """Whether new exchanges (``None``) or this exchange are instrumented."""
    if exchange is None:
        return _all_new
    return getattr(exchange, "__dict__", {}).get(_MARKER) is not None


def _init_wrapper(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    result = wrapped(*args, **kwargs)
    try:
        _instrument_instance(instance)
    except Exception as exc:
        report_internal_error(_COMPONENT, exc)
    return result


def _register_secrets(exchange: Any) -> None:
    for field in _SECRET_FIELDS:
        value = getattr(exchange, field, None)
        if isinstance(value, str) and value:
            register_secret(value)


def _instrument_instance(exchange: Any) -> None:
    with _lock:
        if exchange.__dict__.get(_MARKER) is not None:
            _register_secrets(exchange)  # keys may have been set since
            return
        name = str(getattr(exchange, "id", "") or "unknown")
        if find_exchange(name) is None:
            report_bad_input(
                _COMPONENT, "instrument_ccxt", f"id:{name}",
                f"otel_botmon: exchange {name!r:.40} is not in otel_botmon.exchanges; its "
                "requests are traced and measured, its rate-limit headers not read")
        fetch = exchange.fetch
        on_rest = exchange.on_rest_response
        is_async = inspect.iscoroutinefunction(fetch)
        state = _State(exchange, name)
        exchange.fetch = _async_fetch(state, fetch) if is_async else _sync_fetch(state, fetch)
        exchange.on_rest_response = _on_rest_response(on_rest)
        exchange.__dict__[_MARKER] = state
        _register_secrets(exchange)
        _instances.add(exchange)


def _uninstrument_instance(exchange: Any) -> None:
    values = getattr(exchange, "__dict__", {})
    if values.get(_MARKER) is None:
        return
    for attribute in ("fetch", "on_rest_response", _MARKER):
        values.pop(attribute, None)
    _instances.discard(exchange)


class _State:
    """One instrumented exchange: its name, and its secrets as last registered."""

    __slots__ = ("keys", "name", "ref")

    def __init__(self, exchange: Any, name: str) -> None:
        self.ref = weakref.ref(exchange)
        self.name = name
        self.keys = self._keys(exchange)

    @staticmethod
    def _keys(exchange: Any) -> tuple[object, ...]:
        return tuple(getattr(exchange, f, None) for f in _SECRET_FIELDS)

    def refresh_secrets(self) -> None:
        # Keys set after construction (exchange.apiKey = ...) are registered on first use.
        exchange = self.ref()
        if exchange is None:
            return
        keys = self._keys(exchange)
        if keys != self.keys:
            self.keys = keys
            _register_secrets(exchange)


def _on_rest_response(original: Callable[..., Any]) -> Callable[..., Any]:
    def on_rest_response(code: Any, reason: Any, url: Any, method: Any, response_headers: Any,
                         response_body: Any, request_headers: Any, request_body: Any) -> Any:
        request = _CURRENT.get()
        if request is not None:
            if isinstance(code, int) and not isinstance(code, bool):
                request.status = code
            request.headers = response_headers
        return original(code, reason, url, method, response_headers, response_body,
                        request_headers, request_body)

    return on_rest_response


class _Call:
    """One request in progress: span, timing, count-once ownership."""

    __slots__ = ("endpoint", "host", "method", "otel_token", "owner_token", "path",
                 "request", "request_token", "span", "start", "state", "url")

    def __init__(self, state: _State, url: object, method: object) -> None:
        # Keys set since the last request (exchange.apiKey = ...) are registered before
        # it goes out: ccxt logs the response, which may quote them, inside fetch.
        state.refresh_secrets()
        self.state = state
        self.request = _Request(state.name)
        self.method = str(method).upper()
        self.url = str(url)
        parts = urlsplit(self.url)
        self.host = parts.hostname
        self.path = parts.path or "/"
        self.endpoint = endpoint_from_path(self.path)
        attributes: dict[str, Any] = {
            conv.EXCHANGE_NAME: state.name, conv.EXCHANGE_ENDPOINT: self.endpoint,
            "http.request.method": self.method, "url.full": redact_url(self.url),
        }
        if self.host:
            attributes["server.address"] = self.host
        if parts.port:
            attributes["server.port"] = parts.port
        self.span = _instruments().tracer.start_span(
            f"{conv.SPAN_EXCHANGE_CALL} {self.endpoint}", kind=SpanKind.CLIENT,
            attributes=attributes)
        self.otel_token = otel_context.attach(trace.set_span_in_context(self.span))
        # The outermost layer counts the request: claim it unless someone outside did.
        self.owner_token = claim_request(self.request) if request_owner() is None else None
        self.request_token = _CURRENT.set(self.request)
        self.start = time.perf_counter()

    def finish(self, exc: BaseException | None) -> None:
        duration = time.perf_counter() - self.start
        try:
            _CURRENT.reset(self.request_token)
            if self.owner_token is not None:
                release_request(self.owner_token)
            otel_context.detach(self.otel_token)
        except Exception as internal:  # a token from another context
            report_internal_error(_COMPONENT, internal)
        try:
            self._record(exc, duration)
        except Exception as internal:
            report_internal_error(_COMPONENT, internal)
        finally:
            self.span.end()

    def _record(self, exc: BaseException | None, duration: float) -> None:
        request = self.request
        status = request.status
        if status is None and exc is not None:
            status = _status_of_exception(exc)
        if status is None:
            status = request.inner_status
        name = observe_response(_COMPONENT, self.state.name, self.host, self.path, status,
                                request.headers, exc, duration, self.method)
        span = self.span
        error = type(exc).__qualname__ if exc is not None else (
            str(status) if status is not None and status >= 400 else None)
        if span.is_recording():
            span.set_attribute(conv.EXCHANGE_NAME, name)  # the name of every metric
            if status is not None:
                span.set_attribute(conv.HTTP_RESPONSE_STATUS_CODE, status)
            if error is not None:
                span.set_attribute(conv.ERROR_TYPE, error)
                message = redact_text(str(exc))[:512] if exc is not None else f"HTTP {status}"
                span.set_status(Status(StatusCode.ERROR, message))
            if exc is not None:
                span.add_event("exception", {
                    "exception.type": f"{type(exc).__module__}.{type(exc).__qualname__}",
                    "exception.message": redact_text(str(exc))[:2048],
                })
        if exc is not None:
            _reject_trade(exc)


def _reject_trade(exc: BaseException) -> None:
    """An order the exchange refused makes the enclosing trade ``rejected``."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    if not names.intersection(_REJECTIONS) or "ccxt" not in type(exc).__module__:
        return
    trade = current_trade()
    if trade is not None:
        trade.rejected(redact_text(str(exc)))


def _sync_fetch(state: _State, original: Callable[..., Any]) -> Callable[..., Any]:
    def fetch(url: Any, method: Any = "GET", headers: Any = None, body: Any = None) -> Any:
        try:
            call = _Call(state, url, method)
        except Exception as internal:
            report_internal_error(_COMPONENT, internal)
            return original(url, method, headers, body)
        sent = sent_credentials(headers)
        token = SENT.set(sent) if sent else None
        try:
            result = original(url, method, headers, body)
        except BaseException as exc:
            scrub_exception(exc, sent)
            call.finish(exc)
            raise
        finally:
            if token is not None:
                SENT.reset(token)
        call.finish(None)
        return result

    return fetch


def _async_fetch(state: _State, original: Callable[..., Any]) -> Callable[..., Any]:
    async def fetch(url: Any, method: Any = "GET", headers: Any = None,
                    body: Any = None) -> Any:
        try:
            call = _Call(state, url, method)
        except Exception as internal:
            report_internal_error(_COMPONENT, internal)
            return await original(url, method, headers, body)
        sent = sent_credentials(headers)
        token = SENT.set(sent) if sent else None
        try:
            result = await original(url, method, headers, body)
        except BaseException as exc:
            scrub_exception(exc, sent)
            call.finish(exc)
            raise
        finally:
            if token is not None:
                SENT.reset(token)
        call.finish(None)
        return result

    return fetch
