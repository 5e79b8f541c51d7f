"""binance-connector (requests) against the simulated exchange, run by
``test_binance_connector.py`` in a process of its own whose path holds the locked
binance-connector (it installs the same top-level ``binance`` package as python-binance,
so the two cannot share one environment). Not collected on its own (no ``test_`` prefix).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from binance.error import ClientError
from binance.spot import Spot

import otel_botmon as botmon
from otel_botmon import conventions as conv
from otel_botmon.demo.serve import ExchangeThread
from otel_botmon.instrument.requests_client import is_requests_instrumented
from tests.unit.exchange._clients import assert_no_secrets

API_KEY = "connKEYq7WsX2eDc4RfV6tGb8YhN1uJm"
API_SECRET = "connSECRETz3XcV5bN7mQ9wE1rT4yU6iO"
REQUESTS = conv.EXCHANGE_REQUESTS.name


@pytest.fixture
def server() -> Iterator[ExchangeThread]:
    with ExchangeThread(API_KEY, API_SECRET, seed=5) as running:
        yield running


@pytest.fixture(autouse=True)
def _uninstrumented() -> Iterator[None]:
    yield
    botmon.uninstrument_requests()


def test_binance_connector_one_session_its_rejections_and_no_secrets(
    telemetry: Any, server: ExchangeThread,
) -> None:
    spot = Spot(api_key=API_KEY, api_secret=API_SECRET, base_url=server.base_url)
    botmon.instrument_requests(spot.session, exchange="binance")
    assert is_requests_instrumented(spot.session)
    assert spot.ticker_price("ETHUSDT")["symbol"] == "ETHUSDT"
    assert spot.account()["balances"]  # signed: key header, signature in the query
    with pytest.raises(ClientError) as rejected:
        spot.new_order(symbol="ETHUSDT", side="BUY", type="MARKET", quantity=10_000)
    assert rejected.value.status_code == 400
    assert int(telemetry.metric_value(
        REQUESTS, exchange_endpoint="/api/v3/order", http_response_status_code=400,
        error_type="400")) == 1
    assert sum(p.value for p in telemetry.metric_points(REQUESTS)) == 3
    spans = [s for s in telemetry.spans() if s.name == "POST"]
    assert [s.attributes["http.response.status_code"] for s in spans] == [400]
    text = assert_no_secrets(telemetry, API_KEY, API_SECRET)
    assert "signature=REDACTED" in text  # the signed calls were seen, redacted
    used = telemetry.metric_point(conv.EXCHANGE_RATELIMIT_USED.name, {
        conv.EXCHANGE_NAME: "binance", conv.RATELIMIT_BUDGET: "spot",
        conv.RATELIMIT_INTERVAL: "1m"})
    assert used.value >= 3
