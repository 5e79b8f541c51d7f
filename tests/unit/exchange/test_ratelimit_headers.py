"""Reading exchange rate-limit headers into botmon.exchange.ratelimit.used."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from otel_botmon import conventions as conv
from otel_botmon.instrument.ratelimit import parse_ratelimit_headers, record_ratelimit_headers

GAUGE = conv.EXCHANGE_RATELIMIT_USED.name


def test_binance_weight_and_order_count_headers() -> None:
    headers = httpx.Headers({
        "X-MBX-USED-WEIGHT-1M": "1180", "x-mbx-used-weight-1d": "20000",
        "X-MBX-ORDER-COUNT-10S": "3", "X-SAPI-USED-IP-WEIGHT-1M": "12",
        "Content-Type": "application/json",
    })
    assert sorted(parse_ratelimit_headers(headers)) == [
        ("orders", "10s", 3.0),
        ("weight", "1d", 20000.0),
        ("weight", "1m", 12.0),
        ("weight", "1m", 1180.0),
    ]


def test_retry_after_counts_only_on_throttling_statuses() -> None:
    headers = {"Retry-After": "30"}
    assert parse_ratelimit_headers(headers, 429) == [("retry_after", None, 30.0)]
    assert parse_ratelimit_headers(headers, 418) == [("retry_after", None, 30.0)]
    assert parse_ratelimit_headers(headers, 200) == []


def test_retry_after_as_http_date_gives_seconds_from_now() -> None:
    when = datetime.now(timezone.utc) + timedelta(seconds=120)
    ((kind, interval, seconds),) = parse_ratelimit_headers(
        [(b"retry-after", format_datetime(when, usegmt=True).encode())], 429
    )
    assert (kind, interval) == ("retry_after", None)
    assert 115 <= seconds <= 120


@pytest.mark.parametrize("value", ["abc", "", "-1", "1.5e3", "12 units"])
def test_garbage_values_are_skipped_with_one_warning(
    value: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="otel_botmon")
    headers = [("X-MBX-USED-WEIGHT-1M", value), ("X-MBX-ORDER-COUNT-1D", "5")]
    for _ in range(3):
        assert parse_ratelimit_headers(headers) == [("orders", "1d", 5.0)]
    warnings = [r for r in caplog.records if "X-MBX-USED-WEIGHT-1M" in r.getMessage()]
    assert len(warnings) == 1


def test_unreadable_header_containers_give_nothing() -> None:
    assert parse_ratelimit_headers(None) == []
    assert parse_ratelimit_headers(12) == []
    assert parse_ratelimit_headers(["no-pairs-here"]) == []


def test_record_sets_the_gauge_per_exchange_interval_and_kind(
    telemetry: Any, metrics: Any
) -> None:
    record_ratelimit_headers({"X-MBX-USED-WEIGHT-1M": "100"}, exchange="binance")
    record_ratelimit_headers({"X-MBX-USED-WEIGHT-1M": "250", "X-MBX-ORDER-COUNT-10S": "4"})
    record_ratelimit_headers({"Retry-After": "7"}, exchange="binance", status_code=429)

    base = {conv.EXCHANGE_NAME: "binance"}
    weight = {**base, conv.RATELIMIT_KIND: "weight", conv.RATELIMIT_INTERVAL: "1m"}
    orders = {**base, conv.RATELIMIT_KIND: "orders", conv.RATELIMIT_INTERVAL: "10s"}
    retry = {**base, conv.RATELIMIT_KIND: "retry_after"}
    assert metrics.metric_point(GAUGE, weight).value == 250  # last value wins
    assert metrics.metric_point(GAUGE, orders).value == 4
    assert metrics.metric_point(GAUGE, retry).value == 7
    assert len(metrics.metric_attribute_sets(GAUGE)) == 3
