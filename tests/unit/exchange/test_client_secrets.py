"""An exchange error that echoes the API key, through python-binance's Client (requests)
and AsyncClient (aiohttp) and an httpx client: the key reaches no span, metric or log.

Binance-style venues answer a bad key with a message; some (and proxies, and gateways)
put the key itself in it, and python-binance puts the message in the exception the bot
sees. ``instrument_ccxt`` registers ccxt's keys; the plain HTTP clients now register the
value of the exchange's key header they send.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import httpx
import pytest
from binance import AsyncClient
from binance.client import Client
from binance.exceptions import BinanceAPIException
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import otel_botmon as botmon
from otel_botmon import redaction
from otel_botmon.instrument import _http
from otel_botmon.testing import capture
from tests.integration.otlp.fake_exchange import Answer, FakeExchange
from tests.unit.exchange._clients import everything_exported

SECRET = "pbSECRETf3Gh7JkL9mNbVcXz2QwErTyUi"
_KEYS = st.text(st.sampled_from("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"),
                min_size=16, max_size=64)


def _echoing(server: FakeExchange, key: str) -> None:
    body = json.dumps({"code": -2015,
                       "msg": f"Invalid API-key {key}, IP, or permissions for action."})
    server.respond("/api/v3/account", Answer(status=401, body=body.encode()))
    server.respond("/api/v3/order", Answer(status=401, body=body.encode()))


def _forget() -> None:
    redaction.forget_secrets()
    _http._remembered.clear()


@settings(max_examples=10, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=_KEYS)
def test_python_binance_sync_error_echoing_the_key(
    exchange_server: FakeExchange, caplog: pytest.LogCaptureFixture, key: str,
) -> None:
    _forget()
    _echoing(exchange_server, key)
    with capture("test-bot", exchange="binance") as cap:
        botmon.instrument_requests()
        try:
            client = Client(key, SECRET, ping=False)
            client.API_URL = exchange_server.base_url + "/api"
            with pytest.raises(BinanceAPIException) as raised, caplog.at_level(logging.DEBUG):
                with botmon.trade(symbol="BTCUSDT", side="BUY"):
                    client.create_order(symbol="BTCUSDT", side="BUY", type="MARKET",
                                        quantity=1)
        finally:
            botmon.uninstrument_requests()
        assert key in str(raised.value)  # the bot's own exception is unchanged
        text = everything_exported(cap) + caplog.text
    assert key not in text and SECRET not in text


def test_python_binance_async_error_echoing_the_key(exchange_server: FakeExchange) -> None:
    key = "pbKEYq8ZsV2mNwXcT5yRbH1uJkLpOa77"
    _echoing(exchange_server, key)

    async def call(cap: Any) -> None:
        client = AsyncClient(key, SECRET)
        client.API_URL = exchange_server.base_url + "/api"
        try:
            async with botmon.trade(symbol="BTCUSDT", side="BUY"):
                await client.get_account()
        finally:
            await client.close_connection()

    with capture("test-bot", exchange="binance") as cap:
        botmon.instrument_aiohttp()
        try:
            with pytest.raises(BinanceAPIException):
                asyncio.run(call(cap))
        finally:
            botmon.uninstrument_aiohttp()
        assert key not in everything_exported(cap)


def test_httpx_key_header_and_the_bound(exchange_server: FakeExchange) -> None:
    """OK-ACCESS-KEY and its passphrase are remembered; a key header that changes on every
    request stops being remembered at 64 values (a signature is not a key)."""
    with capture("test-bot", exchange="okx") as cap:
        with httpx.Client() as client:
            botmon.instrument_httpx(client)
            client.get(exchange_server.url("/api/v5/account/balance"), headers={
                "OK-ACCESS-KEY": "okKEYq8ZsV2mNwXcT5yRbH1", "OK-ACCESS-PASSPHRASE": "p4ss-phrase-9",
                "OK-ACCESS-SIGN": "c2lnbmF0dXJlLW9uZS10aW1l"})
            for i in range(100):
                client.get(exchange_server.url("/x"), headers={"X-MBX-APIKEY": f"rotating{i:04}"})
        assert redaction.is_registered_secret("okKEYq8ZsV2mNwXcT5yRbH1")
        assert redaction.is_registered_secret("p4ss-phrase-9")
        assert not redaction.is_registered_secret("c2lnbmF0dXJlLW9uZS10aW1l")
        assert len(_http._remembered) == 64
        assert "okKEYq8ZsV2mNwXcT5yRbH1" not in everything_exported(cap)
