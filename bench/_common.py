"""Fixtures shared by the bench scripts: exporters that drop, signed requests, spans.

Kept here so that two scripts measuring the same pipeline build it the same way.
"""

from __future__ import annotations

import contextlib
import secrets
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from itertools import cycle
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind

from otel_botmon import conventions as conv
from otel_botmon import redaction


class DropExporter(SpanExporter):
    """Accepts spans and forgets them: the cost of a real exporter without the I/O."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


def provider_with(processor: SpanProcessor) -> TracerProvider:
    """A tracer provider whose only span processor is ``processor``."""
    provider = TracerProvider()
    provider.add_span_processor(processor)
    return provider


# What a bot signs: a handful of Binance endpoints, each with its own parameter list,
# called in turn; every request has a fresh timestamp and signature.
_SIGNED_ENDPOINTS = [
    ("POST", "/api/v3/order", "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC"
                              "&quantity=0.001&price=45000.00"),
    ("POST", "/api/v3/order", "symbol=ETHUSDT&side=SELL&type=MARKET&quantity=0.05"),
    ("GET", "/api/v3/openOrders", "symbol=BTCUSDT"),
    ("GET", "/api/v3/account", "omitZeroBalances=true"),
    ("DELETE", "/api/v3/order", "symbol=BTCUSDT&orderId=28457"),
    ("GET", "/api/v3/myTrades", "symbol=ETHUSDT&limit=50"),
]


def signed_requests(count: int = 4096) -> list[tuple[str, str]]:
    """``count`` (method, signed URL) pairs, each with its own timestamp and signature."""
    out = []
    for i in range(count):
        method, path, params = _SIGNED_ENDPOINTS[i % len(_SIGNED_ENDPOINTS)]
        out.append((method, f"https://api.binance.com{path}?{params}"
                            f"&timestamp={1700000000000 + i}&recvWindow=5000"
                            f"&signature={secrets.token_hex(32)}"))
    return out


def public_requests() -> list[tuple[str, str]]:
    """Unsigned market-data requests, as a bot polls them (no secret in them)."""
    return [("GET", f"https://api.binance.com{path}")
            for path in ("/api/v3/ticker/price?symbol=BTCUSDT",
                         "/api/v3/depth?symbol=ETHUSDT&limit=100",
                         "/api/v3/klines?symbol=BTCUSDT&interval=1m&limit=500",
                         "/api/v3/exchangeInfo", "/api/v3/time")]


# A Binance API key as the contrib instrumentations record a captured request header
# (OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST): a tuple of the values.
API_KEY_HEADER: Mapping[str, Any] = {
    "http.request.header.x_mbx_apikey": (
        "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A",),
}


# The bot's API secret (what signs the requests; never sent). The README asks users to
# register their key and secret (botmon.register_secret), and instrument_ccxt registers
# the exchange instance's apiKey and secret itself.
API_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
API_KEY = API_KEY_HEADER["http.request.header.x_mbx_apikey"][0]


@contextlib.contextmanager
def registered_secrets(*values: str) -> Iterator[None]:
    """These literals registered as secrets (as a bot does at start) for the block,
    forgotten after it."""
    for value in values:
        redaction.register_secret(value)
    try:
        yield
    finally:
        redaction.forget_secrets()


def http_client_span(provider: TracerProvider, requests: Sequence[tuple[str, str]],
                     headers: Mapping[str, Any] | None = None) -> Callable[[], None]:
    """One call = one HTTP client span (as the httpx/requests contrib sets it) for the
    next request of ``requests``, with these captured-header attributes, ended at once."""
    tracer = provider.get_tracer("bench")
    feed = cycle(requests)
    extra = dict(headers or {})

    def one() -> None:
        method, url = next(feed)
        tracer.start_span(method, kind=SpanKind.CLIENT, attributes={
            "http.request.method": method, "url.full": url,
            "server.address": "api.binance.com", "server.port": 443,
            "http.response.status_code": 200, **extra,
        }).end()

    return one


TRADE_ATTRIBUTES: Mapping[str, Any] = {
    conv.TRADING_SYMBOL: "BTCUSDT", conv.TRADING_SIDE: "BUY",
    conv.TRADING_ORDER_TYPE: "MARKET", conv.TRADING_QUANTITY: 0.001,
    conv.TRADING_PRICE: 45000.0, conv.TRADING_OUTCOME: "filled",
}


def trade_span(provider: TracerProvider) -> Callable[[], None]:
    """One call = one trade-like span (symbol, side, type, quantity, price, outcome)
    with a fresh price each time, ended at once: a span without any secret."""
    tracer = provider.get_tracer("bench")
    prices = cycle([45000.0 + i * 0.5 for i in range(1000)])

    def one() -> None:
        tracer.start_span("trade BTCUSDT", attributes={
            **TRADE_ATTRIBUTES, conv.TRADING_PRICE: next(prices)}).end()

    return one
