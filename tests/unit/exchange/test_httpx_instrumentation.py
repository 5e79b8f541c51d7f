"""instrument_httpx: redacted spans, exchange metrics and rate limits, sync and async."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_botmon import conventions as conv
from otel_botmon import telemetry as botmon_telemetry
from otel_botmon.instrument.httpx import (
    endpoint_from_path,
    instrument_httpx,
    is_instrumented,
    uninstrument_httpx,
)
from otel_botmon.redaction import REDACTED
from tests.integration.otlp.fake_exchange import Answer, FakeExchange

REQUESTS = conv.EXCHANGE_REQUESTS.name
DURATION = conv.EXCHANGE_REQUEST_DURATION.name
GAUGE = conv.EXCHANGE_RATELIMIT_USED.name
ORDERS = conv.EXCHANGE_RATELIMIT_ORDERS.name
RETRY_AFTER = conv.EXCHANGE_RATELIMIT_RETRY_AFTER.name
SIGNATURE = "c0ffee5eed5a1t"
API_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
SIGNED_PATH = f"/api/v3/order?symbol=BTCUSDT&side=BUY&timestamp=1700000000&signature={SIGNATURE}"
RATE_HEADERS = {"X-MBX-USED-WEIGHT-1M": "42", "X-MBX-ORDER-COUNT-10S": "3"}


@pytest.fixture(autouse=True)
def _capture_all_headers(monkeypatch: pytest.MonkeyPatch) -> None:
    # The worst case: the contrib instrumentation copies every header onto the span.
    monkeypatch.setenv("OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST", ".*")
    monkeypatch.setenv("OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_RESPONSE", ".*")


def binance_answer(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, headers=RATE_HEADERS, json={"orderId": 1})


def exchange_attrs(status: int | None = 200, error: str | None = None,
                   endpoint: str = "/api/v3/order") -> dict[str, Any]:
    found: dict[str, Any] = {conv.EXCHANGE_NAME: "binance", conv.EXCHANGE_ENDPOINT: endpoint}
    if status is not None:
        found[conv.HTTP_RESPONSE_STATUS_CODE] = status
    if error is not None:
        found[conv.ERROR_TYPE] = error
    return found


def assert_no_secret(spans: Any) -> None:
    for span in spans:
        text = repr((span.name, dict(span.attributes or {}),
                     [(e.name, dict(e.attributes or {})) for e in span.events],
                     span.status.description))
        assert SIGNATURE not in text
        assert API_KEY not in text


def assert_recorded_signed_call(telemetry: Any, metrics: Any) -> None:
    (span,) = telemetry.spans()
    assert_no_secret([span])
    url = span.attributes.get("http.url") or span.attributes.get("url.full")
    assert url.endswith("/api/v3/order?symbol=BTCUSDT&side=BUY&timestamp=1700000000"
                        f"&signature={REDACTED}")
    assert span.attributes["http.request.header.x_mbx_apikey"] == (REDACTED,)
    assert metrics.metric_point(REQUESTS, exchange_attrs()).value == 1
    assert metrics.metric_point(DURATION, exchange_attrs()).count == 1
    weight = {conv.EXCHANGE_NAME: "binance", conv.RATELIMIT_BUDGET: "spot",
              conv.RATELIMIT_INTERVAL: "1m"}
    orders = {conv.EXCHANGE_NAME: "binance", conv.RATELIMIT_BUDGET: "spot",
              conv.RATELIMIT_INTERVAL: "10s"}
    assert metrics.metric_point(GAUGE, weight).value == 42
    assert metrics.metric_point(ORDERS, orders).value == 3


def test_one_sync_client_is_traced_redacted_and_measured(telemetry: Any, metrics: Any) -> None:
    client = httpx.Client(transport=httpx.MockTransport(binance_answer))
    instrument_httpx(client, exchange="binance")

    response = client.get(f"https://api.binance.com{SIGNED_PATH}",
                          headers={"X-MBX-APIKEY": API_KEY})

    assert response.json() == {"orderId": 1}
    assert response.request.headers["X-MBX-APIKEY"] == API_KEY  # sent, only redacted
    assert_recorded_signed_call(telemetry, metrics)


async def test_one_async_client_is_traced_redacted_and_measured(
    telemetry: Any, metrics: Any
) -> None:
    async with httpx.AsyncClient(transport=httpx.MockTransport(binance_answer)) as client:
        instrument_httpx(client, exchange="binance")
        response = await client.get(f"https://api.binance.com{SIGNED_PATH}",
                                    headers={"X-MBX-APIKEY": API_KEY})
    assert response.status_code == 200
    assert_recorded_signed_call(telemetry, metrics)


def test_instrumenting_twice_is_once(telemetry: Any, metrics: Any) -> None:
    client = httpx.Client(transport=httpx.MockTransport(binance_answer))
    instrument_httpx(client, exchange="binance")
    instrument_httpx(client, exchange="binance")

    client.get("https://api.binance.com/api/v3/order")

    assert len(telemetry.spans()) == 1
    assert metrics.metric_point(REQUESTS, exchange_attrs()).value == 1


def test_uninstrument_restores_the_client(telemetry: Any, metrics: Any) -> None:
    client = httpx.Client(transport=httpx.MockTransport(binance_answer))
    original = client._transport.handle_request
    instrument_httpx(client, exchange="binance")
    assert is_instrumented(client)

    uninstrument_httpx(client)

    assert not is_instrumented(client)
    assert client._transport.handle_request == original
    client.get("https://api.binance.com/api/v3/order")
    assert telemetry.spans() == []
    assert metrics.metric_attribute_sets(REQUESTS) == []


def test_connection_error_is_counted_and_reraised(telemetry: Any, metrics: Any) -> None:
    error = httpx.ConnectError("connection refused")

    def refuse(request: httpx.Request) -> httpx.Response:
        raise error

    client = httpx.Client(transport=httpx.MockTransport(refuse))
    instrument_httpx(client, exchange="binance")
    with pytest.raises(httpx.ConnectError) as caught:
        client.get(f"https://api.binance.com{SIGNED_PATH}")
    assert caught.value is error
    assert metrics.metric_attribute_sets(REQUESTS) == [exchange_attrs(None, "ConnectError")]
    assert_no_secret(telemetry.spans())


def test_throttled_response_records_status_error_and_retry_after(
    telemetry: Any, metrics: Any
) -> None:
    def throttle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": "30", **RATE_HEADERS})

    client = httpx.Client(transport=httpx.MockTransport(throttle))
    instrument_httpx(client, exchange="binance")
    assert client.get("https://api.binance.com/api/v3/order").status_code == 429

    assert metrics.metric_attribute_sets(REQUESTS) == [exchange_attrs(429, "429")]
    retry = {conv.EXCHANGE_NAME: "binance", conv.RATELIMIT_BUDGET: "spot"}
    assert metrics.metric_point(RETRY_AFTER, retry).value == 30


def test_garbage_response_never_breaks_the_request(
    telemetry: Any, metrics: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="otel_botmon")

    def garbage(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"X-MBX-USED-WEIGHT-1M": "abc",
                                            "X-MBX-ORDER-COUNT-1D": "9"}, content=b"<html>")

    client = httpx.Client(transport=httpx.MockTransport(garbage))
    instrument_httpx(client, exchange="binance")
    for _ in range(2):
        assert client.get("https://api.binance.com/api/v3/order").content == b"<html>"

    assert metrics.metric_point(REQUESTS, exchange_attrs()).value == 2
    assert metrics.metric_attribute_sets(GAUGE) == []
    assert metrics.metric_attribute_sets(ORDERS) == [
        {conv.EXCHANGE_NAME: "binance", conv.RATELIMIT_BUDGET: "spot",
         conv.RATELIMIT_INTERVAL: "1d"}
    ]
    warned = [r for r in caplog.records if "x-mbx-used-weight-1m" in r.getMessage().lower()]
    assert len(warned) == 1


def test_hosts_limit_which_requests_count_as_exchange_calls(
    telemetry: Any, metrics: Any
) -> None:
    client = httpx.Client(transport=httpx.MockTransport(binance_answer))
    instrument_httpx(client, exchange="binance", hosts=["api.binance.com"])
    client.get("https://hooks.slack.example/services/T0/B0/x")
    client.get("https://api.binance.com/api/v3/order")
    assert metrics.metric_attribute_sets(REQUESTS) == [exchange_attrs()]
    assert len(telemetry.spans()) == 2  # both traced and redacted, one measured


def test_all_clients_sync_against_a_loopback_server(
    telemetry: Any, metrics: Any, exchange_server: FakeExchange
) -> None:
    original = httpx.HTTPTransport.handle_request
    instrument_httpx(exchange="binance")
    instrument_httpx(exchange="binance")
    exchange_server.respond("/api/v3/order", Answer(headers=dict(RATE_HEADERS)))

    with httpx.Client() as client:
        client.get(exchange_server.url(SIGNED_PATH), headers={"X-MBX-APIKEY": API_KEY})

    assert exchange_server.requests[0].headers["x-mbx-apikey"] == API_KEY
    assert_recorded_signed_call(telemetry, metrics)
    uninstrument_httpx()
    assert httpx.HTTPTransport.handle_request is original
    assert not is_instrumented()


async def test_all_clients_async_against_a_loopback_server(
    telemetry: Any, metrics: Any, exchange_server: FakeExchange
) -> None:
    original = httpx.AsyncHTTPTransport.handle_async_request
    instrument_httpx(exchange="binance")
    exchange_server.respond("/api/v3/order", Answer(headers=dict(RATE_HEADERS)))

    async with httpx.AsyncClient() as client:
        await client.get(exchange_server.url(SIGNED_PATH), headers={"X-MBX-APIKEY": API_KEY})

    assert_recorded_signed_call(telemetry, metrics)
    uninstrument_httpx()
    assert httpx.AsyncHTTPTransport.handle_async_request is original


def test_rejects_a_client_that_is_not_httpx() -> None:
    with pytest.raises(TypeError, match=r"httpx.Client or httpx.AsyncClient"):
        instrument_httpx(object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="hosts must be a list"):
        instrument_httpx(hosts="api.binance.com")


@pytest.mark.parametrize(
    ("path", "endpoint"),
    [
        ("/api/v3/order", "/api/v3/order"),
        ("/api/v5/trade/orders/123456789", "/api/v5/trade/orders/{id}"),
        ("/orders/3f2b1c9e-1a2b-4c3d-9e8f-001122334455", "/orders/{id}"),
        ("/services/T0000/B0000/XXXXXXXXXXXXXXXXXXXXXXXX1", "/services/T0000/B0000/{id}"),
        ("", "/"),
    ],
)
def test_endpoint_label_hides_identifiers(path: str, endpoint: str) -> None:
    assert endpoint_from_path(path) == endpoint


def test_instrumenting_again_after_configure_moves_onto_the_new_providers() -> None:
    first, second = InMemorySpanExporter(), InMemorySpanExporter()
    client = httpx.Client(transport=httpx.MockTransport(binance_answer))
    botmon_telemetry.configure("bot-a", exchange="binance",
                        span_processors=[SimpleSpanProcessor(first)], set_global=False)
    instrument_httpx(client)
    client.get("https://api.binance.com/api/v3/order")

    tel = botmon_telemetry.configure("bot-b", exchange="okx",
                              span_processors=[SimpleSpanProcessor(second)], set_global=False)
    instrument_httpx(client)
    client.get("https://www.okx.com/api/v5/trade/order")

    assert len(first.get_finished_spans()) == 1
    assert len(second.get_finished_spans()) == 1
    data = tel.metric_reader.get_metrics_data()
    assert data is not None
    points = [
        dict(p.attributes)
        for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics
        if m.name == REQUESTS for p in m.data.data_points
    ]
    assert points == [{conv.EXCHANGE_NAME: "okx", conv.EXCHANGE_ENDPOINT: "/api/v5/trade/order",
                       conv.HTTP_RESPONSE_STATUS_CODE: 200}]
    tel.shutdown()


def test_one_sync_client_against_a_loopback_server(
    telemetry: Any, metrics: Any, exchange_server: FakeExchange
) -> None:
    exchange_server.respond("/api/v3/order", Answer(headers=dict(RATE_HEADERS)))
    with httpx.Client() as client:
        instrument_httpx(client, exchange="binance")
        client.get(exchange_server.url(SIGNED_PATH), headers={"X-MBX-APIKEY": API_KEY})
    assert_recorded_signed_call(telemetry, metrics)


async def test_one_async_client_against_a_loopback_server(
    telemetry: Any, metrics: Any, exchange_server: FakeExchange
) -> None:
    exchange_server.respond("/api/v3/order", Answer(headers=dict(RATE_HEADERS)))
    async with httpx.AsyncClient() as client:
        instrument_httpx(client, exchange="binance")
        await client.get(exchange_server.url(SIGNED_PATH), headers={"X-MBX-APIKEY": API_KEY})
    assert_recorded_signed_call(telemetry, metrics)


def test_one_client_on_top_of_all_clients_is_not_traced_twice(
    telemetry: Any, metrics: Any, exchange_server: FakeExchange
) -> None:
    instrument_httpx(exchange="binance")
    with httpx.Client() as client:
        instrument_httpx(client, exchange="binance")
        client.get(exchange_server.url("/api/v3/order"))
    assert len(telemetry.spans()) == 1
    assert metrics.metric_point(REQUESTS, exchange_attrs()).value == 1


def test_stable_http_conventions_by_default(
    telemetry: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OTEL_SEMCONV_STABILITY_OPT_IN", raising=False)
    client = httpx.Client(transport=httpx.MockTransport(binance_answer))
    instrument_httpx(client, exchange="binance")
    client.post(f"https://api.binance.com{SIGNED_PATH}")

    (span,) = telemetry.spans()
    assert span.attributes["http.request.method"] == "POST"
    assert span.attributes["url.full"].endswith(f"signature={REDACTED}")
    assert span.attributes["server.address"] == "api.binance.com"
    assert span.attributes["http.response.status_code"] == 200
    assert "http.url" not in span.attributes and "http.status_code" not in span.attributes
    found = telemetry.metrics()
    assert found["http.client.request.duration"].unit == "s"
    assert "http.client.duration" not in found


def test_the_old_conventions_are_one_environment_variable_away(
    telemetry: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", "default")  # the README's opt-out
    try:
        client = httpx.Client(transport=httpx.MockTransport(binance_answer))
        instrument_httpx(client, exchange="binance")
        client.get("https://api.binance.com/api/v3/time")
        (span,) = telemetry.spans()
        assert "http.url" in span.attributes and "url.full" not in span.attributes
        assert telemetry.metrics()["http.client.duration"].unit == "ms"
    finally:
        uninstrument_httpx()
        monkeypatch.delenv("OTEL_SEMCONV_STABILITY_OPT_IN")
        from otel_botmon.instrument._http import stable_http_semconv

        stable_http_semconv()  # back to the default for the tests after this one
