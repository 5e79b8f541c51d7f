"""A ccxt bot, sync and async, monitored with otel_botmon against the simulated exchange.

    python examples/ccxt_bot.py             # starts its own simulated exchange on 127.0.0.1

or against the one ``botmon demo --exchange-only`` serves (the same Binance wire format):

    botmon demo --exchange-only --port 8002 &
    BOTMON_EXCHANGE_URL=http://127.0.0.1:8002 python examples/ccxt_bot.py

``instrument_ccxt`` gives one span per HTTP request under the trade, the request metrics
with their status codes, the rate-limit gauges and rejected trades from ccxt's errors.
"""

import asyncio
import os

import ccxt
import ccxt.async_support as ccxt_async

import otel_botmon as botmon
from otel_botmon.demo.serve import ExchangeThread, local_urls

API_KEY = os.environ.get("BOTMON_DEMO_API_KEY", "demo-api-key")
API_SECRET = os.environ.get("BOTMON_DEMO_API_SECRET", "demo-api-secret")


def make_exchange(module, base_url):
    exchange = module.binance({
        "apiKey": API_KEY, "secret": API_SECRET,
        "options": {"fetchMarkets": {"types": ["spot"]}},
    })
    # ccxt calls api.binance.com; point every API URL at the simulated exchange instead
    exchange.urls["api"] = local_urls(exchange.urls["api"], base_url)
    return exchange


def run_sync(base_url):
    exchange = make_exchange(ccxt, base_url)
    botmon.instrument_ccxt(exchange)  # this instance
    exchange.load_markets()
    price = exchange.fetch_ticker("BTC/USDT")["last"]
    with botmon.trade(symbol="BTCUSDT", side="BUY", quantity=0.001, price=price,
                      order_type="MARKET") as t:
        order = exchange.create_order("BTC/USDT", "market", "buy", 0.001)
        t.filled(price=order["average"], quantity=order["filled"])
    print(f"sync: bought {order['filled']} BTC at {order['average']:.2f}")
    try:
        with botmon.trade(symbol="BTCUSDT", side="BUY", quantity=1000, price=price):
            exchange.create_order("BTC/USDT", "market", "buy", 1000)  # more than the balance
    except ccxt.InsufficientFunds:
        print("sync: order rejected: insufficient funds")


async def run_async(base_url):
    botmon.instrument_ccxt()  # every exchange created from now on
    exchange = make_exchange(ccxt_async, base_url)
    try:
        await exchange.load_markets()
        balance = await exchange.fetch_balance()
        async with botmon.trade(symbol="ETHUSDT", side="SELL", quantity=0.5,
                                order_type="MARKET") as t:
            order = await exchange.create_order("ETH/USDT", "market", "sell", 0.5)
            t.filled(price=order["average"], quantity=order["filled"])
        print(f"async: sold 0.5 ETH at {order['average']:.2f} "
              f"(had {balance['ETH']['free']} ETH)")
    finally:
        await exchange.close()


def summary(tel):
    totals = {}
    for rm in tel.metric_reader.get_metrics_data().resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                for point in metric.data.data_points:
                    attrs = dict(point.attributes)
                    if metric.name == "botmon.exchange.requests":
                        key = f"requests {attrs.get('http.response.status_code')}"
                        totals[key] = totals.get(key, 0) + point.value
                    elif metric.name == "botmon.trades":
                        key = f"trades {attrs['trading.outcome']}"
                        totals[key] = totals.get(key, 0) + point.value
                    elif metric.name == "botmon.exchange.ratelimit.utilization":
                        totals[f"utilization {attrs['ratelimit.budget']} "
                               f"{attrs['ratelimit.interval']}"] = round(point.value, 4)
    for key in sorted(totals):
        print(f"{key}: {totals[key]}")


def main():
    tel = botmon.configure(service_name="ccxt-bot", bot_name="ccxt-example",
                           exchange="binance")
    url = os.environ.get("BOTMON_EXCHANGE_URL")
    server = None if url else ExchangeThread(API_KEY, API_SECRET).start()
    try:
        base_url = url or server.base_url
        run_sync(base_url)
        asyncio.run(run_async(base_url))
        summary(tel)
    finally:
        botmon.uninstrument_ccxt()
        if server is not None:
            server.stop()
        tel.shutdown()


if __name__ == "__main__":
    main()
