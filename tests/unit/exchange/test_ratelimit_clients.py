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
