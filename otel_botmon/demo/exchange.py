"""A simulated Binance-like spot exchange on loopback, with injectable faults.

Speaks enough of the Binance REST wire format for the demo bot, the exchange health
check and the real client libraries people run (ccxt sync and async, python-binance,
binance-connector): ``GET /api/v3/ping``, ``/time``, ``/exchangeInfo``,
``/ticker/price``, ``/ticker/24hr``, ``/ticker/bookTicker``, ``/klines`` and ``/depth``
(:mod:`otel_botmon.demo.candles`: candles on the exchange's own price path), signed
``GET /api/v3/account``, signed ``POST``/``GET``/``DELETE /api/v3/order`` and signed ``GET
/sapi/v1/capital/config/getall`` and ``/sapi/v1/margin/allPairs`` (HMAC-SHA256
``signature`` over the query string and body, ``X-MBX-APIKEY`` header), with Binance's
rate-limit headers
(``X-MBX-USED-WEIGHT-1M``, ``X-MBX-ORDER-COUNT-10S``/``-1D``, ``X-SAPI-USED-IP-WEIGHT-1M``)
and JSON error bodies. Orders larger than the balance are rejected with ``-2010``.
:class:`Faults` turns on latency spikes, 429s with ``Retry-After``, a 418 IP ban, 5xx
errors and a falling market while it runs. Bybit's v5 wire format is served beside it, on
the same market (:mod:`otel_botmon.demo.bybit`).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import random
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from otel_botmon.dashboard.embedded import EmbeddedServer
from otel_botmon.demo.bybit import bybit_routes
from otel_botmon.demo.candles import CandleBook, market_data_routes

START_PRICES = {"BTCUSDT": 45000.0, "ETHUSDT": 2400.0, "BNBUSDT": 310.0}
RECV_WINDOW_MS = 5000


@dataclass
class Faults:
    """What is going wrong right now; the scenario flips these while the demo runs."""

    extra_latency_s: float = 0.0
    """Added to every response (a latency spike)."""
    rate_limited: bool = False
    """Signed endpoints answer 429 with ``Retry-After``."""
    banned: bool = False
    """Every endpoint answers 418 (Binance's IP ban after ignored 429s) with ``Retry-After``."""
    retry_after_s: int = 1
    server_error_rate: float = 0.0
    """Share of signed requests that answer 503."""
    market_drift: float = 0.001
    """Price change per order as a fraction; negative makes every long position lose."""


@dataclass
class _Weights:
    minute: int = -1
    used: int = 0
    sapi: int = 0
    orders_window: int = -1
    orders: int = 0
    day: int = -1
    orders_day: int = 0

    def spend(self, weight: int, now: float, *, sapi: bool = False) -> None:
        minute = int(now // 60)
        if minute != self.minute:
            self.minute, self.used, self.sapi = minute, 0, 0
        if sapi:
            self.sapi += weight
        else:
            self.used += weight

    def order(self, now: float) -> None:
        window = int(now // 10)
        if window != self.orders_window:
            self.orders_window, self.orders = window, 0
        day = int(now // 86400)
        if day != self.day:
            self.day, self.orders_day = day, 0
        self.orders += 1
        self.orders_day += 1


@dataclass
class ExchangeState:
    prices: dict[str, float] = field(default_factory=lambda: dict(START_PRICES))
    next_order_id: int = 1
    requests: int = 0
    orders: dict[int, dict[str, Any]] = field(default_factory=dict)
    balances: dict[str, float] = field(
        default_factory=lambda: {"USDT": 100_000.0, "BTC": 1.0, "ETH": 10.0, "BNB": 50.0}
    )


class SimulatedExchange:
    """The exchange app plus its server; ``base_url`` is valid after ``start()``."""

    def __init__(
        self, api_key: str, api_secret: str, *, host: str = "127.0.0.1", port: int = 0,
        seed: int | None = None,
    ) -> None:
        self.api_key = api_key
        self._secret = api_secret.encode("utf-8")
        self.faults = Faults()
        self.state = ExchangeState()
        self._weights = _Weights()
        self._rng = random.Random(seed)
        self.candles = CandleBook(self.state.prices, seed=seed)
        self.app = Starlette(routes=[
            Route("/api/v3/ping", self.ping, methods=["GET"]),
            Route("/api/v3/time", self.server_time, methods=["GET"]),
            Route("/api/v3/exchangeInfo", self.exchange_info, methods=["GET"]),
            Route("/api/v3/ticker/price", self.ticker_price, methods=["GET"]),
            Route("/api/v3/ticker/24hr", self.ticker_24hr, methods=["GET"]),
            Route("/api/v3/ticker/bookTicker", self.book_ticker, methods=["GET"]),
            *market_data_routes(self),
            Route("/api/v3/account", self.account, methods=["GET"]),
            Route("/api/v3/order", self.order, methods=["POST"]),
            Route("/api/v3/order", self.query_order, methods=["GET"]),
            Route("/api/v3/order", self.cancel_order, methods=["DELETE"]),
            Route("/sapi/v1/capital/config/getall", self.capital_config, methods=["GET"]),
            Route("/sapi/v1/margin/allPairs", self.no_margin, methods=["GET"]),
            Route("/sapi/v1/margin/isolated/allPairs", self.no_margin, methods=["GET"]),
            *bybit_routes(self),
        ])
        self._server = EmbeddedServer(self.app, host, port, name="demo-exchange")

    def __repr__(self) -> str:  # never show the key or the secret
        return f"SimulatedExchange(base_url={self.base_url!r})"

    @property
    def base_url(self) -> str:
        return f"http://{self._server.host}:{self._server.port}"

    async def start(self) -> None:
        await self._server.start()

    async def stop(self) -> None:
        await self._server.stop()

    # --- plumbing -----------------------------------------------------------------------

    def _reply(self, body: Any, status: int = 200, weight: int = 1,
               headers: dict[str, str] | None = None, *, sapi: bool = False) -> Response:
        now = time.time()
        w = self._weights
        w.spend(weight, now, sapi=sapi)
        if sapi:
            all_headers = {"X-SAPI-USED-IP-WEIGHT-1M": str(w.sapi)}
        else:
            all_headers = {"X-MBX-USED-WEIGHT-1M": str(w.used)}
            if w.orders:
                all_headers["X-MBX-ORDER-COUNT-10S"] = str(w.orders)
                all_headers["X-MBX-ORDER-COUNT-1D"] = str(w.orders_day)
        all_headers.update(headers or {})
        return JSONResponse(body, status_code=status, headers=all_headers)

    def _error(self, status: int, code: int, msg: str, **kw: Any) -> Response:
        return self._reply({"code": code, "msg": msg}, status=status, **kw)

    # The Binance routes served from other modules (candles) reply through these.
    reply = _reply
    error_reply = _error

    async def public_fault(self) -> Response | None:
        """Count the request, wait the simulated latency; the 418 reply while banned."""
        return await self._delay()

    @property
    def api_secret_bytes(self) -> bytes:
        """The API secret (for the other wire formats served beside Binance's)."""
        return self._secret

    async def delay(self) -> None:
        """Count the request and wait the simulated latency (every wire format)."""
        self.state.requests += 1
        if self.faults.extra_latency_s > 0:
            await asyncio.sleep(self.faults.extra_latency_s * self._rng.uniform(0.8, 1.2))

    def server_error(self) -> bool:
        """Whether this signed request draws an injected 5xx."""
        rate = self.faults.server_error_rate
        return bool(rate) and self._rng.random() < rate

    async def _delay(self) -> Response | None:
        """The simulated latency; then the 418 reply while the IP is banned."""
        await self.delay()
        if self.faults.banned:
            return self._error(
                418, -1003, "Way too much request weight used; IP banned until later.",
                headers={"Retry-After": str(self.faults.retry_after_s)},
            )
        return None

    async def _signed_request(self, request: Request) -> dict[str, str] | Response:
        """After the simulated latency: the parameters of a signed request, or the error
        (bad key or signature, or an injected fault) to reply with."""
        banned = await self._delay()
        if banned is not None:
            return banned
        params = await self._signed_params(request)
        if isinstance(params, Response):
            return params
        fault = self._fault()
        return fault if fault is not None else params

    async def _signed_params(self, request: Request) -> dict[str, str] | Response:
        """The request's parameters when key and signature check out, else an error reply."""
        if request.headers.get("x-mbx-apikey") != self.api_key:
            return self._error(401, -2014, "API-key format invalid.")
        body = (await request.body()).decode("utf-8", "replace")
        query = request.url.query
        pairs = parse_qsl(query, keep_blank_values=True) + parse_qsl(body, keep_blank_values=True)
        params = dict(pairs)
        signature = params.pop("signature", "")
        # Binance signs the query string followed by the body, each without the signature.
        def unsigned(text: str) -> str:
            return "&".join(
                part for part in text.split("&") if part and not part.startswith("signature=")
            )

        signed_text = unsigned(query) + unsigned(body)
        expected = hmac.new(self._secret, signed_text.encode("utf-8"), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            return self._error(400, -1022, "Signature for this request is not valid.")
        try:
            stamp = int(params.get("timestamp", "0"))
            window = int(params.get("recvWindow", RECV_WINDOW_MS))
        except ValueError:
            return self._error(400, -1102, "Parameter 'timestamp' or 'recvWindow' malformed.")
        if abs(time.time() * 1000 - stamp) > window:
            return self._error(
                400, -1021, "Timestamp for this request is outside of the recvWindow."
            )
        return params

    def _fault(self) -> Response | None:
        if self.faults.rate_limited:
            return self._error(
                429, -1003, "Too much request weight used; current limit is 6000 request "
                "weight per 1 MINUTE.", headers={"Retry-After": str(self.faults.retry_after_s)},
            )
        if self.server_error():
            return self._error(503, -1001, "Service unavailable.")
        return None

    # --- endpoints ----------------------------------------------------------------------

    async def ping(self, request: Request) -> Response:
        return await self._delay() or self._reply({})

    async def server_time(self, request: Request) -> Response:
        return await self._delay() or self._reply({"serverTime": int(time.time() * 1000)})

    async def exchange_info(self, request: Request) -> Response:
        return await self._delay() or self._reply({
            "timezone": "UTC", "serverTime": int(time.time() * 1000),
            "rateLimits": [
                {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
                 "limit": 6000},
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10,
                 "limit": 100},
                {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1,
                 "limit": 200000},
            ],
            "exchangeFilters": [],
            "symbols": [_symbol_info(symbol) for symbol in sorted(self.state.prices)],
        }, weight=20)

    def _symbols(self, request: Request) -> list[str] | Response:
        symbol = request.query_params.get("symbol")
        if symbol is None:
            return sorted(self.state.prices)
        if symbol not in self.state.prices:
            return self._error(400, -1121, "Invalid symbol.")
        return [symbol]

    async def ticker_price(self, request: Request) -> Response:
        fault = await self._delay()
        symbols = fault or self._symbols(request)
        if isinstance(symbols, Response):
            return symbols
        rows = [{"symbol": s, "price": f"{self.state.prices[s]:.2f}"} for s in symbols]
        return self._reply(rows[0] if "symbol" in request.query_params else rows, weight=2)

    async def ticker_24hr(self, request: Request) -> Response:
        fault = await self._delay()
        symbols = fault or self._symbols(request)
        if isinstance(symbols, Response):
            return symbols
        now = int(time.time() * 1000)
        rows = []
        for s in symbols:
            last = self.state.prices[s]
            rows.append({
                "symbol": s, "priceChange": "0.00", "priceChangePercent": "0.000",
                "weightedAvgPrice": f"{last:.2f}", "prevClosePrice": f"{last:.2f}",
                "lastPrice": f"{last:.2f}", "lastQty": "0.01000000",
                "bidPrice": f"{last * 0.9999:.2f}", "bidQty": "1.00000000",
                "askPrice": f"{last * 1.0001:.2f}", "askQty": "1.00000000",
                "openPrice": f"{last:.2f}", "highPrice": f"{last * 1.01:.2f}",
                "lowPrice": f"{last * 0.99:.2f}", "volume": "1000.00000000",
                "quoteVolume": f"{last * 1000:.2f}", "openTime": now - 86_400_000,
                "closeTime": now, "firstId": 1, "lastId": 1000, "count": 1000,
            })
        return self._reply(rows[0] if "symbol" in request.query_params else rows, weight=2)

    async def book_ticker(self, request: Request) -> Response:
        fault = await self._delay()
        symbols = fault or self._symbols(request)
        if isinstance(symbols, Response):
            return symbols
        rows = [{"symbol": s, "bidPrice": f"{self.state.prices[s] * 0.9999:.2f}",
                 "bidQty": "1.00000000", "askPrice": f"{self.state.prices[s] * 1.0001:.2f}",
                 "askQty": "1.00000000"} for s in symbols]
        return self._reply(rows[0] if "symbol" in request.query_params else rows, weight=2)

    async def no_margin(self, request: Request) -> Response:
        """Margin pairs (ccxt loads them with the spot markets): none here."""
        params = await self._signed_request(request)
        return params if isinstance(params, Response) else self._reply([], weight=1, sapi=True)

    async def capital_config(self, request: Request) -> Response:
        params = await self._signed_request(request)
        if isinstance(params, Response):
            return params
        return self._reply([
            {"coin": asset, "name": asset, "free": f"{amount:.8f}", "locked": "0",
             "depositAllEnable": True, "withdrawAllEnable": True, "trading": True,
             "networkList": []}
            for asset, amount in sorted(self.state.balances.items())
        ], weight=10, sapi=True)

    async def account(self, request: Request) -> Response:
        params = await self._signed_request(request)
        if isinstance(params, Response):
            return params
        balances = [
            {"asset": asset, "free": f"{amount:.8f}", "locked": "0.00000000"}
            for asset, amount in sorted(self.state.balances.items())
        ]
        return self._reply({
            "makerCommission": 10, "takerCommission": 10, "canTrade": True,
            "accountType": "SPOT", "updateTime": int(time.time() * 1000),
            "balances": balances,
        }, weight=20)

    async def order(self, request: Request) -> Response:
        params = await self._signed_request(request)
        if isinstance(params, Response):
            return params
        symbol, side = params.get("symbol", ""), params.get("side", "")
        if symbol not in self.state.prices:
            return self._error(400, -1121, "Invalid symbol.")
        if side not in ("BUY", "SELL"):
            return self._error(400, -1102, "Mandatory parameter 'side' was not sent or malformed.")
        try:
            quantity = float(params.get("quantity", ""))
        except ValueError:
            return self._error(400, -1102, "Mandatory parameter 'quantity' was malformed.")
        if quantity <= 0:
            return self._error(400, -1013, "Filter failure: LOT_SIZE")
        self._weights.order(time.time())
        order = self.fill_market_order(symbol, side, quantity, params.get("type", "MARKET"),
                                       params.get("newClientOrderId"))
        if order is None:
            return self._error(400, -2010, "Account has insufficient balance for "
                                           "requested action.")
        return self._reply(order)

    def fill_market_order(self, symbol: str, side: str, quantity: float,
                          order_type: str = "MARKET",
                          client_order_id: str | None = None) -> dict[str, Any] | None:
        """Fill a market order of a known ``symbol`` (``side`` BUY or SELL, ``quantity`` > 0)
        and keep it; None when the balance does not cover it (nothing changes then)."""
        base, quote = symbol[:-4], symbol[-4:]
        price = self.state.prices[symbol]
        have = self.state.balances.get(quote if side == "BUY" else base, 0.0)
        if (quantity * price if side == "BUY" else quantity) > have:
            return None
        price = self._move(symbol)
        self.candles.trade(symbol, price, quantity)
        # Market orders fill a few basis points away from the last price.
        slip = self._rng.uniform(0.0, 3e-4)
        fill = price * (1 + slip if side == "BUY" else 1 - slip)
        order_id = self.state.next_order_id
        self.state.next_order_id += 1
        order = {
            "symbol": symbol, "orderId": order_id,
            "clientOrderId": client_order_id or f"demo-{order_id}",
            "transactTime": int(time.time() * 1000), "price": "0.00000000",
            "origQty": f"{quantity:.8f}", "executedQty": f"{quantity:.8f}",
            "cummulativeQuoteQty": f"{quantity * fill:.8f}", "status": "FILLED",
            "timeInForce": "GTC", "type": order_type, "side": side,
            "fills": [{"price": f"{fill:.2f}", "qty": f"{quantity:.8f}",
                       "commission": "0.00000000", "commissionAsset": "USDT"}],
        }
        if len(self.state.orders) >= 10_000:  # bounded, oldest first
            self.state.orders.pop(next(iter(self.state.orders)))
        self.state.orders[order_id] = order
        return order

    def _known_order(self, params: dict[str, str]) -> dict[str, Any] | Response:
        try:
            order_id = int(params.get("orderId", ""))
        except ValueError:
            return self._error(400, -1102, "Mandatory parameter 'orderId' was not sent.")
        order = self.state.orders.get(order_id)
        if order is None or order["symbol"] != params.get("symbol"):
            return self._error(400, -2013, "Order does not exist.")
        return order

    async def query_order(self, request: Request) -> Response:
        params = await self._signed_request(request)
        if isinstance(params, Response):
            return params
        order = self._known_order(params)
        return order if isinstance(order, Response) else self._reply(order, weight=4)

    async def cancel_order(self, request: Request) -> Response:
        params = await self._signed_request(request)
        if isinstance(params, Response):
            return params
        order = self._known_order(params)
        if isinstance(order, Response):
            return order
        return self._error(400, -2011, "Unknown order sent.")  # market orders are filled

    def _move(self, symbol: str) -> float:
        price = self.state.prices[symbol]
        price *= 1 + self.faults.market_drift + self._rng.gauss(0.0, 2e-4)
        self.state.prices[symbol] = price
        return price



def _symbol_info(symbol: str) -> dict[str, Any]:
    base, quote = symbol[:-4], symbol[-4:]
    return {
        "symbol": symbol, "status": "TRADING", "baseAsset": base, "baseAssetPrecision": 8,
        "quoteAsset": quote, "quotePrecision": 8, "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8, "quoteCommissionPrecision": 8,
        "orderTypes": ["LIMIT", "MARKET"], "icebergAllowed": True, "ocoAllowed": True,
        "quoteOrderQtyMarketAllowed": True, "allowTrailingStop": False,
        "cancelReplaceAllowed": True, "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": "0.01000000",
             "maxPrice": "1000000.00000000", "tickSize": "0.01000000"},
            {"filterType": "LOT_SIZE", "minQty": "0.00001000", "maxQty": "9000.00000000",
             "stepSize": "0.00001000"},
            {"filterType": "MARKET_LOT_SIZE", "minQty": "0.00000000",
             "maxQty": "9000.00000000", "stepSize": "0.00000000"},
            {"filterType": "NOTIONAL", "minNotional": "5.00000000",
             "applyMinToMarket": True, "maxNotional": "9000000.00000000",
             "applyMaxToMarket": False, "avgPriceMins": 5},
        ],
        "permissions": [], "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["NONE", "EXPIRE_TAKER", "EXPIRE_MAKER"],
    }
