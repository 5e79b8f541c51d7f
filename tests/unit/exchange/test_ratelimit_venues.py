"""Rate-limit headers as each exchange's API documents them, read with the real clients.

KuCoin's resource pools, HTX's and BingX's remaining-only headers, HTX futures' window
in a header, Alpaca's X-RateLimit-* and the IETF RateLimit / RateLimit-Policy fields.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import ccxt
import pytest
from hypothesis import given
from hypothesis import strategies as st

import otel_botmon as botmon
from otel_botmon import conventions as conv
from otel_botmon.exchanges import find_exchange
from otel_botmon.instrument.ratelimit import parse_ratelimit_headers, record_ratelimit_headers
from otel_botmon.testing import capture
from tests.integration.otlp.fake_exchange import Answer, FakeExchange

USED = conv.EXCHANGE_RATELIMIT_USED.name
UTIL = conv.EXCHANGE_RATELIMIT_UTILIZATION.name

KUCOIN = find_exchange("kucoin")
assert KUCOIN is not None
_POOL_PATHS = {b.name: b.paths for b in KUCOIN.budgets}


def _kucoin_headers(limit: int, remaining: int) -> dict[str, str]:
    return {"gw-ratelimit-limit": str(limit), "gw-ratelimit-remaining": str(remaining),
            "gw-ratelimit-reset": "29000"}


@given(
    pool=st.sampled_from(["public", "management", "spot", "futures"]),
    suffix=st.sampled_from(["", "x", "/BTC-USDT", "?symbol=XBTUSDTM"]),
    host=st.sampled_from([None, "api.kucoin.com", "api-futures.kucoin.com", "127.0.0.1"]),
    venue=st.sampled_from([None, "kucoin", "kucoinfutures"]),
)
def test_kucoin_pools_are_budgets_of_their_own(pool: str, suffix: str, host: str | None,
                                               venue: str | None) -> None:
    """Public (per IP), spot, futures and management have separate quotas: a request
    counts against the pool its path and host (or its ccxt id) say, never a shared one."""
    if pool in ("public", "management"):
        path = _POOL_PATHS[pool][0] + suffix.partition("?")[0]
    else:
        path = "/api/v1/orders" + suffix.partition("?")[0]
        futures = host == "api-futures.kucoin.com" or (
            venue == "kucoinfutures" and host != "api.kucoin.com")
        if (pool == "futures") != futures:
            pool = "futures" if futures else "spot"
    readings = parse_ratelimit_headers(_kucoin_headers(4000, 3000), exchange=venue,
                                       host=host, path=path)
    assert ("used", pool, "30s", 1000.0) in readings, readings
    assert {b for _k, b, _i, _v in readings} == {pool}


def test_a_busy_kucoin_spot_pool_is_not_hidden_by_the_public_pool(telemetry: Any) -> None:
    record_ratelimit_headers(_kucoin_headers(4000, 40), exchange="kucoin",
                             path="/api/v1/hf/orders")
    record_ratelimit_headers(_kucoin_headers(2000, 1990), exchange="kucoin",
                             path="/api/v1/market/orderbook/level1")
    spot = {conv.EXCHANGE_NAME: "kucoin", conv.RATELIMIT_BUDGET: "spot",
            conv.RATELIMIT_INTERVAL: "30s"}
    assert telemetry.metric_point(UTIL, spot).value == pytest.approx(3960 / 4000)
    assert telemetry.metric_point(USED, {**spot, conv.RATELIMIT_BUDGET: "public"}).value == 10


@pytest.fixture
def kucoin_server() -> Iterator[FakeExchange]:
    with FakeExchange() as server:
        ok = json.dumps({"code": "200000", "data": []}).encode()
        for path, remaining in (("/api/v1/timestamp", 1999), ("/api/v1/accounts", 1500),
                                ("/api/v1/hf/orders/active", 3900),
                                ("/api/v1/orders", 1200)):
            server.respond(path, Answer(headers=_kucoin_headers(
                4000 if remaining == 3900 else 2000, remaining), body=ok))
        yield server
    botmon.uninstrument_ccxt()


def test_ccxt_kucoin_and_kucoinfutures_fill_four_pools(kucoin_server: FakeExchange) -> None:
    """Real ccxt requests, KuCoin's wire format: one gauge per pool (the old table had
    one "pool" budget that the last response of any pool overwrote)."""
    from otel_botmon.demo.serve import local_urls

    with capture("test-bot", bot_name="test", strategy="unit") as cap:
        botmon.instrument_ccxt()
        spot = ccxt.kucoin({"apiKey": "kcKEYq8ZsV2mNwXcT5y", "secret": "kcSECRETf3Gh7JkL9m",
                            "password": "kcPASSw0rd77"})
        futures = ccxt.kucoinfutures({"apiKey": "kcKEYq8ZsV2mNwXcT5y",
                                      "secret": "kcSECRETf3Gh7JkL9m",
                                      "password": "kcPASSw0rd77"})
        for exchange in (spot, futures):
            exchange.urls["api"] = local_urls(exchange.urls["api"], kucoin_server.base_url)
        spot.publicGetTimestamp()
        spot.privateGetAccounts()
        spot.privateGetHfOrdersActive({"symbol": "BTC-USDT"})
        futures.futuresPrivateGetOrders()
        used = {p.attributes[conv.RATELIMIT_BUDGET]: p.value
                for p in cap.metric_points(USED, exchange_name="kucoin")}
    assert used == {"public": 1, "management": 500, "spot": 100, "futures": 800}
