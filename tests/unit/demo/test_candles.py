"""Candles and order books of the simulated exchange (Binance's klines and depth)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otel_botmon.demo.candles import (
    DEPTH_MAX_LIMIT,
    HISTORY_MINUTES,
    INTERVALS,
    KLINES_MAX_LIMIT,
    CandleBook,
    depth_weight,
    open_of,
    step,
)
from otel_botmon.demo.serve import ExchangeThread

START_S = 1_780_000_000.0  # a Thursday, mid-minute
MINUTE_MS = 60_000


class Clock:
    def __init__(self) -> None:
        self.now = START_S

    def __call__(self) -> float:
        return self.now


def _book(trades: Sequence[tuple[float, float, float]] = ()) -> tuple[CandleBook, Clock]:
    """A book started at START_S, then ``(seconds later, price, quantity)`` trades."""
    clock = Clock()
    book = CandleBook({"BTCUSDT": 45000.0, "ETHUSDT": 2400.0}, seed=7, clock=clock)
    for later, price, quantity in sorted(trades):
        clock.now = START_S + later
        book.trade("BTCUSDT", price, quantity)
    return book, clock


def _aggregate(rows: list[list[Any]]) -> tuple[float, ...]:
    return (float(rows[0][1]), max(float(r[2]) for r in rows), min(float(r[3]) for r in rows),
            float(rows[-1][4]), sum(float(r[5]) for r in rows), sum(r[8] for r in rows))


_trades = st.lists(
    st.tuples(st.floats(0, 3 * 3600), st.floats(40000, 50000), st.floats(0.001, 2)),
    max_size=20,
)


@settings(max_examples=40, deadline=None)
@given(trades=_trades, interval=st.sampled_from(["3m", "5m", "15m", "1h", "4h", "1d"]),
       back=st.integers(0, 20), elapsed=st.floats(3 * 3600, 5 * 3600))
def test_a_candle_is_the_aggregate_of_its_one_minute_candles(
    trades: list[tuple[float, float, float]], interval: str, back: int, elapsed: float,
) -> None:
    book, clock = _book(trades)
    clock.now = START_S + elapsed
    (row,) = book.klines("BTCUSDT", interval, end_ms=step(
        open_of(int(clock.now * 1000), interval), interval, -back), limit=1)
    minutes = book.klines("BTCUSDT", "1m", start_ms=row[0], end_ms=row[6], limit=10_000)
    assert minutes and minutes[0][0] >= row[0] and minutes[-1][0] <= row[6]
    total = _aggregate(minutes)
    assert (float(row[1]), float(row[2]), float(row[3]), float(row[4])) == total[:4]
    assert float(row[5]) == pytest.approx(total[4], rel=1e-9, abs=1e-7)
    assert row[8] == total[5]


@settings(max_examples=60, deadline=None)
@given(trades=_trades, interval=st.sampled_from(sorted(INTERVALS)),
       start=st.none() | st.integers(-HISTORY_MINUTES - 5000, 500),
       span=st.none() | st.integers(0, HISTORY_MINUTES),
       limit=st.integers(1, KLINES_MAX_LIMIT))
def test_rows_are_binances_selected_by_open_time(
    trades: list[tuple[float, float, float]], interval: str, start: int | None,
    span: int | None, limit: int,
) -> None:
    book, clock = _book(trades)
    clock.now = START_S + 4 * 3600
    start_ms = None if start is None else int(START_S * 1000) + start * MINUTE_MS
    end_ms = None if span is None else (start_ms or int(START_S * 1000)) + span * MINUTE_MS
    rows = book.klines("BTCUSDT", interval, start_ms=start_ms, end_ms=end_ms, limit=limit)
    assert len(rows) <= limit
    for previous, row in itertools.pairwise(rows):
        assert row[0] == step(previous[0], interval, 1) == previous[6] + 1
        assert row[1] == previous[4]  # one price path: each candle opens at the last close
    for row in rows:
        open_, high, low, close = map(float, row[1:5])
        assert low <= min(open_, close) <= max(open_, close) <= high
        assert row[0] == open_of(row[0], interval) and len(row) == 12
        assert start_ms is None or row[0] >= start_ms
        assert end_ms is None or row[0] <= end_ms
    if rows and start_ms is None:  # the newest `limit` candles up to the end
        newest = min(int(clock.now * 1000), end_ms if end_ms is not None else 1 << 62)
        assert rows[-1][0] == open_of(newest, interval)


def test_the_newest_candle_closes_at_the_last_trade_and_quiet_minutes_are_flat() -> None:
    book, clock = _book([(30.0, 45100.0, 0.5), (90.0, 44900.0, 0.25)])
    clock.now = START_S + 600
    rows = book.klines("BTCUSDT", "1m", limit=12)
    assert float(rows[-1][4]) == 44900.0 == book.price("BTCUSDT")
    quiet = rows[-1]
    assert quiet[1:5] == ["44900.00000000"] * 4 and float(quiet[5]) == 0.0
    (with_trades,) = [r for r in rows if float(r[5]) == 0.5]
    assert float(with_trades[2]) == 45100.0


def test_history_ends_at_the_start_price_and_begins_at_the_listing() -> None:
    book, _ = _book()
    rows = book.klines("BTCUSDT", "1d", start_ms=0, limit=1000)
    assert rows[0][0] == open_of(int(START_S * 1000) - HISTORY_MINUTES * MINUTE_MS, "1d")
    assert float(rows[-1][4]) == 45000.0
    assert book.klines("BTCUSDT", "1m", end_ms=rows[0][0] - 1) == []
    again, _ = _book()
    assert again.klines("BTCUSDT", "1d", start_ms=0, limit=1000) == rows  # one seed


def test_weeks_open_on_monday_and_months_on_the_first() -> None:
    book, _ = _book()
    week = book.klines("BTCUSDT", "1w", limit=1)[0][0]
    month = book.klines("BTCUSDT", "1M", limit=1)[0][0]
    assert week == 1_779_667_200_000  # Monday 2026-05-25 00:00 UTC
    assert month == 1_777_593_600_000  # 2026-05-01 00:00 UTC


@settings(max_examples=30, deadline=None)
@given(trades=_trades, limit=st.integers(1, 300))
def test_the_order_book_surrounds_the_price(
    trades: list[tuple[float, float, float]], limit: int,
) -> None:
    book, _ = _book(trades)
    depth = book.depth("BTCUSDT", limit)
    bids = [float(p) for p, _ in depth["bids"]]
    asks = [float(p) for p, _ in depth["asks"]]
    assert len(bids) == len(asks) == limit
    assert bids == sorted(bids, reverse=True) and asks == sorted(asks)
    assert len(set(bids)) == limit and len(set(asks)) == limit
    price = book.price("BTCUSDT")
    assert bids[0] == round(price * 0.9999, 2) < price < asks[0] == round(price * 1.0001, 2)


@pytest.mark.parametrize(("limit", "weight"), [(1, 5), (100, 5), (101, 25), (500, 25),
                                               (501, 50), (1000, 50), (1001, 250),
                                               (5000, 250)])
def test_depth_weight_is_binances(limit: int, weight: int) -> None:
    assert depth_weight(limit) == weight


# --- over HTTP ---------------------------------------------------------------------------


@pytest.fixture
def server() -> Iterator[ExchangeThread]:
    with ExchangeThread("key", "secret", seed=1) as server:
        yield server


@pytest.fixture
def client(server: ExchangeThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url) as client:
        yield client


def test_klines_over_http_carry_weight_two(client: httpx.Client) -> None:
    first = client.get("/api/v3/klines", params={"symbol": "BTCUSDT", "interval": "5m"})
    assert first.status_code == 200 and len(first.json()) == 500
    second = client.get("/api/v3/klines",
                        params={"symbol": "ETHUSDT", "interval": "15m", "limit": "5000"})
    assert len(second.json()) == KLINES_MAX_LIMIT  # truncated, as Binance does
    used = int(second.headers["X-MBX-USED-WEIGHT-1M"]) - int(
        first.headers["X-MBX-USED-WEIGHT-1M"])
    assert used == 2


def test_the_last_candle_agrees_with_the_ticker(client: httpx.Client) -> None:
    ticker = client.get("/api/v3/ticker/price", params={"symbol": "BTCUSDT"}).json()
    (row,) = client.get("/api/v3/klines",
                        params={"symbol": "BTCUSDT", "interval": "1m", "limit": 1}).json()
    assert float(row[4]) == float(ticker["price"])


@pytest.mark.parametrize(("params", "code"), [
    ({"interval": "1m"}, -1102),
    ({"symbol": "BTCUSDT"}, -1102),
    ({"symbol": "DOGEUSDT", "interval": "1m"}, -1121),
    ({"symbol": "BTCUSDT", "interval": "7m"}, -1120),
    ({"symbol": "BTCUSDT", "interval": "1m", "startTime": "soon"}, -1100),
    ({"symbol": "BTCUSDT", "interval": "1m", "endTime": "-1"}, -1100),
    ({"symbol": "BTCUSDT", "interval": "1m", "limit": "0"}, -1130),
    ({"symbol": "BTCUSDT", "interval": "1m", "startTime": "2", "endTime": "1"}, -1023),
])
def test_bad_kline_parameters_get_binances_errors(
    client: httpx.Client, params: dict[str, str], code: int,
) -> None:
    response = client.get("/api/v3/klines", params=params)
    assert response.status_code == 400 and response.json()["code"] == code


def test_depth_over_http_weighs_by_size(client: httpx.Client) -> None:
    before = client.get("/api/v3/ping").headers["X-MBX-USED-WEIGHT-1M"]
    deep = client.get("/api/v3/depth", params={"symbol": "BTCUSDT", "limit": "9000"})
    assert len(deep.json()["bids"]) == DEPTH_MAX_LIMIT
    assert int(deep.headers["X-MBX-USED-WEIGHT-1M"]) - int(before) == 250
    book = client.get("/api/v3/ticker/bookTicker", params={"symbol": "BTCUSDT"}).json()
    shallow = client.get("/api/v3/depth", params={"symbol": "BTCUSDT"}).json()
    assert len(shallow["asks"]) == 100
    assert float(shallow["bids"][0][0]) == float(book["bidPrice"])
    assert float(shallow["asks"][0][0]) == float(book["askPrice"])
    assert client.get("/api/v3/depth").json()["code"] == -1102


def test_an_order_moves_the_candles(server: ExchangeThread, client: httpx.Client) -> None:
    order = server.exchange.fill_market_order("BTCUSDT", "BUY", 0.25)
    assert order is not None
    ticker = client.get("/api/v3/ticker/price", params={"symbol": "BTCUSDT"}).json()
    (row,) = client.get("/api/v3/klines",
                        params={"symbol": "BTCUSDT", "interval": "1m", "limit": 1}).json()
    assert float(row[4]) == float(ticker["price"]) != 45000.0
    assert float(row[5]) >= 0.25
