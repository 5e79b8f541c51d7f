"""The simulated exchange for people's own bots: in a background thread, or in the foreground.

``botmon demo --exchange-only`` runs :func:`serve_forever`; tests and the examples use
:class:`ExchangeThread`, which serves the exchange from its own event loop so that
synchronous clients (ccxt, python-binance, binance-connector) can call it::

    with ExchangeThread(api_key, api_secret) as server:
        exchange = ccxt.binance({"apiKey": api_key, "secret": api_secret})
        exchange.urls["api"] = local_urls(exchange.urls["api"], server.base_url)
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from types import TracebackType
from typing import Any, TextIO
from urllib.parse import urlsplit, urlunsplit

from otel_botmon.demo.exchange import SimulatedExchange

__all__ = ["ExchangeThread", "local_urls", "serve_forever"]


def local_urls(urls: Mapping[str, Any], base_url: str) -> dict[str, Any]:
    """A client's API URL table pointed at ``base_url``, paths kept.

    ``{"public": "https://api.binance.com/api/v3"}`` becomes
    ``{"public": "http://127.0.0.1:PORT/api/v3"}``; nested tables are followed.
    """
    base = urlsplit(base_url)
    moved: dict[str, Any] = {}
    for key, value in urls.items():
        if isinstance(value, Mapping):
            moved[key] = local_urls(value, base_url)
        elif isinstance(value, str) and "://" in value:
            parts = urlsplit(value)
            moved[key] = urlunsplit((base.scheme, base.netloc, parts.path, parts.query, ""))
        else:
            moved[key] = value
    return moved


class ExchangeThread:
    """A :class:`SimulatedExchange` served on 127.0.0.1 from a background thread."""

    def __init__(self, api_key: str, api_secret: str, *, port: int = 0,
                 seed: int | None = None) -> None:
        self.exchange = SimulatedExchange(api_key, api_secret, port=port, seed=seed)
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="botmon-exchange", daemon=True)

    @property
    def base_url(self) -> str:
        return self.exchange.base_url

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self.exchange.start())
        except BaseException as exc:  # reported to start()
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self.exchange.stop())
        self._loop.close()

    def start(self) -> ExchangeThread:
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()

    def __enter__(self) -> ExchangeThread:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


async def serve_forever(api_key: str, api_secret: str, port: int, out: TextIO) -> None:
    """Serve the simulated exchange on 127.0.0.1:``port`` until cancelled."""
    exchange = SimulatedExchange(api_key, api_secret, port=port)
    await exchange.start()
    out.write(f"simulated exchange on {exchange.base_url} (Binance spot and Bybit v5 "
              "wire formats); "
              "Ctrl+C stops it\n")
    out.flush()
    try:
        await asyncio.Event().wait()
    finally:
        await exchange.stop()
