"""instrument_requests / instrument_aiohttp / count-once with real exchange libraries.

python-binance (requests and aiohttp), python-okx (httpx) and ccxt, all against the
simulated exchange on 127.0.0.1. (binance-connector speaks the same requests.Session, but
it installs the same top-level ``binance`` package as python-binance, so one environment
cannot hold both: python-binance, the more used, is the one tested.)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import ccxt
import ccxt.async_support as ccxt_async
import pytest
from binance import AsyncClient
from binance.client import Client
from binance.exceptions import BinanceAPIException
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import otel_botmon as botmon
from otel_botmon import conventions as conv
from otel_botmon.demo.serve import ExchangeThread, local_urls
from otel_botmon.instrument.aiohttp_client import is_aiohttp_instrumented
from otel_botmon.instrument.requests_client import is_requests_instrumented
from tests.unit.exchange._clients import assert_no_secrets as _assert_no_secrets

API_KEY = "httpKEYx8ZsV2mNwXcT5yRbH1uJkLpOa"
API_SECRET = "httpSECRETf3Gh7JkL9mNbVcXz2QwErTy"
REQUESTS = conv.EXCHANGE_REQUESTS.name
USED = conv.EXCHANGE_RATELIMIT_USED.name
TRADES = conv.TRADES.name


@pytest.fixture
def server() -> Iterator[ExchangeThread]:
    with ExchangeThread(API_KEY, API_SECRET, seed=3) as running:
        yield running


@pytest.fixture(autouse=True)
def _uninstrumented() -> Iterator[None]:
    yield
    botmon.uninstrument_requests()
    botmon.uninstrument_aiohttp()
    botmon.uninstrument_ccxt()
    botmon.uninstrument_httpx()


def total_requests(telemetry: Any) -> int:
    return sum(p.value for p in telemetry.metric_points(REQUESTS))


def requests_by(telemetry: Any, **attrs: Any) -> int:
    return int(telemetry.metric_value(REQUESTS, **attrs))


def assert_no_secrets(telemetry: Any) -> None:
    _assert_no_secrets(telemetry, API_KEY, API_SECRET)


def binance_client(server: ExchangeThread) -> Client:
    client = Client(API_KEY, API_SECRET, ping=False)
    client.API_URL = server.base_url + "/api"
    return client


def test_python_binance_over_requests_stable_conventions_redacted_and_measured(
    telemetry: Any, server: ExchangeThread
) -> None:
    botmon.instrument_requests(exchange="binance")
    client = binance_client(server)
    assert is_requests_instrumented(client.session)
    client.ping()
    client.get_symbol_ticker(symbol="BTCUSDT")
    with botmon.trade(symbol="BTCUSDT", side="BUY", quantity=0.01, price=45000.0):
        client.create_order(symbol="BTCUSDT", side="BUY", type="MARKET", quantity=0.01)

    order_spans = [s for s in telemetry.spans() if s.name == "POST"]
    (order_span,) = order_spans
    attrs = order_span.attributes
    assert attrs["http.request.method"] == "POST"
    assert attrs["http.response.status_code"] == 200
    assert attrs["server.address"] == "127.0.0.1"
    assert "http.url" not in attrs and "http.method" not in attrs  # old conventions off
    trade = next(s for s in telemetry.spans() if s.name.startswith("trade"))
    assert order_span.parent.span_id == trade.context.span_id
    metrics = telemetry.metrics()
    assert "http.client.request.duration" in metrics
    assert metrics["http.client.request.duration"].unit == "s"
    assert "http.client.duration" not in metrics
    assert requests_by(telemetry, exchange_endpoint="/api/v3/order",
                       http_response_status_code=200) == 1
    assert total_requests(telemetry) == 3
    used = telemetry.metric_point(USED, {conv.EXCHANGE_NAME: "binance",
                                         conv.RATELIMIT_BUDGET: "spot",
                                         conv.RATELIMIT_INTERVAL: "1m"})
    assert used.value >= 3
    assert_no_secrets(telemetry)


def test_one_instrumented_session_and_its_rejections(
    telemetry: Any, server: ExchangeThread
) -> None:
    client = binance_client(server)
    botmon.instrument_requests(client.session, exchange="binance")
    other = binance_client(server)  # another session: not instrumented
    assert is_requests_instrumented(client.session)
    assert not is_requests_instrumented(other.session)
    assert client.get_symbol_ticker(symbol="ETHUSDT")["symbol"] == "ETHUSDT"
    other.get_symbol_ticker(symbol="ETHUSDT")
    with pytest.raises(BinanceAPIException):
        client.create_order(symbol="ETHUSDT", side="BUY", type="MARKET", quantity=10_000)
    assert requests_by(telemetry, exchange_endpoint="/api/v3/order",
                       http_response_status_code=400, error_type="400") == 1
    assert total_requests(telemetry) == 2
    spans = [s for s in telemetry.spans() if s.name == "POST"]
    assert [s.attributes["http.response.status_code"] for s in spans] == [400]
    assert_no_secrets(telemetry)


def test_exchange_call_around_requests_counts_each_request_once(
    telemetry: Any, server: ExchangeThread
) -> None:
    botmon.instrument_requests(exchange="binance")
    client = binance_client(server)
    for _ in range(6):
        with botmon.exchange_call(exchange="binance", endpoint="ticker"):
            client.get_symbol_ticker(symbol="BTCUSDT")
    assert total_requests(telemetry) == 6
    assert requests_by(telemetry, exchange_endpoint="ticker",
                       http_response_status_code=200) == 6


def test_ccxt_over_instrumented_requests_counts_once(
    telemetry: Any, server: ExchangeThread
) -> None:
    botmon.instrument_requests()
    botmon.instrument_ccxt()
    exchange = ccxt.binance({"apiKey": API_KEY, "secret": API_SECRET,
                             "options": {"fetchMarkets": {"types": ["spot"]}}})
    exchange.urls["api"] = local_urls(exchange.urls["api"], server.base_url)
    exchange.load_markets()
    exchange.fetch_ticker("BTC/USDT")
    http_spans = [s for s in telemetry.spans() if s.name == "GET"]
    ccxt_spans = [s for s in telemetry.spans() if s.name.startswith("exchange ")]
    assert len(http_spans) == len(ccxt_spans) == total_requests(telemetry) >= 3
    by_id = {s.context.span_id: s for s in ccxt_spans}
    assert all(s.parent.span_id in by_id for s in http_spans)  # HTTP span under ccxt's


def test_python_okx_httpx_inside_exchange_call_counts_once_with_inner_status(
    telemetry: Any, server: ExchangeThread
) -> None:
    import okx.MarketData as MarketData

    api = MarketData.MarketAPI(flag="0", domain=server.base_url)
    botmon.instrument_httpx(api, exchange="okx")
    for _ in range(6):
        with pytest.raises(ValueError), \
                botmon.exchange_call(exchange="okx", endpoint="get_ticker"):
            api.get_ticker(instId="BTC-USDT")  # the Binance-speaking server: 404
    assert total_requests(telemetry) == 6  # was 11-12 with both layers counting
    assert requests_by(telemetry, exchange_endpoint="get_ticker",
                       http_response_status_code=404) == 6


async def test_python_binance_async_over_aiohttp(telemetry: Any, server: ExchangeThread) -> None:
    botmon.instrument_aiohttp(exchange="binance")
    client = AsyncClient(API_KEY, API_SECRET)
    client.API_URL = server.base_url + "/api"
    try:
        assert is_aiohttp_instrumented(client.session)
        await client.get_symbol_ticker(symbol="BNBUSDT")
        async with botmon.trade(symbol="BNBUSDT", side="SELL", quantity=1.0, price=310.0):
            await client.create_order(symbol="BNBUSDT", side="SELL", type="MARKET", quantity=1)
    finally:
        await client.close_connection()
    (order_span,) = [s for s in telemetry.spans() if s.name == "POST"]
    assert order_span.attributes["http.response.status_code"] == 200
    assert order_span.attributes["url.full"].endswith("/api/v3/order")
    trade = next(s for s in telemetry.spans() if s.name.startswith("trade"))
    assert order_span.parent.span_id == trade.context.span_id
    duration = telemetry.metrics()["http.client.request.duration"]
    assert duration.unit == "s"
    assert {p.attributes["http.request.method"] for p in duration.data.data_points} == {
        "GET", "POST"}
    assert requests_by(telemetry, exchange_endpoint="/api/v3/order") == 1
    assert telemetry.metric_value(TRADES, trading_outcome="filled") == 1
    assert_no_secrets(telemetry)


async def test_ccxt_async_over_instrumented_aiohttp_counts_once(
    telemetry: Any, server: ExchangeThread
) -> None:
    botmon.instrument_aiohttp()
    botmon.instrument_ccxt()
    exchange = ccxt_async.binance({"apiKey": API_KEY, "secret": API_SECRET,
                                   "options": {"fetchMarkets": {"types": ["spot"]}}})
    exchange.urls["api"] = local_urls(exchange.urls["api"], server.base_url)
    try:
        await exchange.load_markets()
        with pytest.raises(ccxt.InsufficientFunds):
            await exchange.create_order("BTC/USDT", "market", "buy", 1000.0)
    finally:
        await exchange.close()
    http_spans = [s for s in telemetry.spans() if s.name in ("GET", "POST")]
    assert len(http_spans) == total_requests(telemetry) >= 4
    assert requests_by(telemetry, exchange_endpoint="/api/v3/order",
                       http_response_status_code=400, error_type="InsufficientFunds") == 1
    assert_no_secrets(telemetry)


def test_bad_arguments_are_rejected_at_the_edge() -> None:
    with pytest.raises(TypeError):
        botmon.instrument_requests(session=object())
    with pytest.raises(TypeError):
        botmon.instrument_aiohttp(session="not a session")
    with pytest.raises(TypeError):
        botmon.instrument_requests(exchange="")


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(blocks=st.lists(st.tuples(st.booleans(), st.integers(1, 3)), min_size=1, max_size=4))
def test_count_once_holds_for_any_mix_of_logical_calls_and_bare_requests(
    telemetry: Any, server: ExchangeThread, blocks: list[tuple[bool, int]]
) -> None:
    """A block inside exchange_call is one point whatever it does; a bare request is one."""
    botmon.instrument_requests(exchange="binance")
    client = binance_client(server)
    before = total_requests(telemetry)
    for wrapped, n in blocks:
        if wrapped:
            with botmon.exchange_call(exchange="binance", endpoint="block"):
                for _ in range(n):
                    client.get_symbol_ticker(symbol="ETHUSDT")
        else:
            for _ in range(n):
                client.get_symbol_ticker(symbol="ETHUSDT")
    expected = sum(1 if wrapped else n for wrapped, n in blocks)
    assert total_requests(telemetry) - before == expected


async def test_one_aiohttp_session_and_uninstrument(telemetry: Any, server: ExchangeThread) -> None:
    client = AsyncClient(API_KEY, API_SECRET)  # its session exists before instrumenting
    client.API_URL = server.base_url + "/api"
    try:
        botmon.instrument_aiohttp(client.session, exchange="binance")
        assert is_aiohttp_instrumented(client.session) and not is_aiohttp_instrumented()
        await client.get_symbol_ticker(symbol="BTCUSDT")
        assert total_requests(telemetry) == 1
        botmon.uninstrument_aiohttp(client.session)
        assert not is_aiohttp_instrumented(client.session)
        await client.get_symbol_ticker(symbol="BTCUSDT")
        assert total_requests(telemetry) == 1
    finally:
        await client.close_connection()


def test_uninstrument_requests_restores_the_session(
    telemetry: Any, server: ExchangeThread
) -> None:
    import requests

    original = requests.Session.send
    botmon.instrument_requests(exchange="binance")
    client = binance_client(server)
    client.get_symbol_ticker(symbol="BTCUSDT")
    botmon.uninstrument_requests()
    assert requests.Session.send is original
    client.get_symbol_ticker(symbol="BTCUSDT")
    assert total_requests(telemetry) == 1
    assert len([s for s in telemetry.spans() if s.name == "GET"]) == 1
