"""A python-binance bot (sync on requests, async on aiohttp) monitored with otel_botmon.

    python examples/python_binance_bot.py   # starts its own simulated exchange on 127.0.0.1

or against ``botmon demo --exchange-only --port 8002`` with
``BOTMON_EXCHANGE_URL=http://127.0.0.1:8002``. The same two calls cover
binance-connector, pybit and the other requests/aiohttp-based clients.
"""

import asyncio
import os

from binance import AsyncClient
from binance.client import Client
from binance.exceptions import BinanceAPIException

import otel_botmon as botmon
from otel_botmon.demo.serve import ExchangeThread

API_KEY = os.environ.get("BOTMON_DEMO_API_KEY", "demo-api-key")
API_SECRET = os.environ.get("BOTMON_DEMO_API_SECRET", "demo-api-secret")


def run_sync(base_url):
    botmon.instrument_requests(exchange="binance")  # every requests.Session
    client = Client(API_KEY, API_SECRET, ping=False)
    client.API_URL = base_url + "/api"  # the simulated exchange instead of api.binance.com
    price = float(client.get_symbol_ticker(symbol="BTCUSDT")["price"])
    # an exchange_call around the client: one logical call, each request still counted once
    with botmon.exchange_call(exchange="binance", endpoint="get_account"):
        balances = client.get_account()["balances"]
    usdt = next(b["free"] for b in balances if b["asset"] == "USDT")
    with botmon.trade(symbol="BTCUSDT", side="BUY", quantity=0.002, price=price,
                      order_type="MARKET") as t:
        order = client.create_order(symbol="BTCUSDT", side="BUY", type="MARKET",
                                    quantity=0.002)
        t.filled(price=float(order["fills"][0]["price"]), quantity=0.002)
    print(f"sync: bought 0.002 BTC at {order['fills'][0]['price']} (had {usdt} USDT)")
    try:
        with botmon.trade(symbol="BTCUSDT", side="BUY", quantity=100, price=price) as t:
            try:
                client.create_order(symbol="BTCUSDT", side="BUY", type="MARKET", quantity=100)
            except BinanceAPIException as exc:
                t.rejected(exc.message)
                raise
    except BinanceAPIException as exc:
        print(f"sync: order rejected: {exc.code}")


async def run_async(base_url):
    botmon.instrument_aiohttp(exchange="binance")  # every aiohttp.ClientSession from now on
    client = AsyncClient(API_KEY, API_SECRET)
    client.API_URL = base_url + "/api"
    try:
        async with botmon.trade(symbol="BNBUSDT", side="SELL", quantity=1.0,
                                order_type="MARKET") as t:
            order = await client.create_order(symbol="BNBUSDT", side="SELL", type="MARKET",
                                              quantity=1)
            t.filled(price=float(order["fills"][0]["price"]), quantity=1.0)
        print(f"async: sold 1 BNB at {order['fills'][0]['price']}")
    finally:
        await client.close_connection()


def summary(tel):
    totals = {}
    for rm in tel.metric_reader.get_metrics_data().resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                for point in metric.data.data_points:
                    attrs = dict(point.attributes)
                    if metric.name == "botmon.exchange.requests":
                        key = f"requests {attrs.get('http.response.status_code')}"
                    elif metric.name == "botmon.trades":
                        key = f"trades {attrs['trading.outcome']}"
                    else:
                        continue
                    totals[key] = totals.get(key, 0) + point.value
    for key in sorted(totals):
        print(f"{key}: {totals[key]}")


def main():
    tel = botmon.configure(service_name="binance-bot", bot_name="python-binance-example",
                           exchange="binance")
    url = os.environ.get("BOTMON_EXCHANGE_URL")
    server = None if url else ExchangeThread(API_KEY, API_SECRET).start()
    try:
        base_url = url or server.base_url
        run_sync(base_url)
        asyncio.run(run_async(base_url))
        summary(tel)
    finally:
        botmon.uninstrument_requests()
        botmon.uninstrument_aiohttp()
        if server is not None:
            server.stop()
        tel.shutdown()


if __name__ == "__main__":
    main()
