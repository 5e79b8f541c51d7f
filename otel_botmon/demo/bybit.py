"""Bybit's v5 REST wire format on the simulated exchange (for pybit and ccxt.bybit users).

Served under ``/v5`` beside the Binance routes, on the same prices and balances:
``GET /v5/market/time``, ``/v5/market/tickers``, signed ``GET /v5/account/wallet-balance``
and signed ``POST /v5/order/create``. Signed requests carry ``X-BAPI-API-KEY``,
``X-BAPI-TIMESTAMP``, ``X-BAPI-RECV-WINDOW`` and ``X-BAPI-SIGN`` (HMAC-SHA256 of timestamp,
key, receive window and the query string or JSON body). Every signed reply carries Bybit's
per-endpoint, per-second rate-limit headers (``X-Bapi-Limit``, ``X-Bapi-Limit-Status``,
``X-Bapi-Limit-Reset-Timestamp``); past the limit the reply is ``retCode 10006`` over
HTTP 200, as Bybit does. Errors are ``retCode``/``retMsg`` bodies over HTTP 200 (an order
larger than the balance: ``170131``); the injected 429/418 faults answer HTTP 403, which is
how Bybit refuses an IP that sent too much.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Final

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

if TYPE_CHECKING:
    from otel_botmon.demo.exchange import SimulatedExchange

__all__ = ["LIMITS_PER_SECOND", "bybit_routes"]

LIMITS_PER_SECOND: Final = {"/v5/order/create": 20, "/v5/account/wallet-balance": 50}
"""Each signed endpoint's budget per second (Bybit's UTA defaults for these two)."""

_RECV_WINDOW_MS: Final = 5000


class _Bybit:
    def __init__(self, exchange: SimulatedExchange) -> None:
        self.exchange = exchange
        self._secret = exchange.api_secret_bytes
        self._second = -1
        self._used: dict[str, int] = {}

    # --- plumbing -----------------------------------------------------------------------

    def _reply(self, result: Any, ret_code: int = 0, msg: str = "OK", status: int = 200,
               headers: dict[str, str] | None = None) -> Response:
        body = {"retCode": ret_code, "retMsg": msg, "result": result, "retExtInfo": {},
                "time": int(time.time() * 1000)}
        return JSONResponse(body, status_code=status, headers=headers)

    def _limit_headers(self, path: str) -> tuple[dict[str, str], bool]:
        """The endpoint's rate-limit headers after spending one request; True when over."""
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second, self._used = second, {}
        used = self._used[path] = self._used.get(path, 0) + 1
        limit = LIMITS_PER_SECOND[path]
        headers = {"X-Bapi-Limit": str(limit),
                   "X-Bapi-Limit-Status": str(max(limit - used, 0)),
                   "X-Bapi-Limit-Reset-Timestamp": str((second + 1) * 1000)}
        return headers, used > limit

    async def _blocked(self) -> Response | None:
        """The simulated latency; then HTTP 403 while the faults refuse this IP."""
        faults = self.exchange.faults
        await self.exchange.delay()
        if faults.banned or faults.rate_limited:
            return JSONResponse(
                {"retCode": 10018, "retMsg": "access too frequent"}, status_code=403)
        return None

    async def _signed(self, request: Request) -> tuple[dict[str, Any], dict[str, str]] | Response:
        """(parameters, rate-limit headers) of a good signed request, else the reply."""
        blocked = await self._blocked()
        if blocked is not None:
            return blocked
        h = request.headers
        if h.get("x-bapi-api-key") != self.exchange.api_key:
            return self._reply({}, 10003, "API key is invalid.")
        stamp, window = h.get("x-bapi-timestamp", ""), h.get("x-bapi-recv-window", "")
        body = (await request.body()).decode("utf-8", "replace")
        payload = request.url.query if request.method == "GET" else body
        expected = hmac.new(self._secret, f"{stamp}{self.exchange.api_key}{window}{payload}"
                            .encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, h.get("x-bapi-sign", "")):
            return self._reply({}, 10004, "error sign! origin_string[REDACTED]")
        try:
            late = abs(time.time() * 1000 - int(stamp)) > int(window or _RECV_WINDOW_MS)
        except ValueError:
            return self._reply({}, 10001, "params error: timestamp or recv_window")
        if late:
            return self._reply({}, 10002, "invalid request, please check your server timestamp "
                               "or recv_window param")
        headers, over = self._limit_headers(request.url.path)
        if over:
            return self._reply({}, 10006, "Too many visits!", headers=headers)
        if request.method == "GET":
            params: dict[str, Any] = dict(request.query_params)
        else:
            try:
                loaded = json.loads(body or "{}")
            except ValueError:
                return self._reply({}, 10001, "params error: body is not JSON", headers=headers)
            params = loaded if isinstance(loaded, dict) else {}
        if self.exchange.server_error():
            return JSONResponse({"retCode": 10016, "retMsg": "Internal system error."},
                                status_code=503, headers=headers)
        return params, headers

    # --- endpoints ----------------------------------------------------------------------

    async def server_time(self, request: Request) -> Response:
        now = time.time()
        return await self._blocked() or self._reply(
            {"timeSecond": str(int(now)), "timeNano": str(int(now * 1e9))})

    async def tickers(self, request: Request) -> Response:
        blocked = await self._blocked()
        if blocked is not None:
            return blocked
        prices = self.exchange.state.prices
        symbol = request.query_params.get("symbol")
        if symbol is not None and symbol not in prices:
            return self._reply({}, 10001, "Not supported symbols")
        rows = [{"symbol": s, "lastPrice": f"{prices[s]:.2f}",
                 "bid1Price": f"{prices[s] * 0.9999:.2f}", "bid1Size": "1",
                 "ask1Price": f"{prices[s] * 1.0001:.2f}", "ask1Size": "1",
                 "volume24h": "1000", "turnover24h": f"{prices[s] * 1000:.2f}"}
                for s in ([symbol] if symbol else sorted(prices))]
        return self._reply({"category": request.query_params.get("category", "spot"),
                            "list": rows})

    async def wallet_balance(self, request: Request) -> Response:
        signed = await self._signed(request)
        if isinstance(signed, Response):
            return signed
        _params, headers = signed
        coins = [{"coin": c, "walletBalance": f"{v:.8f}", "locked": "0"}
                 for c, v in sorted(self.exchange.state.balances.items())]
        return self._reply({"list": [{"accountType": "UNIFIED", "coin": coins}]},
                           headers=headers)

    async def create_order(self, request: Request) -> Response:
        signed = await self._signed(request)
        if isinstance(signed, Response):
            return signed
        params, headers = signed
        side = {"Buy": "BUY", "Sell": "SELL"}.get(str(params.get("side")))
        symbol = str(params.get("symbol", ""))
        if side is None or symbol not in self.exchange.state.prices:
            return self._reply({}, 10001, "params error: side or symbol", headers=headers)
        try:
            quantity = float(params.get("qty", ""))
        except (TypeError, ValueError):
            quantity = 0.0
        if not quantity > 0:
            return self._reply({}, 10001, "params error: qty", headers=headers)
        order = self.exchange.fill_market_order(symbol, side, quantity)
        if order is None:
            return self._reply({}, 170131, "Insufficient balance.", headers=headers)
        return self._reply({"orderId": str(order["orderId"]),
                            "orderLinkId": str(params.get("orderLinkId", ""))},
                           headers=headers)


def bybit_routes(exchange: SimulatedExchange) -> list[Route]:
    """The ``/v5`` routes of ``exchange`` (sharing its prices, balances and faults)."""
    bybit = _Bybit(exchange)
    handlers: list[tuple[str, Callable[[Request], Coroutine[Any, Any, Response]], str]] = [
        ("/v5/market/time", bybit.server_time, "GET"),
        ("/v5/market/tickers", bybit.tickers, "GET"),
        ("/v5/account/wallet-balance", bybit.wallet_balance, "GET"),
        ("/v5/order/create", bybit.create_order, "POST"),
    ]
    return [Route(path, handler, methods=[method]) for path, handler, method in handlers]
