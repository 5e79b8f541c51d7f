"""A simulated Binance-like spot exchange on loopback, with injectable faults.

Speaks enough of the Binance REST wire format for the demo bot and the exchange health
check: ``GET /api/v3/ping``, ``GET /api/v3/time``, signed ``GET /api/v3/account`` and
signed ``POST /api/v3/order`` (HMAC-SHA256 ``signature`` over the query string and body,
``X-MBX-APIKEY`` header), with ``X-MBX-USED-WEIGHT-1M`` and ``X-MBX-ORDER-COUNT-10S``
headers and Binance's JSON error bodies. :class:`Faults` turns on latency spikes, 429s
with ``Retry-After``, 5xx errors and a falling market while it runs.
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

START_PRICES = {"BTCUSDT": 45000.0, "ETHUSDT": 2400.0, "BNBUSDT": 310.0}
RECV_WINDOW_MS = 5000


@dataclass
class Faults:
    """What is going wrong right now; the scenario flips these while the demo runs."""

    extra_latency_s: float = 0.0
    """Added to every response (a latency spike)."""
    rate_limited: bool = False
    """Signed endpoints answer 429 with ``Retry-After``."""
    retry_after_s: int = 1
    server_error_rate: float = 0.0
    """Share of signed requests that answer 503."""
    market_drift: float = 0.001
    """Price change per order as a fraction; negative makes every long position lose."""


@dataclass
class _Weights:
    minute: int = -1
    used: int = 0
    orders_window: int = -1
    orders: int = 0

    def spend(self, weight: int, now: float) -> None:
        minute = int(now // 60)
        if minute != self.minute:
            self.minute, self.used = minute, 0
        self.used += weight

    def order(self, now: float) -> None:
        window = int(now // 10)
        if window != self.orders_window:
            self.orders_window, self.orders = window, 0
        self.orders += 1


@dataclass
class ExchangeState:
    prices: dict[str, float] = field(default_factory=lambda: dict(START_PRICES))
    next_order_id: int = 1
    requests: int = 0
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
        self.app = Starlette(routes=[
            Route("/api/v3/ping", self.ping, methods=["GET"]),
            Route("/api/v3/time", self.server_time, methods=["GET"]),
            Route("/api/v3/account", self.account, methods=["GET"]),
            Route("/api/v3/order", self.order, methods=["POST"]),
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
               headers: dict[str, str] | None = None) -> Response:
        now = time.time()
        self._weights.spend(weight, now)
        all_headers = {"X-MBX-USED-WEIGHT-1M": str(self._weights.used)}
        if self._weights.orders:
            all_headers["X-MBX-ORDER-COUNT-10S"] = str(self._weights.orders)
        all_headers.update(headers or {})
        return JSONResponse(body, status_code=status, headers=all_headers)

    def _error(self, status: int, code: int, msg: str, **kw: Any) -> Response:
        return self._reply({"code": code, "msg": msg}, status=status, **kw)

    async def _delay(self) -> None:
        self.state.requests += 1
        if self.faults.extra_latency_s > 0:
            await asyncio.sleep(self.faults.extra_latency_s * self._rng.uniform(0.8, 1.2))

    async def _signed_request(self, request: Request) -> dict[str, str] | Response:
        """After the simulated latency: the parameters of a signed request, or the error
        (bad key or signature, or an injected fault) to reply with."""
        await self._delay()
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
        # Binance signs the query string (without the signature) followed by the body.
        unsigned_query = "&".join(
            part for part in query.split("&") if part and not part.startswith("signature=")
        )
        signed_text = unsigned_query + body
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
        if self.faults.server_error_rate and self._rng.random() < self.faults.server_error_rate:
            return self._error(503, -1001, "Service unavailable.")
        return None

    # --- endpoints ----------------------------------------------------------------------

    async def ping(self, request: Request) -> Response:
        await self._delay()
        return self._reply({})

    async def server_time(self, request: Request) -> Response:
        await self._delay()
        return self._reply({"serverTime": int(time.time() * 1000)})

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
        price = self._move(symbol)
        # Market orders fill a few basis points away from the last price.
        slip = self._rng.uniform(0.0, 3e-4)
        fill = price * (1 + slip if side == "BUY" else 1 - slip)
        order_id = self.state.next_order_id
        self.state.next_order_id += 1
        return self._reply({
            "symbol": symbol, "orderId": order_id, "clientOrderId": f"demo-{order_id}",
            "transactTime": int(time.time() * 1000), "price": "0.00000000",
            "origQty": f"{quantity:.8f}", "executedQty": f"{quantity:.8f}",
            "cummulativeQuoteQty": f"{quantity * fill:.8f}", "status": "FILLED",
            "timeInForce": "GTC", "type": params.get("type", "MARKET"), "side": side,
            "fills": [{"price": f"{fill:.2f}", "qty": f"{quantity:.8f}",
                       "commission": "0.00000000", "commissionAsset": "USDT"}],
        })

    def _move(self, symbol: str) -> float:
        price = self.state.prices[symbol]
        price *= 1 + self.faults.market_drift + self._rng.gauss(0.0, 2e-4)
        self.state.prices[symbol] = price
        return price

