"""Candles and order books of the simulated exchange: Binance's ``/api/v3/klines`` and
``/api/v3/depth`` (what Freqtrade, and any bot that reads candles, asks for).

The price path behind the candles is the exchange's own. Each symbol has
:data:`HISTORY_MINUTES` of history before the exchange started (a seeded random walk of
one-minute bars whose last close is the symbol's start price), then the exchange's trades:
every filled order moves the price and adds its quantity to that minute's bar. A minute
without trades is a flat bar at the last price with zero volume, and the newest candle is
still open: its close is the current price, the one the tickers show. Every interval is an
aggregate of the same one-minute bars, so a 1h candle is exactly its sixty 1m candles.

Served as Binance serves it: rows of ``[openTime, "open", "high", "low", "close",
"volume", closeTime, "quoteVolume", trades, "takerBuyBase", "takerBuyQuote", "0"]``,
oldest first; ``startTime``/``endTime`` select by open time (``limit`` from the start,
or the newest ``limit`` up to the end), ``limit`` 500 by default and at most 1000, weight
2. Intervals ``1m`` to ``1M`` (``1w`` opens on Mondays, ``1M`` on the first of the month,
UTC); Binance's ``1s`` is not served. Errors are Binance's codes: ``-1102`` a missing
parameter, ``-1100`` a malformed number, ``-1120`` an unknown interval, ``-1121`` an
unknown symbol, ``-1023`` a start after the end. The order book has ``limit`` levels a
side (100 by default, at most 5000; weight 5, 25, 50 or 250 by size) around the current
price, 0.2 bp apart, the best ones equal to ``/api/v3/ticker/bookTicker``'s.
"""

from __future__ import annotations

import bisect
import functools
import random
import time
from array import array
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

if TYPE_CHECKING:
    from otel_botmon.demo.exchange import SimulatedExchange

__all__ = [
    "DEPTH_MAX_LIMIT",
    "HISTORY_MINUTES",
    "INTERVALS",
    "KLINES_MAX_LIMIT",
    "KLINES_WEIGHT",
    "CandleBook",
    "depth_weight",
    "market_data_routes",
]

_MINUTE_MS: Final = 60_000
_DAY_MS: Final = 86_400_000
_MONDAY_OFFSET_MS: Final = 4 * _DAY_MS  # 1970-01-01 was a Thursday
MONTH: Final = -1
"""The length stored in :data:`INTERVALS` for ``1M`` (calendar months)."""

INTERVALS: Final[Mapping[str, int]] = {
    "1m": _MINUTE_MS, "3m": 3 * _MINUTE_MS, "5m": 5 * _MINUTE_MS, "15m": 15 * _MINUTE_MS,
    "30m": 30 * _MINUTE_MS, "1h": 3_600_000, "2h": 7_200_000, "4h": 14_400_000,
    "6h": 21_600_000, "8h": 28_800_000, "12h": 43_200_000, "1d": _DAY_MS,
    "3d": 3 * _DAY_MS, "1w": 7 * _DAY_MS, "1M": MONTH,
}
"""Binance's kline intervals served here, by name: their length in milliseconds."""

HISTORY_MINUTES: Final = 30 * 24 * 60
"""Minutes of history each symbol has before the exchange started (its "listing")."""
KLINES_DEFAULT_LIMIT: Final = 500
KLINES_MAX_LIMIT: Final = 1000
KLINES_WEIGHT: Final = 2
DEPTH_DEFAULT_LIMIT: Final = 100
DEPTH_MAX_LIMIT: Final = 5000
_TICK: Final = 0.01
_SPREAD: Final = 1e-4  # the best bid and ask sit this far from the price (bookTicker's)
_LEVEL_STEP: Final = 2e-5  # levels 0.2 bp apart: a market order that walks the book slips


def depth_weight(limit: int) -> int:
    """Binance's request weight of an order book of ``limit`` levels."""
    if limit <= 100:
        return 5
    if limit <= 500:
        return 25
    if limit <= 1000:
        return 50
    return 250


# --- candle open times ----------------------------------------------------------------


def _month_index(ms: int) -> int:
    when = datetime.fromtimestamp(ms / 1000, UTC)
    return when.year * 12 + when.month - 1


def _month_start(index: int) -> int:
    year, month = divmod(index, 12)
    return int(datetime(year, month + 1, 1, tzinfo=UTC).timestamp() * 1000)


def open_of(ms: int, interval: str) -> int:
    """Open time of the ``interval`` candle that contains ``ms``."""
    length = INTERVALS[interval]
    if length == MONTH:
        return _month_start(_month_index(ms))
    offset = _MONDAY_OFFSET_MS if interval == "1w" else 0
    return (ms - offset) // length * length + offset


def step(open_ms: int, interval: str, count: int) -> int:
    """Open time of the candle ``count`` candles after (or before) the one at ``open_ms``."""
    length = INTERVALS[interval]
    if length == MONTH:
        return _month_start(_month_index(open_ms) + count)
    return open_ms + count * length


# --- the price path -------------------------------------------------------------------


@dataclass
class _Bar:
    """One minute's trading: open, high, low, close, base volume, quote volume, trades."""

    open: float
    high: float
    low: float
    close: float
    volume: float = 0.0
    quote: float = 0.0
    trades: int = 0

    def add(self, other: _Bar) -> None:
        self.high = max(self.high, other.high)
        self.low = min(self.low, other.low)
        self.close = other.close
        self.volume += other.volume
        self.quote += other.quote
        self.trades += other.trades


class _History:
    """The seeded one-minute bars of a symbol before the exchange started."""

    def __init__(self, symbol: str, end_price: float, seed: int) -> None:
        rng = random.Random(f"{seed}:{symbol}")
        n = HISTORY_MINUTES
        closes = array("d", bytes(8 * (n + 1)))
        closes[n] = end_price
        for i in range(n - 1, -1, -1):  # walked backwards so the last close is the start price
            closes[i] = closes[i + 1] * (1.0 + rng.uniform(-1.2e-3, 1.2e-3))
        self.closes = closes  # bar i opens at closes[i] and closes at closes[i + 1]
        self.highs = array("d", (max(closes[i], closes[i + 1]) * (1.0 + rng.random() * 4e-4)
                                 for i in range(n)))
        self.lows = array("d", (min(closes[i], closes[i + 1]) * (1.0 - rng.random() * 4e-4)
                                for i in range(n)))
        self.volumes = array("d", (0.5 + rng.random() * 4.5 for _ in range(n)))

    def bar(self, first: int, last: int) -> _Bar:
        """The bars ``first`` .. ``last - 1`` (indexes) as one."""
        closes, volumes = self.closes, self.volumes
        quote, trades = 0.0, 0
        for i in range(first, last):
            quote += volumes[i] * (closes[i] + closes[i + 1]) / 2
            trades += int(volumes[i] * 20) + 1
        return _Bar(closes[first], max(self.highs[first:last]), min(self.lows[first:last]),
                    closes[last], sum(volumes[first:last]), quote, trades)


@functools.lru_cache(maxsize=16)
def _history(symbol: str, end_price: float, seed: int) -> _History:
    """One history per symbol, start price and seed (read-only, so exchanges share it)."""
    return _History(symbol, end_price, seed)


class _Symbol:
    """A symbol's price path: seeded history, then the minutes the exchange traded in."""

    def __init__(self, symbol: str, start_price: float, start_minute: int, seed: int) -> None:
        self.symbol = symbol
        self.start_price = start_price
        self.start_minute = start_minute
        self.first_minute = start_minute - HISTORY_MINUTES
        self._seed = seed
        self._history: _History | None = None
        self.minutes: list[int] = []  # the traded minutes since the start, ascending
        self.bars: dict[int, _Bar] = {}
        self.price = start_price
        self.updates = 1

    @property
    def history(self) -> _History:
        if self._history is None:  # built on first use: most symbols never show candles
            self._history = _history(self.symbol, self.start_price, self._seed)
        return self._history

    def trade(self, price: float, quantity: float, minute: int) -> None:
        minute = max(minute, self.start_minute, self.minutes[-1] if self.minutes else 0)
        bar = self.bars.get(minute)
        if bar is None:
            bar = self.bars[minute] = _Bar(self.price, self.price, self.price, self.price)
            self.minutes.append(minute)
            if len(self.minutes) > HISTORY_MINUTES:  # bounded: the oldest minute goes
                del self.bars[self.minutes.pop(0)]
                self.first_minute = self.minutes[0]
        bar.add(_Bar(price, price, price, price, quantity, quantity * price, 1))
        self.price = price
        self.updates += 1

    def price_before(self, minute: int) -> float:
        """The last price before ``minute`` (a minute at or after the start)."""
        i = bisect.bisect_left(self.minutes, minute)
        return self.bars[self.minutes[i - 1]].close if i else self.start_price

    def bar(self, first: int, last: int) -> _Bar | None:
        """The minutes ``first`` .. ``last - 1`` as one bar; None when none exist."""
        first = max(first, self.first_minute)
        if first >= last:
            return None
        result: _Bar | None = None
        if first < self.start_minute:
            begin = first - (self.start_minute - HISTORY_MINUTES)
            end = min(last, self.start_minute) - (self.start_minute - HISTORY_MINUTES)
            result = self.history.bar(begin, end)
        if last > self.start_minute:
            live_first = max(first, self.start_minute)
            carried = self.price_before(live_first)
            live = _Bar(carried, carried, carried, carried)
            lo = bisect.bisect_left(self.minutes, live_first)
            hi = bisect.bisect_left(self.minutes, last)
            for minute in self.minutes[lo:hi]:
                live.add(self.bars[minute])
            if result is None:
                result = live
            else:
                result.add(live)
        return result


class CandleBook:
    """The candles and order books of the exchange's symbols (see the module doc).

    ``clock`` gives the current time in seconds (``time.time`` by default); ``seed`` makes
    the history before the start reproducible (one seed, one history).
    """

    def __init__(self, prices: Mapping[str, float], *, seed: int | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        start_minute = int(clock() * 1000) // _MINUTE_MS
        self._symbols = {
            symbol: _Symbol(symbol, price, start_minute, seed or 0)
            for symbol, price in prices.items()
        }

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._symbols

    def now_ms(self) -> int:
        return int(self._clock() * 1000)

    def trade(self, symbol: str, price: float, quantity: float) -> None:
        """Record a fill: the price moves to ``price``; ``quantity`` adds to the volume."""
        self._symbols[symbol].trade(price, quantity, self.now_ms() // _MINUTE_MS)

    def price(self, symbol: str) -> float:
        return self._symbols[symbol].price

    def klines(self, symbol: str, interval: str, *, start_ms: int | None = None,
               end_ms: int | None = None,
               limit: int = KLINES_DEFAULT_LIMIT) -> list[list[Any]]:
        """Binance's kline rows (see the module doc); ``limit`` is taken as given.

        Raises KeyError for an unknown symbol or interval.
        """
        path = self._symbols[symbol]
        now = self.now_ms()
        lowest = open_of(path.first_minute * _MINUTE_MS, interval)
        highest = open_of(now, interval)
        if end_ms is not None:
            highest = min(highest, open_of(end_ms, interval))
        if start_ms is not None:
            lowest = max(lowest, start_ms)
            first = open_of(lowest, interval)
            opens = _forward(first if first >= lowest else step(first, interval, 1),
                             interval, highest, limit)
        else:
            opens = reversed(list(_backward(highest, interval, lowest, limit)))
        now_minute = now // _MINUTE_MS
        rows = []
        for open_ms in opens:
            close_ms = step(open_ms, interval, 1)
            bar = path.bar(open_ms // _MINUTE_MS, min(close_ms // _MINUTE_MS, now_minute + 1))
            if bar is not None:
                rows.append(_row(open_ms, close_ms, bar))
        return rows

    def depth(self, symbol: str, limit: int = DEPTH_DEFAULT_LIMIT) -> dict[str, Any]:
        """Binance's order book body: ``limit`` bid and ask levels around the price."""
        path = self._symbols[symbol]
        price = path.price
        best_bid = round(price * (1 - _SPREAD), 2)
        best_ask = max(round(price * (1 + _SPREAD), 2), round(best_bid + _TICK, 2))
        gap = max(round(price * _LEVEL_STEP, 2), _TICK)
        rng = random.Random(f"{symbol}:{path.updates}")
        bids, asks = [], []
        for level in range(limit):
            bid = round(best_bid - level * gap, 2)
            if bid > 0:
                bids.append([f"{bid:.8f}", f"{0.05 + rng.random() * 2:.8f}"])
            asks.append([f"{round(best_ask + level * gap, 2):.8f}",
                         f"{0.05 + rng.random() * 2:.8f}"])
        return {"lastUpdateId": path.updates, "bids": bids, "asks": asks}


def _forward(first: int, interval: str, highest: int, limit: int) -> Iterator[int]:
    open_ms = first
    for _ in range(limit):
        if open_ms > highest:
            return
        yield open_ms
        open_ms = step(open_ms, interval, 1)


def _backward(last: int, interval: str, lowest: int, limit: int) -> Iterator[int]:
    open_ms = last
    for _ in range(limit):
        if open_ms < lowest:
            return
        yield open_ms
        open_ms = step(open_ms, interval, -1)


def _price(value: float) -> str:
    return f"{round(value, 2):.8f}"


def _row(open_ms: int, close_ms: int, bar: _Bar) -> list[Any]:
    return [
        open_ms, _price(bar.open), _price(bar.high), _price(bar.low), _price(bar.close),
        f"{bar.volume:.8f}", close_ms - 1, f"{bar.quote:.8f}", bar.trades,
        f"{bar.volume / 2:.8f}", f"{bar.quote / 2:.8f}", "0",
    ]


# --- HTTP -----------------------------------------------------------------------------


class _BadParameter(Exception):
    def __init__(self, code: int, msg: str) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg


def _required(request: Request, name: str) -> str:
    value = request.query_params.get(name, "")
    if not value:
        raise _BadParameter(
            -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
        )
    return value


def _integer(request: Request, name: str) -> int | None:
    value = request.query_params.get(name)
    if value is None:
        return None
    if not value.isascii() or not value.isdigit() or len(value) > 20:
        raise _BadParameter(-1100, f"Illegal characters found in parameter '{name}'; "
                                   "legal range is '^[0-9]{1,20}$'.")
    return int(value)


def _limit(request: Request, default: int, most: int) -> int:
    limit = _integer(request, "limit")
    if limit is None:
        return default
    if limit < 1:
        raise _BadParameter(-1130, "Invalid data sent for a parameter.")
    return min(limit, most)  # Binance truncates a larger limit to its maximum


class _MarketData:
    def __init__(self, exchange: SimulatedExchange) -> None:
        self.exchange = exchange

    def _symbol(self, request: Request) -> str:
        symbol = _required(request, "symbol")
        if symbol not in self.exchange.candles:
            raise _BadParameter(-1121, "Invalid symbol.")
        return symbol

    async def klines(self, request: Request) -> Response:
        exchange = self.exchange
        fault = await exchange.public_fault()
        if fault is not None:
            return fault
        try:
            symbol = self._symbol(request)
            interval = _required(request, "interval")
            if interval not in INTERVALS:
                raise _BadParameter(-1120, "Invalid interval.")
            start, end = _integer(request, "startTime"), _integer(request, "endTime")
            if start is not None and end is not None and start > end:
                raise _BadParameter(-1023, "Start time is greater than end time.")
            limit = _limit(request, KLINES_DEFAULT_LIMIT, KLINES_MAX_LIMIT)
        except _BadParameter as bad:
            return exchange.error_reply(400, bad.code, bad.msg, weight=KLINES_WEIGHT)
        rows = exchange.candles.klines(symbol, interval, start_ms=start, end_ms=end,
                                       limit=limit)
        return exchange.reply(rows, weight=KLINES_WEIGHT)

    async def depth(self, request: Request) -> Response:
        exchange = self.exchange
        fault = await exchange.public_fault()
        if fault is not None:
            return fault
        try:
            symbol = self._symbol(request)
            limit = _limit(request, DEPTH_DEFAULT_LIMIT, DEPTH_MAX_LIMIT)
        except _BadParameter as bad:
            return exchange.error_reply(400, bad.code, bad.msg, weight=depth_weight(
                DEPTH_DEFAULT_LIMIT))
        return exchange.reply(exchange.candles.depth(symbol, limit), weight=depth_weight(limit))


def market_data_routes(exchange: SimulatedExchange) -> list[Route]:
    """``GET /api/v3/klines`` and ``GET /api/v3/depth`` of ``exchange``."""
    market = _MarketData(exchange)
    return [
        Route("/api/v3/klines", market.klines, methods=["GET"]),
        Route("/api/v3/depth", market.depth, methods=["GET"]),
    ]
