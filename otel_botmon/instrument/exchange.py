"""Exchange API call instrumentation: ``@exchange_call`` and ``record_api_call``.

One exchange call is one span (``exchange {endpoint}``, kind CLIENT) plus
``botmon.exchange.request.duration`` (s) and ``botmon.exchange.requests`` (names in
:mod:`otel_botmon.conventions`), by ``exchange.name``, ``exchange.endpoint``,
``http.response.status_code`` (when known) and ``error.type`` (the exception's class
name, or the status code as a string for a status >= 400, as the OpenTelemetry HTTP
conventions do). Rate-limit headers are in :mod:`otel_botmon.instrument.ratelimit`,
the HTTP clients in ``httpx``, ``requests_client``, ``aiohttp_client`` and ``ccxt``.

An exchange call owns the HTTP requests made inside it: they are counted once, by the
call (see :class:`RequestOwner`), and the status an instrumented client saw becomes the
call's status when the call itself has none.

The bot's exceptions pass through unchanged; a bad value (a status code that is not a
number, a response time that is not a number) is dropped with one warning.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar, Token
from typing import Any, Final, ParamSpec, TypeVar, overload

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from otel_botmon import conventions as conv
from otel_botmon import redaction, telemetry
from otel_botmon._internal import report_internal_error
from otel_botmon.exchanges import find_exchange
from otel_botmon.instrument._values import as_number, warn_once
from otel_botmon.instrument._wrappers import (
    ActiveCall,
    CallScope,
    check_decoratable,
    current,
)
from otel_botmon.redaction import redact_text

__all__ = [
    "ActiveExchangeCall",
    "ExchangeCallScope",
    "current_exchange",
    "endpoint_from_path",
    "exchange_call",
    "record_api_call",
]

P = ParamSpec("P")
R = TypeVar("R")

_COMPONENT = "exchange"
UNKNOWN: Final = "unknown"
_MAX_ENDPOINT_CHARS: Final = 128
_ENDPOINT_CACHE_SIZE: Final = 1024
_endpoint_labels: dict[str, str] = {}
# Path segments that are identifiers, not endpoints: numbers, UUIDs, long tokens (a
# Slack webhook's or a Telegram bot's secret path part). Keeps metric cardinality bounded
# and secrets out of the endpoint label.
_ID_SEGMENT: Final = re.compile(r"^(?:\d+|(?=[^/]*\d)[A-Za-z0-9_\-:.=~]{16,})$")
# Bots call the same few paths over and over; remember their labels (bounded).
_endpoints: dict[str, str] = {}
# The redaction cache the labels above were made with: redaction replaces it when a
# secret or a sensitive name is added, and a label made before must not be reused (a key
# set on the exchange after its first request is registered then).
_labels_made_with: list[object] = [None]


def _labels_current() -> None:
    made_with = redaction._text_cache
    if made_with is not _labels_made_with[0]:
        _endpoints.clear()
        _endpoint_labels.clear()
        _labels_made_with[0] = made_with


def endpoint_from_path(path: str) -> str:
    """The ``exchange.endpoint`` label for a URL path: identifiers become ``{id}``.

    ``/api/v3/order`` stays; ``/orders/12345`` gives ``/orders/{id}``. Registered
    secrets are scrubbed and the result is at most 128 characters.
    """
    _labels_current()
    found = _endpoints.get(path)
    if found is None:
        segments = ["{id}" if _ID_SEGMENT.match(s) else s for s in path.split("/")]
        found = redact_text("/".join(segments) or "/")[:_MAX_ENDPOINT_CHARS]
        if len(_endpoints) >= _ENDPOINT_CACHE_SIZE:
            _endpoints.clear()
        _endpoints[path] = found
    return found


def _endpoint_label(endpoint: str) -> str:
    """The ``exchange.endpoint`` value for what the caller passed (a name, a path or a
    whole signed URL): query and fragment dropped (a signature, a timestamp: secret and
    unbounded), secrets left in the path redacted, at most 128 characters. Cached."""
    _labels_current()
    found = _endpoint_labels.get(endpoint)
    if found is None:
        path = endpoint.partition("#")[0].partition("?")[0] or UNKNOWN
        # redacted whole, then cut: a registered secret the cut split would keep its
        # first part (redact_text bounds the work: it keeps its first 16 KB)
        found = redact_text(path)[:_MAX_ENDPOINT_CHARS]
        if len(_endpoint_labels) >= _ENDPOINT_CACHE_SIZE:
            _endpoint_labels.clear()
        _endpoint_labels[endpoint] = found
    return found


class _Instruments:
    """The tracer and instruments of exchange calls: proxies that follow configure()."""

    __slots__ = ("duration", "requests", "tracer")

    def __init__(self) -> None:
        self.tracer: Tracer = telemetry.tracer()
        self.duration: Any = telemetry.instrument(conv.EXCHANGE_REQUEST_DURATION)
        self.requests: Any = telemetry.instrument(conv.EXCHANGE_REQUESTS)


_INSTRUMENTS = _Instruments()


def _instruments() -> _Instruments:
    return _INSTRUMENTS


def default_exchange() -> str:
    """The exchange name used when none is given: ``configure(exchange=...)``, else
    ``"unknown"``."""
    tel = telemetry.get_telemetry()
    if tel is not None:
        value = tel.resource.attributes.get(conv.BOT_EXCHANGE)
        if isinstance(value, str) and value:
            return value
    return UNKNOWN


def canonical_exchange(name: str) -> str:
    """The table's id for an exchange's id or alias (``binanceusdm`` is ``binance``,
    ``Gate`` is ``gate``); a name outside :mod:`otel_botmon.exchanges` as given."""
    row = find_exchange(name)
    return row.name if row is not None else name


def as_status_code(value: object, site: str) -> int | None:
    """``value`` as an HTTP status code (100..599), or None with one warning per site.

    Accepts ints, integral floats and numeric strings (``"200"``); an object with a
    ``status_code`` attribute (an ``httpx``/``requests`` response) gives that.
    """
    if value is None:
        return None
    if not isinstance(value, (int, float, str)):
        value = getattr(value, "status_code", value)
    code: int | None = None
    if isinstance(value, bool):
        code = None
    elif isinstance(value, int):
        code = value
    elif isinstance(value, float) and value.is_integer():
        code = int(value)
    elif isinstance(value, str) and value.strip().isdigit():
        code = int(value.strip())
    if code is not None and 100 <= code <= 599:
        return code
    warn_once(
        site, "status_code",
        f"otel_botmon: status code {value!r:.40} in {site} is not an HTTP status; "
        "the call is recorded without it (warned once per call site)",
    )
    return None


_MAX_CHAIN: Final = 8


def _status_of_one(exc: BaseException) -> int | None:
    for candidate in (
        getattr(exc, "status_code", None),
        getattr(getattr(exc, "response", None), "status_code", None),
        getattr(exc, "status", None),
        getattr(exc, "http_status_code", None),
    ):
        if isinstance(candidate, int) and not isinstance(candidate, bool) \
                and 100 <= candidate <= 599:
            return candidate
    return None


def _status_of_exception(exc: BaseException) -> int | None:
    """The HTTP status an exchange-client exception carries, if any.

    httpx/requests errors have ``.response.status_code``; aiohttp has ``.status``; many
    exchange SDKs have ``.status_code``. ccxt raises its own error *from* the HTTP
    client's, so the ``__cause__``/``__context__`` chain is followed (at most 8 links).
    Anything else gives None (no warning: most exceptions simply have no status).
    """
    seen: BaseException | None = exc
    for _ in range(_MAX_CHAIN):
        if seen is None:
            break
        status = _status_of_one(seen)
        if status is not None:
            return status
        seen = seen.__cause__ or seen.__context__
    return None


# --- one request, counted once ------------------------------------------------------------
#
# Several layers can see one HTTP request: an ``exchange_call`` around a ccxt call, ccxt's
# own fetch, and the requests/aiohttp/httpx client below it. The outermost of them owns the
# request: it records the botmon.exchange.* request metrics; the inner layers only report
# the HTTP status they saw to it (and still record rate-limit headers and their own client
# span). An ``exchange_call`` always owns what runs inside it; otherwise the first
# instrumented client layer (ccxt's fetch) claims the request with :func:`claim_request`.


class RequestOwner:
    """A layer that counts a request; inner layers tell it the status they saw and the
    ``exchange.name`` they recorded the response's other metrics under.

    ``exchange`` is the name this layer was given (None: not named), which the inner
    layers record under in preference to their own, so one request has one name."""

    __slots__ = ("exchange", "inner_error", "inner_exchange", "inner_status")

    def __init__(self, exchange: str | None = None) -> None:
        self.exchange = exchange
        self.inner_status: int | None = None
        self.inner_error: str | None = None
        self.inner_exchange: str | None = None

    def inner_response(self, status: int | None, error: str | None,
                       exchange: str | None = None) -> None:
        if status is not None:
            self.inner_status = status
        if error is not None:
            self.inner_error = error
        if exchange is not None:
            self.inner_exchange = exchange


_OWNER: ContextVar[RequestOwner | None] = ContextVar("otel_botmon_request_owner", default=None)


def request_owner() -> RequestOwner | None:
    """The layer that counts the current request (None: the caller counts it)."""
    owner = _OWNER.get()
    if owner is not None:
        return owner
    call = current_exchange()
    return call._inner if call is not None else None


def claim_request(owner: RequestOwner) -> Token[RequestOwner | None]:
    """Make ``owner`` the counting layer until :func:`release_request`."""
    return _OWNER.set(owner)


def release_request(token: Token[RequestOwner | None]) -> None:
    try:
        _OWNER.reset(token)
    except ValueError:  # reset from another context: leave no owner behind
        _OWNER.set(None)


def _metric_attributes(
    exchange: str, endpoint: str, status: int | None, error: str | None
) -> dict[str, Any]:
    attrs: dict[str, Any] = {conv.EXCHANGE_NAME: exchange, conv.EXCHANGE_ENDPOINT: endpoint}
    if status is not None:
        attrs[conv.HTTP_RESPONSE_STATUS_CODE] = status
    if error is not None:
        attrs[conv.ERROR_TYPE] = error
    return attrs


def _error_type(exc: BaseException | None, status: int | None) -> str | None:
    if exc is not None:
        return type(exc).__qualname__
    if status is not None and status >= 400:
        return str(status)
    return None


class ActiveExchangeCall(ActiveCall):
    """One exchange call in progress: the ``c`` of ``with exchange_call(...) as c``.

    Set ``c.status_code = 200`` (or assign the response object) to record the HTTP
    status. A decorated function's return value is used when it has ``.status_code``.
    """

    __slots__ = ("_endpoint", "_exchange", "_inner", "_inst", "_site", "_status")

    def __init__(
        self, span: Span, inst: _Instruments | None, exchange: str, endpoint: str, site: str,
        named: bool = True,
    ) -> None:
        super().__init__(span, _COMPONENT)
        self._inst = inst
        self._exchange = exchange
        self._endpoint = endpoint
        self._site = site
        self._status: object = None
        # What instrumented clients inside saw; they record under the call's name when
        # it was named, and tell it theirs (found by host or headers) when it was not.
        self._inner = RequestOwner(exchange if named and exchange != UNKNOWN else None)

    @property
    def exchange(self) -> str:
        return self._exchange

    @property
    def endpoint(self) -> str:
        return self._endpoint

    @property
    def status_code(self) -> object:
        """The status code set on this call (None until set)."""
        return self._status

    @status_code.setter
    def status_code(self, value: object) -> None:
        # Validated when the call ends, so a bad value never raises into the bot here.
        self._status = value

    def _record(self, exc: BaseException | None, result: object, duration_s: float) -> None:
        inst = self._inst
        if inst is None:  # telemetry failed when the call started
            return
        status: int | None
        if self._status is not None:
            status = as_status_code(self._status, self._site)
        elif exc is not None:
            status = _status_of_exception(exc)
        elif result is not None and hasattr(result, "status_code"):
            status = as_status_code(result.status_code, self._site)
        else:
            status = None
        if status is None:  # the status an instrumented client inside saw
            status = self._inner.inner_status
        if self._inner.inner_exchange is not None:  # the name its response was given
            self._exchange = self._inner.inner_exchange
        error = _error_type(exc, status)
        attrs = _metric_attributes(self._exchange, self._endpoint, status, error)
        inst.duration.record(duration_s, attrs)
        inst.requests.add(1, attrs)
        span = self._span
        if span.is_recording():
            span.set_attribute(conv.EXCHANGE_NAME, self._exchange)
            if status is not None:
                span.set_attribute(conv.HTTP_RESPONSE_STATUS_CODE, status)
            if exc is None and error is not None:
                # A client span with a 4xx/5xx answer is an error (HTTP conventions).
                span.set_attribute(conv.ERROR_TYPE, error)
                span.set_status(Status(StatusCode.ERROR, f"HTTP {status}"))


def _check_name(value: object, what: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(
            f"exchange_call: {what} must be a string such as "
            f"{'binance' if what == 'exchange' else 'create_order'!r}, "
            f"got {type(value).__name__} {value!r:.60}"
        )
    if not value.strip():
        raise ValueError(f"exchange_call: {what} must not be empty")
    return value


class ExchangeCallScope(CallScope[ActiveExchangeCall]):
    """An exchange-call instrumentation: decorator, ``with`` and ``async with`` in one.

    Build it with :func:`exchange_call`. Each decorated call or ``with`` block is a
    separate call with its own :class:`ActiveExchangeCall`.
    """

    __slots__ = ("_endpoint", "_exchange")
    _component = _COMPONENT
    _decorator_name = "exchange_call"

    def __init__(self, exchange: str | None = None, endpoint: str | None = None) -> None:
        self._exchange = _check_name(exchange, "exchange")
        checked = _check_name(endpoint, "endpoint")
        self._endpoint = None if checked is None else _endpoint_label(checked)

    def __repr__(self) -> str:
        return f"exchange_call(exchange={self._exchange!r}, endpoint={self._endpoint!r})"

    def _begin(self, arguments: Mapping[str, Any] | None, site: str) -> ActiveExchangeCall:
        inst = _instruments()
        exchange = canonical_exchange(self._exchange or default_exchange())
        endpoint = self._endpoint
        if endpoint is None:
            # A decorated function names its endpoint; a bare ``with`` block cannot.
            endpoint = site.rsplit(".", 1)[-1] if arguments is not None else UNKNOWN
        span = inst.tracer.start_span(
            f"{conv.SPAN_EXCHANGE_CALL} {endpoint}",
            kind=SpanKind.CLIENT,
            attributes={conv.EXCHANGE_NAME: exchange, conv.EXCHANGE_ENDPOINT: endpoint},
        )
        return ActiveExchangeCall(span, inst, exchange, endpoint, site,
                                  named=self._exchange is not None)

    def _disabled(self) -> ActiveExchangeCall:
        return ActiveExchangeCall(
            trace.INVALID_SPAN, None, self._exchange or UNKNOWN, self._endpoint or UNKNOWN,
            "exchange_call",
        )


@overload
def exchange_call(exchange: Callable[P, R], /) -> Callable[P, R]: ...


@overload
def exchange_call(
    exchange: str | None = None, endpoint: str | None = None
) -> ExchangeCallScope: ...


def exchange_call(
    exchange: str | Callable[P, R] | None = None, endpoint: str | None = None
) -> ExchangeCallScope | Callable[P, R]:
    """Instrument an exchange API call: ``@exchange_call(exchange=..., endpoint=...)``,
    bare ``@exchange_call``, or ``with exchange_call(...) as c`` / ``async with``.

    ``exchange`` defaults to ``configure(exchange=...)`` (else ``"unknown"``);
    ``endpoint`` defaults to the decorated function's name (``"unknown"`` for a ``with``
    block). Works on sync functions, coroutines, generators and async generators,
    keeping the signature. The status code comes from ``c.status_code = ...``, from a
    returned object's ``.status_code``, or from an exception's response; exceptions get
    ``error.type`` and are re-raised unchanged.

    Raises TypeError (at decoration time) for a class, a non-callable, or a non-string
    exchange/endpoint; ValueError for an empty name.
    """
    if callable(exchange):
        check_decoratable(exchange, "exchange_call")
        if endpoint is not None:
            raise TypeError("exchange_call: use @exchange_call(exchange=..., endpoint=...)")
        return ExchangeCallScope().decorate(exchange)
    return ExchangeCallScope(exchange, endpoint)


def current_exchange() -> ActiveExchangeCall | None:
    """The innermost exchange call in progress in this thread or task."""
    return current(ActiveExchangeCall)


def record_api_call(
    endpoint: object,
    response_time: object,
    status_code: object = None,
    *,
    exchange: str | None = None,
) -> None:
    """Record an exchange API call after the fact (the seed's ``SystemMonitor`` call).

    ``response_time`` is in milliseconds, as in the guide; it is recorded in seconds on
    ``botmon.exchange.request.duration`` and as the span's duration. ``exchange``
    defaults to ``configure(exchange=...)``, else ``"unknown"``. A non-numeric or
    negative ``response_time`` or a bad status code is dropped with one warning (the
    request is still counted); this never raises.
    """
    site = "record_api_call"
    try:
        inst = _instruments()
        name = canonical_exchange(
            exchange if isinstance(exchange, str) and exchange else default_exchange())
        endpoint_name = _endpoint_label(endpoint if isinstance(endpoint, str) and endpoint else (
            UNKNOWN if endpoint is None else str(endpoint)
        ))
        millis = as_number(response_time, "response_time", site)
        if millis is not None and millis < 0:
            warn_once(site, "response_time<0",
                      f"otel_botmon: response_time={millis} ms in {site} is negative; "
                      "the call is counted without a duration (warned once)")
            millis = None
        status = as_status_code(status_code, site)
        error = _error_type(None, status)
        attrs = _metric_attributes(name, endpoint_name, status, error)
        if millis is not None:
            inst.duration.record(millis / 1000.0, attrs)
        inst.requests.add(1, attrs)
        _record_api_span(inst, name, endpoint_name, status, error, millis)
    except Exception as exc:
        report_internal_error(_COMPONENT, exc)


def _record_api_span(
    inst: _Instruments,
    exchange: str,
    endpoint: str,
    status: int | None,
    error: str | None,
    millis: float | None,
) -> None:
    end_ns = time.time_ns()
    start_ns = end_ns - int((millis or 0.0) * 1_000_000)
    attrs: dict[str, Any] = {conv.EXCHANGE_NAME: exchange, conv.EXCHANGE_ENDPOINT: endpoint}
    if status is not None:
        attrs[conv.HTTP_RESPONSE_STATUS_CODE] = status
    if error is not None:
        attrs[conv.ERROR_TYPE] = error
    span = inst.tracer.start_span(
        f"{conv.SPAN_EXCHANGE_CALL} {endpoint}", kind=SpanKind.CLIENT,
        attributes=attrs, start_time=start_ns,
    )
    if error is not None:
        span.set_status(Status(StatusCode.ERROR, f"HTTP {status}"))
    span.end(end_time=end_ns)


def record_exchange_request(
    exchange: str, endpoint: str, status_code: int | None, exc: BaseException | None,
    duration_s: float,
) -> bool:
    """Count one exchange request and its duration, unless an outer layer owns it (an
    ``exchange_call``, ``instrument_ccxt``): then only tell that layer the status.
    Returns whether it counted."""
    error = _error_type(exc, status_code)
    owner = request_owner()
    if owner is not None:
        owner.inner_response(status_code, error, exchange)
        return False
    inst = _instruments()
    attrs = _metric_attributes(exchange, _endpoint_label(endpoint), status_code, error)
    inst.duration.record(duration_s, attrs)
    inst.requests.add(1, attrs)
    return True
