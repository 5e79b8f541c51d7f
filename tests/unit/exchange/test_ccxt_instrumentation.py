"""instrument_ccxt with the real ccxt (sync and async) against the simulated exchange."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import ccxt
import ccxt.async_support as ccxt_async
import pytest

import otel_botmon as botmon
from otel_botmon import conventions as conv
from otel_botmon.demo.serve import ExchangeThread, local_urls
from otel_botmon.instrument.ccxt import instrument_ccxt, is_ccxt_instrumented, uninstrument_ccxt
from tests.unit.exchange._clients import assert_no_secrets as _assert_no_secrets

API_KEY = "ccxtKEYq8ZsV2mNwXcT5yRbH1uJkLpOa"
API_SECRET = "ccxtSECRETf3Gh7JkL9mNbVcXz2QwErTyUi"
REQUESTS = conv.EXCHANGE_REQUESTS.name
USED = conv.EXCHANGE_RATELIMIT_USED.name
RETRY = conv.EXCHANGE_RATELIMIT_RETRY_AFTER.name
TRADES = conv.TRADES.name


@pytest.fixture
def server() -> Iterator[ExchangeThread]:
    with ExchangeThread(API_KEY, API_SECRET, seed=7) as running:
        yield running


@pytest.fixture(autouse=True)
def _uninstrumented() -> Iterator[None]:
    yield
    uninstrument_ccxt()


def make(module: Any, server: ExchangeThread) -> Any:
    exchange = module.binance({
        "apiKey": API_KEY, "secret": API_SECRET, "enableRateLimit": False,
        "options": {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False},
    })
    exchange.urls["api"] = local_urls(exchange.urls["api"], server.base_url)
    return exchange


def assert_no_secrets(telemetry: Any) -> None:
    _assert_no_secrets(telemetry, API_KEY, API_SECRET)


def requests_by(telemetry: Any, **attrs: Any) -> int:
    return int(telemetry.metric_value(REQUESTS, **attrs))


def test_sync_requests_are_spans_under_the_trade_with_metrics_and_rate_limits(
    telemetry: Any, server: ExchangeThread
) -> None:
    exchange = make(ccxt, server)
    instrument_ccxt(exchange)
    exchange.load_markets()
    with botmon.trade(symbol="BTCUSDT", side="BUY", quantity=0.001, price=45000.0):
        ticker = exchange.fetch_ticker("BTC/USDT")
        order = exchange.create_order("BTC/USDT", "market", "buy", 0.001)
    assert ticker["last"] > 0 and order["status"] == "closed"

    spans = {s.name: s for s in telemetry.spans()}
    trade = spans["trade BTCUSDT"]
    ticker_span, order_span = spans["exchange /api/v3/ticker/24hr"], spans["exchange /api/v3/order"]
    for span in (ticker_span, order_span):
        assert span.parent is not None and span.parent.span_id == trade.context.span_id
        assert span.attributes[conv.HTTP_RESPONSE_STATUS_CODE] == 200
        assert span.attributes["server.address"] == "127.0.0.1"
    assert order_span.attributes["http.request.method"] == "POST"
    assert requests_by(telemetry, exchange_name="binance", exchange_endpoint="/api/v3/order",
                       http_response_status_code=200) == 1
    assert requests_by(telemetry, exchange_endpoint="/api/v3/exchangeInfo") == 1
    used = telemetry.metric_point(USED, {conv.EXCHANGE_NAME: "binance",
                                         conv.RATELIMIT_BUDGET: "spot",
                                         conv.RATELIMIT_INTERVAL: "1m"})
    assert used.value >= 20
    assert telemetry.metric_value(TRADES, trading_outcome="filled") == 1
    assert_no_secrets(telemetry)


def test_rejections_inside_a_trade_are_rejected_not_errors(
    telemetry: Any, server: ExchangeThread
) -> None:
    exchange = make(ccxt, server)
    instrument_ccxt(exchange)
    exchange.load_markets()
    with pytest.raises(ccxt.InsufficientFunds), \
            botmon.trade(symbol="BTCUSDT", side="BUY", quantity=1000.0, price=45000.0):
        exchange.create_order("BTC/USDT", "market", "buy", 1000.0)  # -2010

    assert telemetry.metric_value(TRADES, trading_outcome="rejected") == 1
    assert requests_by(telemetry, exchange_endpoint="/api/v3/order",
                       http_response_status_code=400, error_type="InsufficientFunds") == 1
    trade = next(s for s in telemetry.spans() if s.name.startswith("trade"))
    assert "insufficient balance" in trade.attributes[conv.TRADING_REJECT_REASON]
    assert_no_secrets(telemetry)


@pytest.mark.parametrize(("call", "refused"), [
    ("fetch_order", "OrderNotFound"),  # -2013 Order does not exist.
    ("cancel_order", "OrderNotFound"),  # the same -2013 on DELETE
])
def test_order_not_found_inside_a_trade_is_rejected(
    telemetry: Any, server: ExchangeThread, call: str, refused: str
) -> None:
    exchange = make(ccxt, server)
    instrument_ccxt(exchange)
    exchange.load_markets()
    with pytest.raises(ccxt.OrderNotFound), botmon.trade(symbol="BTCUSDT", side="BUY"):
        getattr(exchange, call)("987654", "BTC/USDT")
    assert issubclass(ccxt.OrderNotFound, ccxt.InvalidOrder)  # the hierarchy is followed
    assert telemetry.metric_value(TRADES, trading_outcome="rejected") == 1
    assert telemetry.metric_value(TRADES, trading_outcome="error") == 0
    assert requests_by(telemetry, exchange_endpoint="/api/v3/order",
                       http_response_status_code=400, error_type=refused) == 1
    assert_no_secrets(telemetry)


@pytest.mark.parametrize(("fault", "status"), [("rate_limited", 429), ("banned", 418)])
def test_throttling_carries_its_status_and_retry_after_clears(
    telemetry: Any, server: ExchangeThread, fault: str, status: int
) -> None:
    exchange = make(ccxt, server)
    instrument_ccxt(exchange)
    exchange.load_markets()
    server.exchange.faults.retry_after_s = 120
    setattr(server.exchange.faults, fault, True)
    with pytest.raises(ccxt.DDoSProtection):
        exchange.fetch_balance()
    retry = {conv.EXCHANGE_NAME: "binance", conv.RATELIMIT_BUDGET: "spot"}
    assert telemetry.metric_point(RETRY, retry).value == 120
    assert requests_by(telemetry, http_response_status_code=status,
                       error_type="DDoSProtection") == 1

    setattr(server.exchange.faults, fault, False)
    exchange.fetch_balance()
    assert telemetry.metric_point(RETRY, retry).value == 0  # cleared by the next answer
    assert_no_secrets(telemetry)


def test_network_errors_are_errors(telemetry: Any, server: ExchangeThread) -> None:
    exchange = make(ccxt, server)
    instrument_ccxt(exchange)
    exchange.load_markets()
    server.stop()
    with pytest.raises(ccxt.NetworkError), botmon.trade(symbol="BTCUSDT", side="BUY"):
        exchange.fetch_ticker("BTC/USDT")
    assert telemetry.metric_value(TRADES, trading_outcome="error") == 1
    (point,) = [p for p in telemetry.metric_points(REQUESTS)
                if p.attributes[conv.EXCHANGE_ENDPOINT] == "/api/v3/ticker/24hr"]
    assert point.attributes[conv.ERROR_TYPE] in {"NetworkError", "ExchangeNotAvailable",
                                                 "RequestTimeout"}
    assert conv.HTTP_RESPONSE_STATUS_CODE not in point.attributes


def test_an_exchange_call_around_ccxt_counts_each_request_once(
    telemetry: Any, server: ExchangeThread
) -> None:
    exchange = make(ccxt, server)
    instrument_ccxt(exchange)
    exchange.load_markets()
    before = sum(p.value for p in telemetry.metric_points(REQUESTS))
    for _ in range(3):
        with botmon.exchange_call(exchange="binance", endpoint="fetch_ticker"):
            exchange.fetch_ticker("BTC/USDT")
    assert sum(p.value for p in telemetry.metric_points(REQUESTS)) - before == 3
    # the logical call has the status the request inside it got
    assert requests_by(telemetry, exchange_endpoint="fetch_ticker",
                       http_response_status_code=200) == 3
    outer = [s for s in telemetry.spans() if s.name == "exchange fetch_ticker"]
    assert [s.attributes[conv.HTTP_RESPONSE_STATUS_CODE] for s in outer] == [200, 200, 200]


async def test_async_ccxt_every_new_instance(telemetry: Any, server: ExchangeThread) -> None:
    instrument_ccxt()  # every exchange created from now on
    exchange = make(ccxt_async, server)
    try:
        assert is_ccxt_instrumented(exchange)
        await exchange.load_markets()
        async with botmon.trade(symbol="ETHUSDT", side="SELL", quantity=0.5, price=2400.0):
            await exchange.create_order("ETH/USDT", "market", "sell", 0.5)
        with pytest.raises(ccxt.InsufficientFunds):
            async with botmon.trade(symbol="ETHUSDT", side="SELL", quantity=500.0):
                await exchange.create_order("ETH/USDT", "market", "sell", 500.0)
    finally:
        await exchange.close()
    assert telemetry.metric_value(TRADES, trading_outcome="filled") == 1
    assert telemetry.metric_value(TRADES, trading_outcome="rejected") == 1
    assert requests_by(telemetry, exchange_endpoint="/api/v3/order",
                       http_response_status_code=400) == 1
    assert_no_secrets(telemetry)

    uninstrument_ccxt()
    assert not is_ccxt_instrumented(make(ccxt_async, server))


@pytest.mark.parametrize("bad", [object(), "binance", 42, ccxt])
def test_bad_input_is_logged_once_and_counted_never_raised(
    telemetry: Any, bad: object, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="otel_botmon")
    for _ in range(2):
        instrument_ccxt(bad)
    lines = [r for r in caplog.records if "not a ccxt exchange" in r.getMessage()]
    assert len(lines) == 1
    assert telemetry.metric_value(conv.INTERNAL_ERRORS.name, botmon_component="ccxt") == 2


def test_an_exchange_outside_the_table_is_still_traced(
    telemetry: Any, server: ExchangeThread, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="otel_botmon")
    exchange = make(ccxt, server)
    exchange.id = "mybroker"
    instrument_ccxt(exchange)
    exchange.fetch_time()
    assert requests_by(telemetry, exchange_name="mybroker",
                       exchange_endpoint="/api/v3/time") == 1
    assert len([r for r in caplog.records if "mybroker" in r.getMessage()]) == 1
    assert telemetry.metric_value(conv.INTERNAL_ERRORS.name, botmon_component="ccxt") == 1


@pytest.mark.parametrize("fault,status", [("rate_limited", 429), ("banned", 418)])
def test_exchange_call_alone_finds_the_status_on_ccxt_exception_chain(
    telemetry: Any, server: ExchangeThread, fault: str, status: int
) -> None:
    exchange = make(ccxt, server)  # not instrumented: the README's decorators only
    exchange.load_markets()
    setattr(server.exchange.faults, fault, True)
    with pytest.raises(ccxt.DDoSProtection), \
            botmon.exchange_call(exchange="binance", endpoint="fetch_balance"):
        exchange.fetch_balance()
    assert requests_by(telemetry, exchange_endpoint="fetch_balance",
                       http_response_status_code=status,
                       error_type="DDoSProtection") == 1


def test_every_secret_credential_ccxt_takes_is_registered() -> None:
    """A bearer ``token`` or a ``twofa`` seed is as secret as the key: whatever credential
    fields ccxt declares, the instrumented instance's values are redacted everywhere."""
    from otel_botmon import redaction

    fields = {"apiKey": "kEy-0123456789ab", "secret": "sEc-0123456789ab",
              "password": "pAss-0123456789", "uid": "uId-0123456789ab",
              "privateKey": "0x" + "ab" * 32, "walletAddress": "0x" + "cd" * 20,
              "token": "tOk-0123456789abcdef", "twofa": "JBSWY3DPEHPK3PXP"}
    assert set(fields) >= {name for name in ccxt.binance().requiredCredentials
                           if name not in ("accountId", "login")}
    redaction.forget_secrets()
    try:
        exchange = ccxt.binance(dict(fields))
        instrument_ccxt(exchange)
        text = " ".join(fields.values())
        redacted = redaction.redact_text(text)
        for name, value in fields.items():
            assert value not in redacted, name
    finally:
        redaction.forget_secrets()
