"""Rate-limit headers end to end: real HTTP clients, a loopback exchange, the gauges.

The exchange sends nonsense next to a good reading (a Retry-After of 1e308 s, NaN orders,
an 8 KB weight: aiohttp refuses longer header lines); no exchange is named and 127.0.0.1
is no exchange's host, so the readings are Binance's because its headers say so.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import aiohttp
import httpx
import pytest
import requests

import otel_botmon as botmon
from otel_botmon import conventions as conv
from otel_botmon.testing import TelemetryCapture, capture
from tests.integration.otlp.fake_exchange import Answer, FakeExchange

PATH = "/api/v3/order"
NONSENSE = {
    "Retry-After": "1e308",
    "X-MBX-USED-WEIGHT-1M": "1200",
    "X-MBX-ORDER-COUNT-10S": "NaN",
    "X-SAPI-USED-IP-WEIGHT-1M": "9" * 8_000,
}


def _requests(url: str) -> int:
    with requests.Session() as session:
        botmon.instrument_requests(session)
        return session.get(url, timeout=10).status_code


def _httpx(url: str) -> int:
    with httpx.Client() as client:
        botmon.instrument_httpx(client)
        return client.get(url, timeout=10).status_code


def _aiohttp(url: str) -> int:
    async def call() -> int:
        async with aiohttp.ClientSession() as session:
            botmon.instrument_aiohttp(session)
            async with session.get(url) as response:
                await response.read()
                return response.status

    return asyncio.run(call())


@pytest.fixture
def unnamed() -> Iterator[TelemetryCapture]:
    with capture("test-bot", bot_name="test", strategy="unit") as cap:
        yield cap
    botmon.uninstrument_requests()
    botmon.uninstrument_aiohttp()
    botmon.uninstrument_httpx()


@pytest.mark.parametrize("call", [_requests, _httpx, _aiohttp],
                         ids=["requests", "httpx", "aiohttp"])
def test_nonsense_headers_from_a_real_exchange_response_give_only_the_sound_reading(
    call: Callable[[str], int], unnamed: TelemetryCapture, exchange_server: FakeExchange,
) -> None:
    exchange_server.respond(PATH, Answer(status=429, headers=dict(NONSENSE)))
    assert call(exchange_server.url(PATH)) == 429

    spot = {conv.EXCHANGE_NAME: "binance", conv.RATELIMIT_BUDGET: "spot",
            conv.RATELIMIT_INTERVAL: "1m"}
    assert unnamed.metric_point(conv.EXCHANGE_RATELIMIT_USED.name, spot).value == 1200
    # spot's 6000 a minute, not USD-M's 2400
    assert unnamed.metric_point(conv.EXCHANGE_RATELIMIT_UTILIZATION.name, spot).value == \
        pytest.approx(0.2)
    assert unnamed.metric_points(conv.EXCHANGE_RATELIMIT_RETRY_AFTER.name) == []
    assert unnamed.metric_points(conv.EXCHANGE_RATELIMIT_ORDERS.name) == []
    assert len(unnamed.metric_points(conv.EXCHANGE_RATELIMIT_USED.name)) == 1
    assert unnamed.metric_value(conv.INTERNAL_ERRORS.name, botmon_component="ratelimit") == 3


# --- one request, one exchange name; the method picks Gate.io's budget --------------------

GATE_ORDERS = "/api/v4/spot/orders"
GATE_LIST = {"X-Gate-RateLimit-Limit": "200", "X-Gate-RateLimit-Requests-Remain": "150"}
GATE_PLACE = {"X-Gate-RateLimit-Limit": "10", "X-Gate-RateLimit-Requests-Remain": "1"}


def _requests_method(url: str, method: str) -> int:
    with requests.Session() as session:
        botmon.instrument_requests(session, exchange="gate")
        return session.request(method, url, timeout=10).status_code


def _httpx_method(url: str, method: str) -> int:
    with httpx.Client() as client:
        botmon.instrument_httpx(client, exchange="gate")
        return client.request(method, url, timeout=10).status_code


def _aiohttp_method(url: str, method: str) -> int:
    async def call() -> int:
        async with aiohttp.ClientSession() as session:
            botmon.instrument_aiohttp(session, exchange="gate")
            async with session.request(method, url) as response:
                await response.read()
                return response.status

    return asyncio.run(call())


def _ccxt_method(url: str, method: str) -> int:
    import ccxt

    from otel_botmon.demo.serve import local_urls

    gate = ccxt.gate({"apiKey": "gateKEYq8ZsV2mNwXcT5y", "secret": "gateSECRETf3Gh7JkL9m"})
    gate.urls["api"] = local_urls(gate.urls["api"], url.split("/api/", 1)[0])
    botmon.instrument_ccxt(gate)
    try:
        if method == "GET":
            gate.privateSpotGetOrders({"currency_pair": "BTC_USDT", "status": "open"})
        else:
            gate.privateSpotPostOrders({"currency_pair": "BTC_USDT", "side": "buy",
                                        "amount": "1", "price": "1"})
    finally:
        botmon.uninstrument_ccxt(gate)
    return 200


@pytest.mark.parametrize("call", [_requests_method, _httpx_method, _aiohttp_method,
                                  _ccxt_method], ids=["requests", "httpx", "aiohttp", "ccxt"])
def test_gate_get_and_post_on_one_path_are_separate_budgets(
    call: Callable[[str, str], int], unnamed: TelemetryCapture, exchange_server: FakeExchange,
) -> None:
    """Gate.io lists orders (GET /spot/orders, 200 per 10 s) and places them (POST, 10 a
    second per market) on one path; the method must reach the reader, or the POST's 9 of
    10 in a second is labelled a 10 s window."""
    exchange_server.respond(GATE_ORDERS, Answer(headers=dict(GATE_LIST), body=b"[]"), "GET")
    exchange_server.respond(GATE_ORDERS, Answer(headers=dict(GATE_PLACE), body=b"{}"), "POST")
    assert call(exchange_server.url(GATE_ORDERS), "GET") == 200
    assert call(exchange_server.url(GATE_ORDERS), "POST") == 200

    used = {(p.attributes[conv.RATELIMIT_BUDGET], p.attributes[conv.RATELIMIT_INTERVAL]): p.value
            for p in unnamed.metric_points(conv.EXCHANGE_RATELIMIT_USED.name,
                                           exchange_name="gate")}
    assert used == {("api /api/v4/spot/orders", "10s"): 50,
                    ("orders /api/v4/spot/orders", "1s"): 9}


def _unnamed_requests(url: str) -> None:
    with requests.Session() as session:
        botmon.instrument_requests(session)
        session.get(url, timeout=10)


def _unnamed_httpx(url: str) -> None:
    with httpx.Client() as client:
        botmon.instrument_httpx(client)
        client.get(url, timeout=10)


def _unnamed_aiohttp(url: str) -> None:
    async def call() -> None:
        async with aiohttp.ClientSession() as session:
            botmon.instrument_aiohttp(session)
            async with session.get(url) as response:
                await response.read()

    asyncio.run(call())


@pytest.mark.parametrize("call", [_unnamed_requests, _unnamed_httpx, _unnamed_aiohttp],
                         ids=["requests", "httpx", "aiohttp"])
@pytest.mark.parametrize("wrapped", [False, True], ids=["alone", "in-exchange-call"])
def test_one_request_has_one_exchange_name_on_every_metric(
    call: Callable[[str], None], wrapped: bool, unnamed: TelemetryCapture,
    exchange_server: FakeExchange,
) -> None:
    """No exchange named, a loopback host: the response's Binance headers name the
    exchange on the rate-limit gauges, and so on the request count, its latency and the
    exchange_call span around it (they said ``unknown``)."""
    if wrapped:
        with botmon.exchange_call(endpoint="fetch_order"):
            call(exchange_server.url(PATH))
    else:
        call(exchange_server.url(PATH))

    names = {p.attributes[conv.EXCHANGE_NAME]
             for spec in (conv.EXCHANGE_REQUESTS, conv.EXCHANGE_REQUEST_DURATION,
                          conv.EXCHANGE_RATELIMIT_USED)
             for p in unnamed.metric_points(spec.name)}
    assert names == {"binance"}
    assert all(s.attributes.get(conv.EXCHANGE_NAME) in (None, "binance")
               for s in unnamed.spans())


def test_ccxt_alias_and_its_gauges_share_the_table_name(
    unnamed: TelemetryCapture, exchange_server: FakeExchange,
) -> None:
    """A ccxt ``binanceusdm`` request was counted as ``binanceusdm`` while its weight
    gauge said ``binance``; span, counter and gauge now say ``binance``."""
    import ccxt

    from otel_botmon.demo.serve import local_urls

    exchange_server.respond("/fapi/v1/time", Answer(body=b'{"serverTime": 1}'))
    usdm = ccxt.binanceusdm()
    usdm.urls["api"] = local_urls(usdm.urls["api"], exchange_server.base_url)
    botmon.instrument_ccxt(usdm)
    try:
        usdm.fetch_time()
    finally:
        botmon.uninstrument_ccxt(usdm)
    names = {p.attributes[conv.EXCHANGE_NAME]
             for spec in (conv.EXCHANGE_REQUESTS, conv.EXCHANGE_RATELIMIT_USED)
             for p in unnamed.metric_points(spec.name)}
    assert names == {"binance"}
    span = next(s for s in unnamed.spans() if s.name == "exchange /fapi/v1/time")
    assert span.attributes[conv.EXCHANGE_NAME] == "binance"


@pytest.mark.parametrize("call", [_requests, _httpx, _aiohttp],
                         ids=["requests", "httpx", "aiohttp"])
def test_a_header_sent_twice_reads_the_same_in_every_client(
    call: Callable[[str], int], unnamed: TelemetryCapture, exchange_server: FakeExchange,
) -> None:
    """The server (or a gateway in front of it) sends the weight twice: requests joins
    the values ("1300, 1200": was skipped as bad input), httpx and aiohttp keep both (the
    last one won). Every client now reads the most used, 1300."""
    exchange_server.respond(PATH, Answer(headers=[("X-MBX-USED-WEIGHT-1M", "1300"),
                                                  ("X-MBX-USED-WEIGHT-1M", "1200")]))
    assert call(exchange_server.url(PATH)) == 200
    spot = {conv.EXCHANGE_NAME: "binance", conv.RATELIMIT_BUDGET: "spot",
            conv.RATELIMIT_INTERVAL: "1m"}
    assert unnamed.metric_point(conv.EXCHANGE_RATELIMIT_USED.name, spot).value == 1300
    assert unnamed.metric_value(conv.INTERNAL_ERRORS.name, botmon_component="ratelimit") == 0
