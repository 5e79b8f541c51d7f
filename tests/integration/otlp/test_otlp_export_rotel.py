"""Real OTLP (http/protobuf and grpc) through the rotel collector to a decoding receiver.

The bot makes signed Binance-style requests (``signature=`` in the query, ``X-MBX-APIKEY``
header) to a loopback exchange with every header captured on the spans; the spans and
metrics must arrive intact and the secrets must appear nowhere in what was exported.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from otel_botmon import conventions as conv
from otel_botmon import telemetry
from otel_botmon.instrument.exchange import exchange_call, record_api_call
from otel_botmon.instrument.httpx import instrument_httpx
from tests.integration.otlp.fake_exchange import Answer, FakeExchange
from tests.otlp_receiver import OtlpReceiver, RotelCollector, attributes

pytestmark = pytest.mark.integration

SIGNATURE = "5f1c0ffee4b1d5ecre7519"
API_KEY = "Xk3vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
QUERY = ("symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.001&timestamp=1700000000"
         f"&signature={SIGNATURE}")
EXPECTED_METRICS = {
    conv.EXCHANGE_REQUESTS.name, conv.EXCHANGE_REQUEST_DURATION.name,
    conv.EXCHANGE_RATELIMIT_USED.name,
}


def point(receiver: OtlpReceiver, name: str, attrs: dict[str, Any]) -> Any:
    for p in receiver.data_points(name):
        if attributes(p.attributes) == attrs:
            return p
    have = [attributes(p.attributes) for p in receiver.data_points(name)]
    raise AssertionError(f"{name}: no point with {attrs}; received {have}")


def run_signed_calls(exchange: FakeExchange) -> None:
    """What a bot does: one order that goes through, one the exchange rejects."""
    exchange.respond("/api/v3/order", Answer(headers={"X-MBX-USED-WEIGHT-1M": "7"}))
    exchange.respond("/api/v3/openOrders", Answer(status=400, body=b'{"code":-1022}'))
    headers = {"X-MBX-APIKEY": API_KEY}
    with httpx.Client() as client:
        with exchange_call(exchange="binance", endpoint="create_order") as call:
            response = client.post(exchange.url(f"/api/v3/order?{QUERY}"), headers=headers)
            call.status_code = response.status_code
        with pytest.raises(httpx.HTTPStatusError), \
                exchange_call(exchange="binance", endpoint="cancel_orders"):
            # the exception message carries the full signed URL
            client.delete(exchange.url(f"/api/v3/openOrders?{QUERY}"),
                          headers=headers).raise_for_status()
    record_api_call(endpoint="get_account_info", response_time=150.0, status_code=200)


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_spans_and_metrics_arrive_intact_without_secrets(
    protocol: str,
    otlp_receiver: OtlpReceiver,
    rotel: RotelCollector,
    exchange_server: FakeExchange,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST", ".*")
    monkeypatch.setenv("OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_RESPONSE", ".*")
    tel = telemetry.configure(
        "otlp-bot", bot_name="otlp-it", exchange="binance",
        otlp_endpoint=rotel.endpoint(protocol), otlp_protocol=protocol, set_global=False,
    )
    try:
        instrument_httpx(exchange="binance")
        run_signed_calls(exchange_server)
    finally:
        # Shut down (flushing everything) while the collector is still up.
        assert tel.shutdown(timeout_s=10)

    otlp_receiver.wait_for(
        lambda r: {"exchange create_order", "exchange cancel_orders",
                   "exchange get_account_info"} <= set(r.span_names())
        and r.metric_names() >= EXPECTED_METRICS,
        timeout=20,
    )
    # The secrets went over the wire to the exchange...
    assert all(r.headers["x-mbx-apikey"] == API_KEY for r in exchange_server.requests)
    assert all(SIGNATURE in r.path for r in exchange_server.requests)
    # ...and nowhere into what the collector exported.
    assert not otlp_receiver.contains_bytes(SIGNATURE.encode())
    assert not otlp_receiver.contains_bytes(API_KEY.encode())

    spans = {span.name: (resource, scope, span) for resource, scope, span in otlp_receiver.spans()}
    resource, scope, order = spans["exchange create_order"]
    assert resource["service.name"] == "otlp-bot"
    assert resource[conv.BOT_NAME] == "otlp-it"
    assert scope == conv.INSTRUMENTATION_SCOPE
    assert attributes(order.attributes) == {
        conv.EXCHANGE_NAME: "binance", conv.EXCHANGE_ENDPOINT: "create_order",
        conv.HTTP_RESPONSE_STATUS_CODE: 200,
    }
    http_spans = [s for _, scope_name, s in otlp_receiver.spans() if "httpx" in scope_name]
    assert len(http_spans) == 2
    post = next(s for s in http_spans if s.parent_span_id == order.span_id)
    assert post.trace_id == order.trace_id
    http_attrs = attributes(post.attributes)
    assert http_attrs["http.request.header.x_mbx_apikey"] == ["REDACTED"]
    assert (http_attrs.get("http.url") or http_attrs["url.full"]).endswith(
        "&timestamp=1700000000&signature=REDACTED"
    )
    _, _, cancel = spans["exchange cancel_orders"]
    (exception,) = [e for e in cancel.events if e.name == "exception"]
    assert "signature=REDACTED" in attributes(exception.attributes)["exception.message"]

    base = {conv.EXCHANGE_NAME: "binance"}
    assert point(otlp_receiver, conv.EXCHANGE_REQUESTS.name, {
        **base, conv.EXCHANGE_ENDPOINT: "create_order", conv.HTTP_RESPONSE_STATUS_CODE: 200,
    }).as_int == 1
    assert point(otlp_receiver, conv.EXCHANGE_REQUESTS.name, {
        **base, conv.EXCHANGE_ENDPOINT: "cancel_orders", conv.HTTP_RESPONSE_STATUS_CODE: 400,
        conv.ERROR_TYPE: "HTTPStatusError",
    }).as_int == 1
    # Each HTTP request counted once: by the exchange_call around it, not again by httpx.
    endpoints = sorted({attributes(p.attributes)[conv.EXCHANGE_ENDPOINT]
                        for p in otlp_receiver.data_points(conv.EXCHANGE_REQUESTS.name)})
    assert endpoints == ["cancel_orders", "create_order", "get_account_info"]
    account = point(otlp_receiver, conv.EXCHANGE_REQUEST_DURATION.name, {
        **base, conv.EXCHANGE_ENDPOINT: "get_account_info", conv.HTTP_RESPONSE_STATUS_CODE: 200,
    })
    assert account.count == 1
    assert account.sum == pytest.approx(0.150)
    assert list(account.explicit_bounds) == list(conv.DURATION_BUCKETS_S)
    weight = point(otlp_receiver, conv.EXCHANGE_RATELIMIT_USED.name, {
        **base, conv.RATELIMIT_BUDGET: "spot", conv.RATELIMIT_INTERVAL: "1m",
    })
    assert weight.as_double == 7.0


def test_a_batch_of_large_spans_reaches_the_receiver_in_requests_within_4_mib(
    otlp_receiver: OtlpReceiver,
) -> None:
    # 400 spans of ~20 KB (long exchange error texts): one 8 MB request over HTTP before;
    # now each request stays within 4 MiB and every span arrives once.
    tel = telemetry.configure("big-spans", otlp_endpoint=otlp_receiver.endpoint,
                              set_global=False)
    try:
        tracer = tel.tracer_provider.get_tracer("t")
        for i in range(400):
            tracer.start_span(f"big {i}", attributes={"error.message": f"{i:05d}" * 4_000}
                              ).end()
        assert tel.force_flush(30)
    finally:
        assert tel.shutdown(timeout_s=10)
    names = [name for name in otlp_receiver.span_names() if name.startswith("big ")]
    assert sorted(names) == sorted(f"big {i}" for i in range(400))
    traces = [body for body in otlp_receiver.raw_bodies if b"big " in body]
    assert len(traces) >= 2
    assert all(len(body) <= 4 * 1024 * 1024 for body in traces)
