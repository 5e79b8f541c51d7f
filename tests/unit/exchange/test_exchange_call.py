"""@exchange_call / with exchange_call(...) and record_api_call, through in-memory readers."""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.trace import SpanKind, StatusCode

from otel_botmon import conventions as conv
from otel_botmon import telemetry as botmon_telemetry
from otel_botmon.instrument.exchange import (
    current_exchange,
    default_exchange,
    exchange_call,
    record_api_call,
)

DURATION = conv.EXCHANGE_REQUEST_DURATION.name
REQUESTS = conv.EXCHANGE_REQUESTS.name


class FakeResponse:
    def __init__(self, status_code: object) -> None:
        self.status_code = status_code


def attrs(endpoint: str, status: int | None = None, error: str | None = None,
          exchange: str = "binance") -> dict[str, Any]:
    found: dict[str, Any] = {conv.EXCHANGE_NAME: exchange, conv.EXCHANGE_ENDPOINT: endpoint}
    if status is not None:
        found[conv.HTTP_RESPONSE_STATUS_CODE] = status
    if error is not None:
        found[conv.ERROR_TYPE] = error
    return found


def test_decorated_call_records_span_and_metrics_with_returned_status(
    telemetry: Any, metrics: Any
) -> None:
    @exchange_call(exchange="binance", endpoint="create_order")
    def create_order(symbol: str, quantity: float) -> FakeResponse:
        return FakeResponse(200)

    assert create_order("BTCUSDT", 0.1).status_code == 200

    (span,) = telemetry.spans()
    assert span.name == "exchange create_order"
    assert span.kind is SpanKind.CLIENT
    assert dict(span.attributes) == attrs("create_order", 200)
    assert span.status.status_code is StatusCode.UNSET
    assert metrics.metric_point(REQUESTS, attrs("create_order", 200)).value == 1
    duration = metrics.metric_point(DURATION, attrs("create_order", 200))
    assert duration.count == 1
    assert 0 <= duration.sum < 1.0


def test_decorator_keeps_the_signature_and_name() -> None:
    def get_account(recv_window: int = 5000) -> None:
        """Account info."""

    decorated = exchange_call(exchange="binance", endpoint="account")(get_account)
    assert inspect.signature(decorated) == inspect.signature(get_account)
    assert decorated.__name__ == "get_account"
    assert decorated.__doc__ == "Account info."


def test_bare_decorator_names_the_endpoint_after_the_function(
    telemetry: Any, metrics: Any
) -> None:
    @exchange_call
    def get_ticker() -> dict[str, str]:
        return {"price": "1"}

    get_ticker()
    (span,) = telemetry.spans()
    assert span.name == "exchange get_ticker"
    # the exchange comes from configure(exchange="binance") in the fixture
    assert metrics.metric_attribute_sets(REQUESTS) == [attrs("get_ticker")]


def test_context_manager_status_code_is_settable(telemetry: Any, metrics: Any) -> None:
    with exchange_call(exchange="okx", endpoint="balance") as call:
        assert current_exchange() is call
        call.status_code = 200
    assert current_exchange() is None
    (span,) = telemetry.spans()
    assert dict(span.attributes) == attrs("balance", 200, exchange="okx")
    assert metrics.metric_point(REQUESTS, attrs("balance", 200, exchange="okx")).value == 1


def test_context_manager_accepts_a_response_object_as_status(
    telemetry: Any, metrics: Any
) -> None:
    with exchange_call("binance", "ping") as call:
        call.status_code = httpx.Response(204)
    assert metrics.metric_attribute_sets(REQUESTS) == [attrs("ping", 204)]


def test_with_block_without_endpoint_is_unknown(telemetry: Any, metrics: Any) -> None:
    with exchange_call():
        pass
    assert metrics.metric_attribute_sets(REQUESTS) == [attrs("unknown")]


async def test_async_with_records_like_with(telemetry: Any, metrics: Any) -> None:
    async with exchange_call(exchange="kucoin", endpoint="orders") as call:
        call.status_code = 201
    assert metrics.metric_attribute_sets(REQUESTS) == [attrs("orders", 201, exchange="kucoin")]


async def test_coroutine_is_instrumented(telemetry: Any, metrics: Any) -> None:
    @exchange_call(exchange="binance", endpoint="depth")
    async def depth() -> FakeResponse:
        return FakeResponse(200)

    assert (await depth()).status_code == 200
    assert [s.name for s in telemetry.spans()] == ["exchange depth"]
    assert metrics.metric_attribute_sets(REQUESTS) == [attrs("depth", 200)]


def test_generator_is_one_call_spanning_all_items(telemetry: Any, metrics: Any) -> None:
    @exchange_call(exchange="binance", endpoint="klines")
    def klines() -> Iterator[int]:
        yield 1
        yield 2

    assert list(klines()) == [1, 2]
    assert [s.name for s in telemetry.spans()] == ["exchange klines"]
    assert metrics.metric_point(REQUESTS, attrs("klines")).value == 1


async def test_async_generator_is_one_call(telemetry: Any, metrics: Any) -> None:
    @exchange_call(exchange="binance", endpoint="trades_stream")
    async def stream() -> AsyncIterator[int]:
        yield 1
        yield 2

    assert [i async for i in stream()] == [1, 2]
    assert metrics.metric_point(REQUESTS, attrs("trades_stream")).value == 1


def test_exception_is_reraised_unchanged_with_error_type(telemetry: Any, metrics: Any) -> None:
    error = ConnectionResetError("peer went away")

    @exchange_call(exchange="binance", endpoint="create_order")
    def create_order() -> None:
        raise error

    with pytest.raises(ConnectionResetError) as caught:
        create_order()
    assert caught.value is error

    (span,) = telemetry.spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[conv.ERROR_TYPE] == "ConnectionResetError"
    assert metrics.metric_attribute_sets(REQUESTS) == [
        attrs("create_order", error="ConnectionResetError")
    ]


def test_http_status_error_gives_its_status_code(telemetry: Any, metrics: Any) -> None:
    request = httpx.Request("POST", "https://api.binance.com/api/v3/order")
    response = httpx.Response(429, request=request)

    with pytest.raises(httpx.HTTPStatusError), \
            exchange_call(exchange="binance", endpoint="create_order"):
        response.raise_for_status()

    assert metrics.metric_attribute_sets(REQUESTS) == [
        attrs("create_order", 429, error="HTTPStatusError")
    ]


def test_error_status_without_exception_marks_the_call_failed(
    telemetry: Any, metrics: Any
) -> None:
    with exchange_call(exchange="binance", endpoint="create_order") as call:
        call.status_code = 418
    (span,) = telemetry.spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[conv.ERROR_TYPE] == "418"
    assert metrics.metric_attribute_sets(REQUESTS) == [attrs("create_order", 418, error="418")]


def test_bad_status_code_is_dropped_with_one_warning(
    telemetry: Any, metrics: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="otel_botmon")
    for _ in range(3):
        with exchange_call(exchange="binance", endpoint="ping") as call:
            call.status_code = "abc"
    assert metrics.metric_point(REQUESTS, attrs("ping")).value == 3
    warnings = [r for r in caplog.records if "status code" in r.getMessage()]
    assert len(warnings) == 1
    assert "'abc'" in warnings[0].getMessage()


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"exchange": 3}, TypeError, "exchange must be a string"),
        ({"endpoint": ["x"]}, TypeError, "endpoint must be a string"),
        ({"exchange": "  "}, ValueError, "exchange must not be empty"),
    ],
)
def test_bad_names_are_rejected_at_construction(
    arguments: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        exchange_call(**arguments)


def test_decorating_a_class_raises_type_error() -> None:
    with pytest.raises(TypeError, match="not classes"):
        exchange_call(exchange="binance")(type("Client", (), {}))  # type: ignore[arg-type]


def test_default_exchange_is_unknown_without_configure() -> None:
    botmon_telemetry.shutdown()
    assert default_exchange() == "unknown"


def test_record_api_call_converts_milliseconds_to_seconds(telemetry: Any, metrics: Any) -> None:
    record_api_call(endpoint="get_account_info", response_time=150.0, status_code=200)

    duration = metrics.metric_point(DURATION, attrs("get_account_info", 200))
    assert duration.count == 1
    assert duration.sum == pytest.approx(0.150)
    assert metrics.metric_point(REQUESTS, attrs("get_account_info", 200)).value == 1
    (span,) = telemetry.spans()
    assert span.name == "exchange get_account_info"
    assert span.end_time - span.start_time == pytest.approx(150_000_000, abs=1_000)


def test_record_api_call_with_error_status_and_explicit_exchange(
    telemetry: Any, metrics: Any
) -> None:
    record_api_call("create_order", 35.0, 500, exchange="okx")
    assert metrics.metric_attribute_sets(REQUESTS) == [
        attrs("create_order", 500, error="500", exchange="okx")
    ]


def test_record_api_call_with_bad_response_time_still_counts(
    telemetry: Any, metrics: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="otel_botmon")
    record_api_call("ping", "fast", 200)
    record_api_call("ping", -5, 200)
    assert metrics.metric_point(REQUESTS, attrs("ping", 200)).value == 2
    assert metrics.metric_attribute_sets(DURATION) == []
    assert len([r for r in caplog.records if "response_time" in r.getMessage()]) == 2


def test_signed_url_in_the_exception_is_redacted_on_the_exported_span(telemetry: Any) -> None:
    url = "https://api.binance.com/api/v3/order?symbol=BTCUSDT&signature=0ddba11c0ffee"
    response = httpx.Response(400, request=httpx.Request("POST", url))

    with pytest.raises(httpx.HTTPStatusError) as caught, \
            exchange_call(exchange="binance", endpoint="create_order"):
        response.raise_for_status()

    assert "0ddba11c0ffee" in str(caught.value)  # the bot's exception is untouched
    (span,) = telemetry.spans()
    (event,) = span.events
    assert "signature=REDACTED" in event.attributes["exception.message"]
    assert "0ddba11c0ffee" not in repr(dict(event.attributes))
