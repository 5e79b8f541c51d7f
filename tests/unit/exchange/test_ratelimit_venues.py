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


REMAINING = conv.EXCHANGE_RATELIMIT_REMAINING.name


@given(remaining=st.integers(0, 10**9), path=st.sampled_from(
    ["/v1/order/orders/place", "/v2/account/asset-valuation", "/v1/account/accounts"]))
def test_htx_spot_reports_what_is_left_of_each_endpoint(remaining: int, path: str) -> None:
    """HTX sends only X-HB-RateLimit-Requests-Remain (no limit, no window): it was read
    into nothing, since used needs a limit. Now it is the remaining gauge, per endpoint."""
    readings = parse_ratelimit_headers(
        {"X-HB-RateLimit-Requests-Remain": str(remaining),
         "X-HB-RateLimit-Requests-Expire": "1700000000000"}, host="api.huobi.pro", path=path)
    assert readings == [("remaining", f"api {path}", None, float(remaining))]


@given(limit=st.integers(1, 10**6), share=st.floats(0.0, 1.0),
       window_ms=st.sampled_from([1000, 3000, 60_000, 500, 86_400_000]))
def test_htx_futures_window_comes_from_its_header(limit: int, share: float,
                                                   window_ms: int) -> None:
    remaining = limit - int(limit * share)
    readings = parse_ratelimit_headers(
        [("ratelimit-limit", str(limit)), ("ratelimit-remaining", str(remaining)),
         ("ratelimit-interval", str(window_ms)), ("ratelimit-reset", "1700000000000")],
        exchange="htx", host="api.hbdm.com", path="/linear-swap-api/v1/swap_order")
    interval = {1000: "1s", 3000: "3s", 60_000: "1m", 500: "500ms", 86_400_000: "1d"}[
        window_ms]
    assert ("used", "futures", interval, float(limit - remaining)) in readings
    assert ("remaining", "futures", interval, float(remaining)) in readings


def test_generic_header_names_never_name_an_exchange() -> None:
    """GitHub, Telegram and most APIs send X-RateLimit-*; a webhook's answer through an
    instrumented client is not Alpaca's (nor is IETF's RateLimit-Limit HTX's)."""
    generic = {"X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "59",
               "RateLimit-Limit": "10", "RateLimit-Remaining": "3",
               "RateLimit-Policy": '"default";q=10;w=1', "RateLimit": '"default";r=3;t=1'}
    assert parse_ratelimit_headers(generic, host="api.telegram.org") == []
    with capture("test-bot", bot_name="test", strategy="unit") as cap:
        record_ratelimit_headers(generic, host="hooks.slack.com")
        assert not cap.metric_points(USED) and not cap.metric_points(REMAINING)


def test_alpaca_and_bingx_read_with_real_clients(exchange_server: FakeExchange) -> None:
    """requests (alpaca-py's transport) and httpx against a loopback server sending each
    venue's headers; the exchange is named, since 127.0.0.1 is nobody's host."""
    import httpx
    import requests

    exchange_server.respond("/v2/orders", Answer(headers={
        "X-RateLimit-Limit": "200", "X-RateLimit-Remaining": "150",
        "X-RateLimit-Reset": "1700000060"}))
    exchange_server.respond("/openApi/spot/v1/trade/order", Answer(headers={
        "X-RateLimit-Requests-Remain": "7", "X-RateLimit-Requests-Expire": "1700000000000"}))
    with capture("test-bot", bot_name="test", strategy="unit") as cap:
        try:
            with requests.Session() as session:
                botmon.instrument_requests(session, exchange="alpaca")
                session.post(exchange_server.url("/v2/orders"), timeout=10)
            with httpx.Client() as client:
                botmon.instrument_httpx(client, exchange="bingx")
                client.post(exchange_server.url("/openApi/spot/v1/trade/order"))
        finally:
            botmon.uninstrument_requests()
            botmon.uninstrument_httpx()
        alpaca = {conv.EXCHANGE_NAME: "alpaca", conv.RATELIMIT_BUDGET: "trading",
                  conv.RATELIMIT_INTERVAL: "1m"}
        assert cap.metric_point(USED, alpaca).value == 50
        assert cap.metric_point(UTIL, alpaca).value == pytest.approx(0.25)
        bingx = {conv.EXCHANGE_NAME: "bingx",
                 conv.RATELIMIT_BUDGET: "api /openApi/spot/v1/trade/order",
                 conv.RATELIMIT_INTERVAL: ""}
        assert cap.metric_point(REMAINING, bingx).value == 7


@given(quota=st.integers(1, 10**6), share=st.floats(0.0, 1.0),
       window=st.sampled_from([1, 10, 60, 3600]),
       quoted=st.booleans(), extra=st.sampled_from(["", ';qu="requests"', ";pk=:cHJvOjI=:"]))
def test_ietf_ratelimit_fields_give_used_remaining_and_utilization(
    quota: int, share: float, window: int, quoted: bool, extra: str,
) -> None:
    remaining = quota - int(quota * share)
    name = '"default"' if quoted else "default"
    readings = parse_ratelimit_headers(
        {"RateLimit-Policy": f"{name};q={quota};w={window}{extra}, daily;q=99;w=86400",
         "RateLimit": f"{name};r={remaining};t=5"}, exchange="okx")
    interval = {1: "1s", 10: "10s", 60: "1m", 3600: "1h"}[window]
    assert ("remaining", "default", interval, float(remaining)) in readings
    assert ("used", "default", interval, float(quota - remaining)) in readings
    util = [v for k, _b, i, v in readings if k == "utilization" and i == interval]
    assert util == [pytest.approx((quota - remaining) / quota)]


@given(policy=st.text(max_size=200), current=st.text(max_size=200))
def test_any_ietf_fields_give_finite_non_negative_readings(policy: str,
                                                          current: str) -> None:
    for _k, _b, _i, value in parse_ratelimit_headers(
            {"RateLimit-Policy": policy, "RateLimit": current}, exchange="okx"):
        assert value >= 0 and value == value and value != float("inf")


@given(group=st.sampled_from(["CONTRACT", "SPOTORDER", "OTHERS"]),
       case=st.sampled_from([str.lower, str.upper, str.title]),
       capacity=st.integers(1, 10_000), share=st.floats(0.0, 1.0),
       host=st.sampled_from([None, "api.phemex.com", "vapi.phemex.com"]))
def test_phemex_groups_are_budgets_of_their_own(group: str, case: Any, capacity: int,
                                                share: float, host: str | None) -> None:
    """Phemex reports the group of the endpoint called, per minute, in headers named
    after it (x-ratelimit-remaining-<GROUP>, any case on the wire)."""
    remaining = capacity - int(capacity * share)
    readings = parse_ratelimit_headers(
        {case(f"x-ratelimit-remaining-{group}"): str(remaining),
         case(f"x-ratelimit-capacity-{group}"): str(capacity),
         case(f"x-ratelimit-retry-after-{group}"): "0"},
        exchange="phemex" if host is None else None, host=host, path="/spot/orders")
    budget = group.lower()
    assert ("remaining", budget, "1m", float(remaining)) in readings, readings
    assert ("used", budget, "1m", float(capacity - remaining)) in readings, readings
    assert {b for _k, b, _i, _v in readings} == {budget}
