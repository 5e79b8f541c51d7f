"""pybit (Bybit's own client, on requests) through ``instrument_requests``.

Real pybit from the index against the simulated exchange's Bybit v5 routes, which sign
like Bybit (``X-BAPI-*`` headers) and answer with Bybit's per-second ``X-Bapi-Limit*``
headers, ``retCode`` errors over HTTP 200 and HTTP 403 for an IP sending too much.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pybit.exceptions import FailedRequestError, InvalidRequestError
from pybit.unified_trading import HTTP

import otel_botmon as botmon
from otel_botmon import conventions as conv
from otel_botmon.demo.bybit import LIMITS_PER_SECOND
from otel_botmon.demo.serve import ExchangeThread
from tests.unit.exchange._clients import assert_no_secrets

API_KEY = "bybitKEYq7RtY2uIoP3aSdF9gHjKlZx"
API_SECRET = "bybitSECRETm4NbV8cXz1QwErTyUiOpL"
REQUESTS = conv.EXCHANGE_REQUESTS.name


def v5_1s(path: str) -> dict[str, str]:
    """Bybit limits each endpoint on its own: one budget per path."""
    return {conv.EXCHANGE_NAME: "bybit", conv.RATELIMIT_BUDGET: f"v5 {path}",
            conv.RATELIMIT_INTERVAL: "1s"}


@pytest.fixture
def server() -> Iterator[ExchangeThread]:
    with ExchangeThread(API_KEY, API_SECRET, seed=5) as running:
        yield running


@pytest.fixture(autouse=True)
def _uninstrumented() -> Iterator[None]:
    yield
    botmon.uninstrument_requests()


def bybit(server: ExchangeThread) -> HTTP:
    session = HTTP(api_key=API_KEY, api_secret=API_SECRET, max_retries=1)
    session.endpoint = server.base_url  # instead of https://api.bybit.com
    return session


def total_requests(telemetry: Any) -> int:
    return sum(p.value for p in telemetry.metric_points(REQUESTS))


def test_pybit_requests_are_traced_measured_redacted_with_bybit_rate_limits(
    telemetry: Any, server: ExchangeThread
) -> None:
    botmon.instrument_requests(exchange="bybit")
    session = bybit(server)
    signatures: list[str] = []
    session.client.hooks["response"].append(
        lambda r, *a, **k: signatures.append(r.request.headers.get("X-BAPI-SIGN", "")))
    ticker = session.get_tickers(category="spot", symbol="BTCUSDT")
    assert ticker["result"]["list"][0]["symbol"] == "BTCUSDT"
    session.get_wallet_balance(accountType="UNIFIED")
    with botmon.trade(symbol="BTCUSDT", side="BUY", quantity=0.01, price=45000.0):
        placed = session.place_order(category="spot", symbol="BTCUSDT", side="Buy",
                                     orderType="Market", qty="0.01")
    assert placed["retCode"] == 0

    (order_span,) = [s for s in telemetry.spans() if s.name == "POST"]
    attrs = order_span.attributes
    assert attrs["http.response.status_code"] == 200
    assert attrs["url.full"].endswith("/v5/order/create")
    assert attrs["server.address"] == "127.0.0.1"
    trade = next(s for s in telemetry.spans() if s.name.startswith("trade"))
    assert order_span.parent.span_id == trade.context.span_id
    assert total_requests(telemetry) == 3  # each request once
    assert telemetry.metric_value(REQUESTS, exchange_name="bybit",
                                  exchange_endpoint="/v5/order/create",
                                  http_response_status_code=200) == 1
    # each endpoint's own reading: the order's (limit 20 a second, 19 left) does not
    # replace the wallet's (limit 50), nor the other way round
    for path in ("/v5/order/create", "/v5/account/wallet-balance"):
        used = telemetry.metric_point(conv.EXCHANGE_RATELIMIT_USED.name, v5_1s(path))
        assert used.value == 1
        util = telemetry.metric_point(conv.EXCHANGE_RATELIMIT_UTILIZATION.name, v5_1s(path))
        assert util.value == pytest.approx(1 / LIMITS_PER_SECOND[path])
    assert telemetry.metric_value(conv.TRADES.name, trading_outcome="filled") == 1
    signed = [sign for sign in signatures if sign]
    assert len(signed) == 2  # wallet and order
    assert_no_secrets(telemetry, API_KEY, API_SECRET, *signed)


def test_pybit_rejections_and_the_ip_limit_are_counted_with_their_status(
    telemetry: Any, server: ExchangeThread
) -> None:
    session = bybit(server)
    botmon.instrument_requests(session.client, exchange="bybit")  # this session only
    with pytest.raises(InvalidRequestError, match="Insufficient balance"):
        session.place_order(category="spot", symbol="BTCUSDT", side="Buy",
                            orderType="Market", qty="1000")
    server.exchange.faults.rate_limited = True
    with pytest.raises(FailedRequestError, match="403"):
        session.get_wallet_balance(accountType="UNIFIED")
    # Bybit rejects over HTTP 200 (retCode in the body); the IP limit is HTTP 403
    assert telemetry.metric_value(REQUESTS, exchange_endpoint="/v5/order/create",
                                  http_response_status_code=200) == 1
    assert telemetry.metric_value(REQUESTS, exchange_endpoint="/v5/account/wallet-balance",
                                  http_response_status_code=403, error_type="403") == 1
    statuses = sorted(s.attributes["http.response.status_code"] for s in telemetry.spans()
                      if s.name in ("GET", "POST"))
    assert statuses == [200, 403]
    assert total_requests(telemetry) == 2
    assert_no_secrets(telemetry, API_KEY, API_SECRET)


def test_a_wrong_signature_is_refused_by_the_simulated_bybit(server: ExchangeThread) -> None:
    """The Bybit routes check the signature as Bybit does (the tests above prove pybit's)."""
    session = HTTP(api_key=API_KEY, api_secret="not-the-secret", max_retries=1)
    session.endpoint = server.base_url
    with pytest.raises(InvalidRequestError, match="error sign"):
        session.get_wallet_balance(accountType="UNIFIED")
