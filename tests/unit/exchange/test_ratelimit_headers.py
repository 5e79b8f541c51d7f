"""Rate-limit headers of every exchange in the conventions table into the ratelimit gauges."""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from otel_botmon import conventions as conv
from otel_botmon.exchanges import EXCHANGES, Exchange, find_exchange
from otel_botmon.instrument.ratelimit import (
    _MAX_NAME_CHARS,
    parse_ratelimit_headers,
    record_ratelimit_headers,
)
from otel_botmon.redaction import is_sensitive_key, redact_headers
from otel_botmon.testing import capture

USED = conv.EXCHANGE_RATELIMIT_USED.name
ORDERS = conv.EXCHANGE_RATELIMIT_ORDERS.name
RETRY = conv.EXCHANGE_RATELIMIT_RETRY_AFTER.name
UTIL = conv.EXCHANGE_RATELIMIT_UTILIZATION.name
ERRORS = conv.INTERNAL_ERRORS.name


def attrs(budget: str, interval: str | None = None, exchange: str = "binance") -> dict[str, Any]:
    found = {conv.EXCHANGE_NAME: exchange, conv.RATELIMIT_BUDGET: budget}
    if interval is not None:
        found[conv.RATELIMIT_INTERVAL] = interval
    return found


def test_binance_spot_sapi_and_usdm_are_separate_budgets(telemetry: Any, metrics: Any) -> None:
    record_ratelimit_headers({"X-MBX-USED-WEIGHT-1M": "5900", "X-MBX-ORDER-COUNT-10S": "3"},
                             exchange="binance", path="/api/v3/order")
    record_ratelimit_headers({"X-SAPI-USED-IP-WEIGHT-1M": "40"}, exchange="binance",
                             path="/sapi/v1/capital/config/getall")
    record_ratelimit_headers({"X-MBX-USED-WEIGHT-1M": "1200", "X-MBX-ORDER-COUNT-1M": "600"},
                             exchange="binance", path="/fapi/v1/order")

    assert metrics.metric_point(USED, attrs("spot", "1m")).value == 5900  # not hidden by SAPI's 40
    assert metrics.metric_point(USED, attrs("sapi", "1m")).value == 40
    assert metrics.metric_point(USED, attrs("usdm", "1m")).value == 1200
    assert metrics.metric_point(ORDERS, attrs("spot", "10s")).value == 3
    assert metrics.metric_point(ORDERS, attrs("usdm", "1m")).value == 600
    assert metrics.metric_point(UTIL, attrs("spot", "1m")).value == pytest.approx(5900 / 6000)
    assert metrics.metric_point(UTIL, attrs("spot", "10s")).value == pytest.approx(3 / 100)
    # weight 1200/2400 and orders 600/1200 share budget and interval: the higher share
    assert metrics.metric_point(UTIL, attrs("usdm", "1m")).value == pytest.approx(0.5)
    assert metrics.metric_point(UTIL, attrs("sapi", "1m")).value == pytest.approx(40 / 12000)


def test_retry_after_clears_on_the_next_response_without_it(
    telemetry: Any, metrics: Any
) -> None:
    record_ratelimit_headers({"Retry-After": "120"}, exchange="binance", status_code=418)
    assert metrics.metric_point(RETRY, attrs("spot")).value == 120
    record_ratelimit_headers({"X-MBX-USED-WEIGHT-1M": "3"}, exchange="binance",
                             status_code=200)
    assert metrics.metric_point(RETRY, attrs("spot")).value == 0


def test_retry_after_counts_only_on_throttling_statuses() -> None:
    headers = {"Retry-After": "30"}
    assert parse_ratelimit_headers(headers, 429) == [("retry_after", "default", None, 30.0)]
    assert parse_ratelimit_headers(headers, 418, exchange="binance") == [
        ("retry_after", "spot", None, 30.0)]
    assert parse_ratelimit_headers(headers, 200) == []


def test_retry_after_as_http_date_gives_seconds_from_now() -> None:
    when = datetime.now(UTC) + timedelta(seconds=120)
    ((kind, _budget, interval, seconds),) = parse_ratelimit_headers(
        [(b"retry-after", format_datetime(when, usegmt=True).encode())], 429
    )
    assert (kind, interval) == ("retry_after", None)
    assert 115 <= seconds <= 120


@pytest.mark.parametrize("value", ["abc", "", "-1", "1.5e3", "12 units", "١٢"])
def test_garbage_values_are_skipped_warned_once_and_counted(
    value: str, telemetry: Any, metrics: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="otel_botmon")
    headers = [("X-MBX-USED-WEIGHT-1M", value), ("X-MBX-ORDER-COUNT-1D", "5")]
    for _ in range(3):
        readings = record_ratelimit_headers(headers, exchange="binance")
        assert ("orders", "spot", "1d", 5.0) in readings
        assert not [r for r in readings if r[0] == "used"]
    warnings = [r for r in caplog.records if "x-mbx-used-weight-1m" in r.getMessage()]
    assert len(warnings) == 1
    assert metrics.metric_value(ERRORS, botmon_component="ratelimit") == 3


def test_negative_retry_after_is_warned_once_counted_and_never_raised(
    telemetry: Any, metrics: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="otel_botmon")
    for _ in range(2):
        assert record_ratelimit_headers({"Retry-After": "-5"}, exchange="binance",
                                        status_code=429) == []
    assert len([r for r in caplog.records if "retry-after" in r.getMessage()]) == 1
    assert metrics.metric_value(ERRORS, botmon_component="ratelimit") == 2
    assert metrics.metric_points(RETRY) == []


def test_unreadable_header_containers_give_nothing() -> None:
    assert parse_ratelimit_headers(None) == []
    assert parse_ratelimit_headers(12) == []
    assert parse_ratelimit_headers(["no-pairs-here"]) == []


def test_an_unnamed_exchange_is_found_by_its_headers_or_host() -> None:
    assert parse_ratelimit_headers({"gw-ratelimit-limit": "2000",
                                    "gw-ratelimit-remaining": "1500"}) == [
        ("remaining", "spot", "30s", 1500.0), ("used", "spot", "30s", 500.0),
        ("utilization", "spot", "30s", 0.25)]
    assert find_exchange(host="fapi.binance.com") is find_exchange("binanceusdm")
    assert find_exchange("no-such-exchange") is None


@pytest.mark.parametrize(("path", "budget", "limit"), [
    (None, "spot", 6000), ("/api/v3/order", "spot", 6000), ("/fapi/v1/order", "usdm", 2400),
    ("/dapi/v1/order", "coinm", 2400)])
def test_the_first_header_of_an_exchange_found_by_its_headers_counts_for_the_paths_budget(
    path: str | None, budget: str, limit: int
) -> None:
    """Binance found by its weight header (no exchange named, host outside the table):
    the weight is the spot budget's for a spot path, not the first row's (USD-M, 2400)."""
    readings = parse_ratelimit_headers({"X-MBX-USED-WEIGHT-1M": "1200"}, path=path)
    assert readings == [("used", budget, "1m", 1200.0),
                        ("utilization", budget, "1m", pytest.approx(1200 / limit))]


def test_an_exchange_limiting_each_endpoint_gets_a_budget_per_path() -> None:
    bybit = {"X-Bapi-Limit": "20", "X-Bapi-Limit-Status": "4"}
    assert parse_ratelimit_headers(bybit, exchange="bybit", path="/v5/order/create") == [
        ("remaining", "v5 /v5/order/create", "1s", 4.0),
        ("used", "v5 /v5/order/create", "1s", 16.0),
        ("utilization", "v5 /v5/order/create", "1s", 0.8)]
    assert parse_ratelimit_headers(bybit, 429, exchange="bybit", path="/v5/order/create")[0][1] \
        == "v5 /v5/order/create"
    retry = parse_ratelimit_headers({"Retry-After": "3", **bybit}, 429, exchange="bybit",
                                    path="/v5/position/list")
    assert ("retry_after", "v5 /v5/position/list", None, 3.0) in retry
    # without a path (or for Binance, whose budgets are per path prefix) nothing changes
    assert {r[1] for r in parse_ratelimit_headers(bybit, exchange="bybit")} == {"v5"}
    assert {r[1] for r in parse_ratelimit_headers(
        {"X-MBX-USED-WEIGHT-1M": "10"}, exchange="binance", path="/api/v3/order")} == {"spot"}


@pytest.mark.parametrize(("path", "label"), [
    ("/v5/order/1234567", "v5 /v5/order/{id}"),
    ("/bot123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/sendMessage", "v5 /{id}/sendMessage"),
    ("/v5/" + "a" * 10_000, "v5 /v5/" + "a" * 124),
])
def test_a_per_endpoint_budget_is_labelled_like_exchange_endpoint(path: str, label: str) -> None:
    """The path in ``ratelimit.budget`` is the ``exchange.endpoint`` label: identifiers
    and tokens (a Telegram bot's, whose 429 a bot instrumented for Bybit without
    ``hosts`` sees too) become ``{id}``, at most 128 characters; never the raw path."""
    readings = parse_ratelimit_headers(
        {"Retry-After": "5", "X-Bapi-Limit": "10", "X-Bapi-Limit-Status": "9"}, 429,
        exchange="bybit", path=path)
    assert {budget for _kind, budget, _i, _v in readings} == {label}


def test_one_bybit_endpoint_near_its_limit_is_not_hidden_by_another(
    telemetry: Any, metrics: Any
) -> None:
    record_ratelimit_headers({"X-Bapi-Limit": "10", "X-Bapi-Limit-Status": "1"},
                             exchange="bybit", path="/v5/order/create")
    record_ratelimit_headers({"X-Bapi-Limit": "50", "X-Bapi-Limit-Status": "49"},
                             exchange="bybit", path="/v5/market/tickers")
    util = {p.attributes[conv.RATELIMIT_BUDGET]: p.value for p in telemetry.metric_points(
        conv.EXCHANGE_RATELIMIT_UTILIZATION.name, exchange_name="bybit")}
    assert util == {"v5 /v5/order/create": pytest.approx(0.9),
                    "v5 /v5/market/tickers": pytest.approx(0.02)}


def test_gate_limits_each_endpoint_on_its_own() -> None:
    """Gate.io (APIv4 since January 2024): every endpoint has its own limit (200 per 10 s
    for most, 10 per second for placing orders); its headers report the endpoint's, so
    a ticker's 1 of 200 must not hide the orders endpoint's 9 of 10."""
    orders = parse_ratelimit_headers(
        {"X-Gate-RateLimit-Limit": "10", "X-Gate-RateLimit-Requests-Remain": "1"},
        exchange="gate", path="/api/v4/spot/orders")
    tickers = parse_ratelimit_headers(
        {"X-Gate-RateLimit-Limit": "200", "X-Gate-RateLimit-Requests-Remain": "199"},
        exchange="gateio", path="/api/v4/spot/tickers")
    assert {budget for _k, budget, _i, _v in orders} == {"api /api/v4/spot/orders"}
    assert {budget for _k, budget, _i, _v in tickers} == {"api /api/v4/spot/tickers"}


def _example_headers(row: Exchange) -> dict[str, str]:
    headers: dict[str, str] = {}
    for budget in row.budgets:
        for spec in budget.headers:
            name = spec.pattern.replace("{interval}", "1m")
            headers[name] = {"limit": "100", "remaining": "75"}.get(spec.kind, "25")
    return headers


@pytest.mark.parametrize("row", EXCHANGES, ids=[row.name for row in EXCHANGES])
def test_every_table_row_reads_its_headers_and_hides_its_secrets(row: Exchange) -> None:
    """Adding an exchange to otel_botmon.exchanges is covered by this test."""
    assert find_exchange(row.name) is row
    for alias in row.aliases:
        assert find_exchange(alias) is row
    for host in row.hosts:
        assert find_exchange(host=host) is row
    budget_names = {b.name for b in row.budgets}
    assert len(budget_names) == len(row.budgets)
    for spec in (spec for budget in row.budgets for spec in budget.headers):
        assert len(spec.pattern.replace("{interval}", "999999d")) <= _MAX_NAME_CHARS
    for budget in row.budgets:
        # a path may name its method first ("POST /api/v4/spot/orders")
        method, _sp, prefix = budget.paths[0].rpartition(" ") if budget.paths else ("", "", "")
        path = prefix + "x" if budget.paths else "/any"
        host = budget.hosts[0] if budget.hosts else None
        readings = parse_ratelimit_headers(_example_headers(row), exchange=row.name, path=path,
                                           host=host, method=method or None)
        kinds = {spec.kind for spec in budget.headers}
        got = {(kind, b) for kind, b, _i, _v in readings}
        label = f"{budget.name} {path}" if budget.per_endpoint else budget.name
        if kinds & {"used", "remaining"} and ({"used"} <= kinds or {"limit"} <= kinds
                                              or any(s.limits for s in budget.headers)):
            assert ("used", label) in got, (label, readings)
        if "orders" in kinds:
            assert ("orders", label) in got
        for kind, _b, _i, value in readings:
            if kind == "utilization":
                assert 0.0 <= value <= 1.0
    for name in (*row.secret_names, *row.exact_secret_names):
        assert is_sensitive_key(name), name
        assert is_sensitive_key(name.upper()) and is_sensitive_key(name.lower())
        assert redact_headers({name: "s3cr3t-value"}) == {name: "REDACTED"}
    for name in row.exact_secret_names:
        assert not is_sensitive_key("monkey" + name)  # only the whole name


@given(limit=st.integers(1, 10**9), share=st.floats(0.0, 1.0))
def test_utilization_is_used_over_limit_within_0_and_1(limit: int, share: float) -> None:
    remaining = limit - int(limit * share)
    readings = parse_ratelimit_headers(
        httpx.Headers({"X-Bapi-Limit": str(limit), "X-Bapi-Limit-Status": str(remaining)}),
        exchange="bybit")
    util = [v for kind, _b, _i, v in readings if kind == "utilization"]
    assert util == [pytest.approx((limit - remaining) / limit)]
    assert 0.0 <= util[0] <= 1.0


_TABLE_NAMES = sorted({spec.pattern.replace("{interval}", "1m") for row in EXCHANGES
                       for budget in row.budgets for spec in budget.headers} | {"retry-after"})
_NASTY_VALUES = st.one_of(
    st.sampled_from(["", " ", "-1", "-0", "+5", "1_000", "1e308", "1E3", "nan", "NaN", "inf",
                     "-inf", "0x10", "١٢", "²", "5900, 5900", "30, 30", "0.5", "3.5e2",
                     "9" * 400, str(10**400), "1" * 100_000, "Wed, 21 Oct 2015 07:28:00 GMT",
                     "Fri, 31 Dec 9999 23:59:59 GMT", "Mon, 01 Jan 99999 00:00:00 GMT",
                     "Mon, 01 Jan 2030 00:00:00 +9999", "\x00", "30\r\n"]),
    st.integers(-(10**30), 10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(max_size=40),
)


@given(headers=st.lists(st.tuples(
    st.sampled_from(_TABLE_NAMES).flatmap(
        lambda name: st.sampled_from([name, name.upper(), name.title()])),
    _NASTY_VALUES), max_size=8),
    status=st.sampled_from([None, 200, 418, 429, 503]),
    exchange=st.sampled_from([None, "binance", "bybit", "kucoin", "gate", "htx"]),
    path=st.sampled_from([None, "/api/v3/order", "/sapi/v1/x", "/fapi/v1/order"]))
def test_any_header_values_give_only_finite_non_negative_bounded_readings(
    headers: list[tuple[str, str]], status: int | None, exchange: str | None,
    path: str | None,
) -> None:
    """Whatever the exchange (or a proxy) sends: no exception, and every reading is a
    finite, non-negative number (no -0.0), utilization at most 1, Retry-After at most a
    year (1e308 s or the year 9999 is not a ban the bot can wait out)."""
    for readings in (parse_ratelimit_headers(headers, status, exchange=exchange, path=path),
                     record_ratelimit_headers(headers, exchange=exchange, status_code=status,
                                              path=path)):
        for kind, _budget, _interval, value in readings:
            assert math.isfinite(value) and math.copysign(1.0, value) == 1.0, readings
            if kind == "utilization":
                assert value <= 1.0
            if kind == "retry_after":
                assert value <= 366 * 86400, readings


@pytest.mark.parametrize("value", ["1e308", "1_000", "١٢", "-0", "+5", "1E3",
                                   "Fri, 31 Dec 9999 23:59:59 GMT"])
def test_retry_after_is_delay_seconds_or_a_date_within_a_year(value: str) -> None:
    """RFC 9110: delay-seconds is ASCII digits; anything else that float() accepts, or
    a wait of centuries, is skipped as bad input."""
    assert parse_ratelimit_headers({"Retry-After": value}, 429) == []


def test_an_exchange_found_by_its_headers_names_the_gauges() -> None:
    """No exchange named (configure() without one) and a host outside the table: the
    readings are the exchange's whose headers they are, not "unknown"'s."""
    with capture("test-bot", bot_name="test", strategy="unit") as metrics:
        _record_unnamed(metrics)


def _record_unnamed(metrics: Any) -> None:
    record_ratelimit_headers({"gw-ratelimit-limit": "2000", "gw-ratelimit-remaining": "1500"})
    assert metrics.metric_point(USED, attrs("spot", "30s", exchange="kucoin")).value == 500
    record_ratelimit_headers({"X-MBX-USED-WEIGHT-1M": "10", "Retry-After": "60"},
                             status_code=429, host="data-api.binance.vision")
    assert metrics.metric_point(RETRY, attrs("spot")).value == 60
    record_ratelimit_headers({"X-MBX-USED-WEIGHT-1M": "11"}, host="data-api.binance.vision")
    assert metrics.metric_point(RETRY, attrs("spot")).value == 0
    assert metrics.metric_point(USED, attrs("spot", "1m")).value == 11
    assert not metrics.metric_points(USED, exchange_name="unknown")


def test_long_header_names_are_not_remembered() -> None:
    """The header-name cache holds table-sized names only: a server (or proxy) sending
    a new long ``x-`` name on every response cannot make it hold megabytes."""
    from otel_botmon.instrument import ratelimit

    for i in range(600):
        long_name = f"x-{i}-" + "a" * 60_000
        assert parse_ratelimit_headers([(long_name, "1"), ("X-MBX-USED-WEIGHT-1M", "2")],
                                       exchange="binance") == [
            ("used", "spot", "1m", 2.0), ("utilization", "spot", "1m", pytest.approx(2 / 6000))]
    assert sum(map(len, ratelimit._by_name)) < 512 * 100


def test_gate_method_picks_the_budget_on_a_shared_path() -> None:
    """GET /spot/orders lists (200 per 10 s), POST places (10 a second per market),
    DELETE cancels (200 a second), PATCH amends; futures orders 100 a second. Without
    the method, the 10 s budget (what it always was)."""
    place = {"X-Gate-RateLimit-Limit": "10", "X-Gate-RateLimit-Requests-Remain": "1"}

    def budgets(method: str | None, path: str) -> set[tuple[str, str | None]]:
        return {(b, i) for _k, b, i, _v in parse_ratelimit_headers(
            place, exchange="gate", path=path, method=method)}

    assert budgets("GET", "/api/v4/spot/orders") == {("api /api/v4/spot/orders", "10s")}
    assert budgets(None, "/api/v4/spot/orders") == {("api /api/v4/spot/orders", "10s")}
    assert budgets("POST", "/api/v4/spot/orders") == {("orders /api/v4/spot/orders", "1s")}
    assert budgets("post", "/api/v4/spot/batch_orders") == {
        ("orders /api/v4/spot/batch_orders", "1s")}
    assert budgets("PATCH", "/api/v4/spot/orders/123456") == {
        ("orders /api/v4/spot/orders/{id}", "1s")}
    assert budgets("DELETE", "/api/v4/spot/orders/123456") == {
        ("cancel /api/v4/spot/orders/{id}", "1s")}
    assert budgets("POST", "/api/v4/futures/usdt/orders") == {
        ("orders /api/v4/futures/usdt/orders", "1s")}
    assert budgets("GET", "/api/v4/futures/usdt/orders") == {
        ("api /api/v4/futures/usdt/orders", "10s")}
    assert budgets("POST", "/api/v4/spot/tickers") == {("api /api/v4/spot/tickers", "10s")}


_COUNT_HEADERS = {
    # header, exchange, path, reading kind whose value the header gives, conservative fold
    "x-mbx-used-weight-1m": ("binance", "/api/v3/order", "used", max),
    "x-mbx-order-count-10s": ("binance", "/api/v3/order", "orders", max),
    "x-hb-ratelimit-requests-remain": ("htx", "/v1/order/orders", "remaining", min),
}


def _shapes(name: str, values: list[int]) -> list[object]:
    """One response with ``name`` repeated, as each HTTP client hands it over."""
    import multidict
    import requests.structures

    texts = [str(v) for v in values]
    return [
        requests.structures.CaseInsensitiveDict({name: ", ".join(texts)}),  # urllib3 joins
        httpx.Headers([(name, t) for t in texts]),  # a multi-dict of pairs
        multidict.CIMultiDictProxy(multidict.CIMultiDict([(name, t) for t in texts])),
        [(name.encode(), t.encode()) for t in texts],  # httpcore's raw pairs
    ]


@given(name=st.sampled_from(sorted(_COUNT_HEADERS)),
       values=st.lists(st.integers(0, 10**12), min_size=1, max_size=6))
def test_a_repeated_header_reads_the_same_in_every_client_most_spent_least_left(
    name: str, values: list[int]
) -> None:
    """A header repeated on one response (a gateway adding its own count) is one list:
    the reading is the most used and the least remaining of its values, however the
    client stores them (requests joined them into "12, 13", skipped as bad input)."""
    exchange, path, kind, fold = _COUNT_HEADERS[name]
    expected = float(fold(values))
    for headers in _shapes(name, values):
        readings = parse_ratelimit_headers(headers, exchange=exchange, path=path)
        assert [v for k, _b, _i, v in readings if k == kind] == [expected], (headers, readings)


@given(limits=st.lists(st.integers(1, 10**6), min_size=1, max_size=4),
       remains=st.lists(st.integers(0, 10**6), min_size=1, max_size=4))
def test_repeated_limit_and_remaining_give_the_highest_utilization_they_allow(
    limits: list[int], remains: list[int]
) -> None:
    """Bybit's limit and remaining both repeated: the smallest limit and the least left,
    so used and utilization are never read lower than any layer's values say."""
    headers = [("X-Bapi-Limit", str(v)) for v in limits] + \
        [("X-Bapi-Limit-Status", ", ".join(map(str, remains)))]
    got = {k: v for k, _b, _i, v in parse_ratelimit_headers(headers, exchange="bybit")}
    used = max(min(limits) - min(remains), 0)
    assert got["remaining"] == min(remains)
    assert got["used"] == used
    assert got["utilization"] == pytest.approx(min(used / min(limits), 1.0))


def test_repeated_retry_after_waits_for_the_longest() -> None:
    for headers in ([("Retry-After", "5"), ("Retry-After", "120")],
                    {"Retry-After": "120, 5"},
                    {"Retry-After": "5, Wed, 21 Oct 2015 07:28:00 GMT, 120"}):
        assert parse_ratelimit_headers(headers, 429) == [("retry_after", "default", None, 120.0)]


def test_a_bad_item_in_a_repeated_header_is_skipped_and_the_rest_read(caplog: Any) -> None:
    caplog.set_level(logging.WARNING, logger="otel_botmon")
    readings = parse_ratelimit_headers({"X-MBX-USED-WEIGHT-1M": "12, NaN, 13"},
                                       exchange="binance")
    assert ("used", "spot", "1m", 13.0) in readings
    assert any("'NaN'" in r.getMessage() for r in caplog.records)
