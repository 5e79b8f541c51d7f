"""A small trading bot run as a separate process by the fleet tests.

It configures otel_botmon from its command line (Prometheus endpoint, OTLP endpoint,
InfluxDB), then trades until SIGTERM: decorated trades with every outcome, closed
positions with wins and losses, exchange calls (successes, HTTP errors, exceptions,
rate-limit headers), health checks, host metrics and one internal error, so every
dashboard panel has something to show. It prints ``READY`` once the first round is done.

    python tests/integration/fleet/bot_process.py --bot-name a --prometheus-port 9464
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

# Run as a script: make the repository importable without installing it.
sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from opentelemetry.metrics import CallbackOptions, Observation

from otel_botmon import conventions as conv
from otel_botmon import telemetry
from otel_botmon._internal import report_internal_error
from otel_botmon.instrument.exchange import exchange_call
from otel_botmon.instrument.ratelimit import record_ratelimit_headers
from otel_botmon.instrument.trading import (
    current_trade,
    record_position_closed,
    trade,
)
from otel_botmon.observe.health import HealthChecker, HealthStatus
from otel_botmon.observe.host import HostObserver

SYMBOLS = ("BTCUSDT", "ETHUSDT")


class OrderRejected(Exception):
    """What the fake exchange raises for a bad order."""


@dataclass
class FakeResponse:
    status_code: int


@trade
def place_order(symbol: str, side: str, quantity: float, price: float, round_no: int) -> str:
    """Decorated trade; the outcome cycles through filled, partial, rejected and error."""
    t = current_trade()
    assert t is not None
    kind = round_no % 6
    if kind == 4:
        t.rejected("insufficient balance")
        return "rejected"
    if kind == 5:
        raise OrderRejected("exchange refused the order")
    fill_quantity = quantity / 2 if kind == 3 else quantity
    slip = random.uniform(-0.0005, 0.001)
    t.filled(price=price * (1 + slip if side == "BUY" else 1 - slip), quantity=fill_quantity)
    return "filled"


@exchange_call(exchange="binance", endpoint="get_ticker")
def get_ticker(round_no: int) -> FakeResponse:
    return FakeResponse(429 if round_no % 7 == 6 else 200)


@exchange_call(exchange="binance", endpoint="create_order")
def create_order(round_no: int) -> FakeResponse:
    if round_no % 5 == 4:
        raise TimeoutError("exchange did not answer")
    return FakeResponse(200)


def one_round(round_no: int) -> None:
    for symbol in SYMBOLS:
        side = "BUY" if round_no % 2 == 0 else "SELL"
        price = 45000.0 if symbol == "BTCUSDT" else 2500.0
        try:
            place_order(symbol, side, 0.01, price, round_no)
        except OrderRejected:
            pass
        record_position_closed(symbol=symbol, pnl=random.choice((12.5, -4.0, 7.25)))
    get_ticker(round_no)
    try:
        create_order(round_no)
    except TimeoutError:
        pass
    record_ratelimit_headers(
        {"X-MBX-USED-WEIGHT-1M": str(100 + round_no % 50)}, exchange="binance"
    )
    record_ratelimit_headers(  # what is left: the remaining panel's data
        {"X-Bapi-Limit": "20", "X-Bapi-Limit-Status": str(19 - round_no % 10)},
        exchange="bybit", path="/v5/order/create", method="POST")


def _alerts_gauge() -> None:
    # The embedded evaluator's gauge; this bot runs no evaluator, so it reports a fixed
    # count the way the evaluator would (one firing warning).
    def observe(options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(1, {conv.ALERT_SEVERITY: "warning"})]

    spec = conv.ALERTS_ACTIVE
    telemetry.get_meter().create_observable_gauge(
        spec.name, callbacks=[observe], unit=spec.unit, description=spec.description
    )


async def exchange_check(component: object) -> dict[str, object]:
    return {"status": HealthStatus.HEALTHY, "message": "ping ok"}


async def database_check(component: object) -> dict[str, object]:
    return {"status": HealthStatus.DEGRADED, "message": "replica lagging"}


async def run(args: argparse.Namespace) -> None:
    influxdb = json.loads(args.influxdb) if args.influxdb else None
    telemetry.configure(
        args.service_name, bot_name=args.bot_name, exchange="binance", strategy="fleet-test",
        prometheus_port=args.prometheus_port, otlp_endpoint=args.otlp_endpoint,
        export_interval_s=args.export_interval, influxdb=influxdb,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    host = HostObserver(interval_s=0.5, loop_lag_period_s=0.1)
    host.start()
    health = HealthChecker(default_interval_s=0.5, default_timeout_s=1.0)
    health.register_health_check("exchange_api", exchange_check)
    health.register_health_check("database", database_check)
    await health.start()
    _alerts_gauge()
    report_internal_error("fleet-test", RuntimeError("one internal error for the dashboard"))
    round_no = 0
    while not stop.is_set():
        one_round(round_no)
        if round_no == 0:
            await health.force_check()
            print("READY", flush=True)
        round_no += 1
        try:
            await asyncio.wait_for(stop.wait(), timeout=args.round_interval)
        except TimeoutError:
            pass
    await health.stop()
    host.stop()
    telemetry.shutdown(timeout_s=5.0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--service-name", default="fleet-bot")
    parser.add_argument("--bot-name", default="bot-1")
    parser.add_argument("--prometheus-port", type=int, default=None)
    parser.add_argument("--otlp-endpoint", default=None)
    parser.add_argument("--export-interval", type=float, default=None)
    parser.add_argument("--influxdb", default=None, help="InfluxDBSettings fields as JSON")
    parser.add_argument("--round-interval", type=float, default=0.1)
    asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
