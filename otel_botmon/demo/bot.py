"""The demo's trading bot: real HTTP to the simulated exchange, instrumented end to end.

Orders go through ``@trade`` and an httpx client wired with ``instrument_httpx``; each
request is signed the Binance way (``signature=`` HMAC in the query string and the
``X-MBX-APIKEY`` header), so the demo also shows that neither secret leaks. It buys and
sells in turns, closes positions through ``record_position_closed`` and beats the
trading-engine heartbeat on every loop (unless the scenario stalls it).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx

from otel_botmon.alerting.model import AlertSeverity, AlertType
from otel_botmon.instrument.httpx import instrument_httpx, uninstrument_httpx
from otel_botmon.instrument.trading import current_trade, record_position_closed, trade
from otel_botmon.monitor import SystemMonitor

logger = logging.getLogger("otel_botmon.demo")

QUANTITIES = {"BTCUSDT": 0.002, "ETHUSDT": 0.05, "BNBUSDT": 0.5}


class RateLimited(Exception):
    """The exchange answered 429; wait ``retry_after`` seconds."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"rate limited by the exchange, retry after {retry_after:g} s")
        self.retry_after = retry_after


@dataclass
class BotStats:
    trades: int = 0
    failed: int = 0
    rate_limited: int = 0
    closed: int = 0
    pnl: float = 0.0
    open_positions: dict[str, tuple[float, float]] = field(default_factory=dict)


class DemoBot:
    """Trades every ``interval_s`` seconds until cancelled.

    ``stall_heartbeat`` (set by the scenario) makes the loop hang without heartbeats, as
    a stuck strategy would.
    """

    def __init__(
        self, base_url: str, api_key: str, api_secret: str, monitor: SystemMonitor, *,
        interval_s: float = 0.5, symbols: tuple[str, ...] = ("BTCUSDT", "ETHUSDT"),
        seed: int | None = None,
    ) -> None:
        self.base_url = base_url
        self._api_key = api_key
        self._secret = api_secret.encode("utf-8")
        self.monitor = monitor
        self.interval_s = interval_s
        self.symbols = symbols
        self.stall_heartbeat = False
        self.stats = BotStats()
        self._rng = random.Random(seed)
        self._failure_alert: str | None = None
        self._successes_since_failure = 0
        self._client: httpx.AsyncClient | None = None

    def __repr__(self) -> str:  # never show the key or the secret
        return f"DemoBot(base_url={self.base_url!r})"

    async def run(self) -> None:
        """The trading loop; returns only when cancelled."""
        async with httpx.AsyncClient(base_url=self.base_url, timeout=10.0) as client:
            instrument_httpx(client, exchange="binance")
            self._client = client
            try:
                await self._loop()
            finally:
                self._client = None
                uninstrument_httpx(client)

    async def _loop(self) -> None:
        step = 0
        while True:
            while self.stall_heartbeat:
                await asyncio.sleep(0.05)
            self.monitor.heartbeat()
            symbol = self.symbols[step % len(self.symbols)]
            try:
                await self._trade_once(symbol)
                if step % 10 == 0:
                    await self.get_account_info()
            except RateLimited as exc:
                self.stats.rate_limited += 1
                await asyncio.sleep(min(exc.retry_after, 5.0))
            except httpx.HTTPError as exc:
                await self._on_failure(symbol, exc)
            step += 1
            await asyncio.sleep(self.interval_s)

    async def _trade_once(self, symbol: str) -> None:
        position = self.stats.open_positions.get(symbol)
        side = "SELL" if position is not None else "BUY"
        quantity = QUANTITIES.get(symbol, 0.01)
        fill = await self.place_order(symbol, side, quantity, self._guess_price(symbol))
        self.stats.trades += 1
        await self._on_success()
        if side == "BUY":
            self.stats.open_positions[symbol] = (fill, quantity)
        else:
            assert position is not None
            entry, qty = self.stats.open_positions.pop(symbol)
            pnl = (fill - entry) * qty
            record_position_closed(symbol=symbol, pnl=pnl)
            self.stats.closed += 1
            self.stats.pnl += pnl

    def _guess_price(self, symbol: str) -> float:
        position = self.stats.open_positions.get(symbol)
        return position[0] if position else {"BTCUSDT": 45000.0, "ETHUSDT": 2400.0}.get(
            symbol, 300.0)

    @trade(order_type="MARKET")
    async def place_order(self, symbol: str, side: str, quantity: float, price: float) -> float:
        """Send a market order; returns the fill price. ``RateLimited`` on 429,
        ``httpx.HTTPStatusError`` on other errors."""
        response = await self._signed("POST", "/api/v3/order", {
            "symbol": symbol, "side": side, "type": "MARKET", "quantity": f"{quantity:.8f}",
        })
        body = response.json()
        fill = float(body["fills"][0]["price"])
        active = current_trade()
        if active is not None:
            active.filled(price=fill, quantity=float(body["executedQty"]))
        return fill

    async def get_account_info(self) -> dict[str, Any]:
        response = await self._signed("GET", "/api/v3/account", {})
        result: dict[str, Any] = response.json()
        return result

    async def _signed(self, method: str, path: str, params: dict[str, str]) -> httpx.Response:
        assert self._client is not None, "the bot is not running"
        query = urlencode({**params, "timestamp": int(time.time() * 1000), "recvWindow": 5000})
        signature = hmac.new(self._secret, query.encode("utf-8"), hashlib.sha256).hexdigest()
        response = await self._client.request(
            method, f"{path}?{query}&signature={signature}",
            headers={"X-MBX-APIKEY": self._api_key},
        )
        if response.status_code == 429:
            active = current_trade()
            if active is not None:
                active.rejected("rate limited (HTTP 429)")
            raise RateLimited(float(response.headers.get("Retry-After", "1")))
        response.raise_for_status()
        return response

    async def _on_failure(self, symbol: str, exc: Exception) -> None:
        self.stats.failed += 1
        self._successes_since_failure = 0
        # The guide's pattern: a failed trade raises a custom alert. The exception text
        # holds the signed URL; the dashboard and notifications scrub it.
        with contextlib.suppress(Exception):
            self._failure_alert = await self.monitor.create_custom_alert(
                title="Trade Execution Failed",
                message=f"Failed to execute order for {symbol}: {exc}",
                severity=AlertSeverity.CRITICAL, alert_type=AlertType.TRADING,
            )

    async def _on_success(self) -> None:
        self._successes_since_failure += 1
        if self._failure_alert is not None and self._successes_since_failure >= 5:
            alert_id, self._failure_alert = self._failure_alert, None
            with contextlib.suppress(Exception):
                await self.monitor.resolve_alert(alert_id, "demo-bot")
