"""Dashboard benchmarks, as ratios measured in one run (the machine is noisy).

Figures go through bench/_harness.py: paired rounds, one ratio per round, the verdict on
the median of the per-round ratios, with the interquartile range beside it.

1. ``dashboard.trade_p99_watched``: p99 of a decorated async trade in the bot's own
   event loop with the dashboard serving 20 WebSocket clients (in another process,
   reading every push) versus the dashboard off. A round is one phase of each (order
   alternating), its ratio the two phases' p99s. Target: <= 1.1.
2. ``dashboard.api_dashboard_vs_status``: ``GET /api/dashboard`` with 10,000 alerts in
   history versus ``GET /api/status`` (median latency of a round's keep-alive requests
   to each). Target: <= 3. ``dashboard.api_dashboard_fresh_vs_status``: the same with the
   snapshot rebuilt on every request (no 1 s cache). Target: <= 3.

    python bench/bench_dashboard.py [--quick] [--repeat N]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._harness import Bench, quantile
from otel_botmon import telemetry
from otel_botmon.alerting.model import AlertSeverity
from otel_botmon.dashboard.server import MonitoringDashboard
from otel_botmon.instrument.trading import trade
from otel_botmon.monitor import MonitoringConfig, SystemMonitor
from otel_botmon.notify import NotificationConfig

CLIENTS = 20

CLIENT_SCRIPT = r"""
import asyncio, sys
from websockets.asyncio.client import connect

async def reader(url, counts, i):
    async with connect(url, max_size=None) as ws:
        counts[i] = 0
        async for _ in ws:
            counts[i] += 1

async def main(url, n):
    counts = {}
    tasks = [asyncio.create_task(reader(url, counts, i)) for i in range(n)]
    while len(counts) < n:
        await asyncio.sleep(0.01)
    print("ready", flush=True)
    await asyncio.gather(*tasks)

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


@trade(order_type="MARKET")
async def place_order(symbol: str, side: str, quantity: float, price: float) -> float:
    await asyncio.sleep(0)  # the exchange round trip: yields to the loop once
    return price


async def trade_for(seconds: float, samples: list[float]) -> None:
    deadline = time.perf_counter() + seconds
    i = 0
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        await place_order("BTCUSDT" if i % 2 else "ETHUSDT", "BUY", 0.001, 45000.0)
        samples.append(time.perf_counter() - started)
        i += 1


async def start_clients(url: str) -> subprocess.Popen[str]:
    # The clients stand for browsers on other machines: niced, so the figure is the
    # dashboard's cost inside the bot's process, not two processes sharing the CPU.
    proc = subprocess.Popen(
        [sys.executable, "-c", CLIENT_SCRIPT, url, str(CLIENTS)],
        stdout=subprocess.PIPE, text=True, preexec_fn=lambda: os.nice(19),
    )
    assert proc.stdout is not None
    line = await asyncio.to_thread(proc.stdout.readline)
    if line.strip() != "ready":
        proc.kill()
        raise RuntimeError("WebSocket clients did not connect")
    return proc


async def trade_with_dashboard(monitor: SystemMonitor, seconds: float, on: list[float]) -> None:
    dashboard = MonitoringDashboard(monitor, port=0)  # default push interval
    await dashboard.start()
    clients = await start_clients(f"ws://127.0.0.1:{dashboard.port}/ws")
    try:
        hub = dashboard.app.state.push_hub
        while hub.client_count < CLIENTS:
            await asyncio.sleep(0.01)
        pushes = hub.pushes
        await trade_for(seconds, on)
        if hub.pushes <= pushes:
            raise RuntimeError("the dashboard pushed nothing while trades ran")
    finally:
        clients.kill()
        clients.wait()
        await dashboard.stop()


class TradeRounds:
    """Rounds of the watched-dashboard figure, driven on the bot's event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, monitor: SystemMonitor,
                 seconds: float) -> None:
        self.loop, self.monitor, self.seconds = loop, monitor, seconds
        self.turn = 0
        self.p99_us: dict[str, list[float]] = {"on": [], "off": []}

    def warmup(self) -> None:
        self.loop.run_until_complete(trade_for(1.0, []))

    def one_round(self) -> float:
        self.turn += 1
        off: list[float] = []
        on: list[float] = []

        async def phases() -> None:
            if self.turn % 2:
                await trade_for(self.seconds, off)
                await trade_with_dashboard(self.monitor, self.seconds, on)
            else:
                await trade_with_dashboard(self.monitor, self.seconds, on)
                await trade_for(self.seconds, off)

        self.loop.run_until_complete(phases())
        on_p99, off_p99 = quantile(on, 0.99), quantile(off, 0.99)
        self.p99_us["on"].append(on_p99 * 1e6)
        self.p99_us["off"].append(off_p99 * 1e6)
        return on_p99 / off_p99

    def detail(self) -> dict[str, Any]:
        return {f"p99_{k}_us_median": round(statistics.median(v), 1)
                for k, v in self.p99_us.items()}


async def median_latency(client: httpx.AsyncClient, path: str, n: int) -> float:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        response = await client.get(path)
        times.append(time.perf_counter() - started)
        response.raise_for_status()
    return statistics.median(times)


async def fill_history(monitor: SystemMonitor, alerts: int) -> int:
    for i in range(alerts):
        alert_id = await monitor.create_custom_alert(f"alert {i}", "history", AlertSeverity.INFO)
        await monitor.resolve_alert(alert_id)
    await monitor.create_custom_alert("still active", "m", AlertSeverity.WARNING)
    return len(monitor.alert_manager.get_alert_history(limit=alerts + 10))


def bench_api(bench: Bench, loop: asyncio.AbstractEventLoop, monitor: SystemMonitor,
              alerts: int, n: int) -> None:
    history = loop.run_until_complete(fill_history(monitor, alerts))
    dashboard = MonitoringDashboard(monitor, port=0)
    loop.run_until_complete(dashboard.start())
    client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{dashboard.port}")
    hub = dashboard.app.state.push_hub

    def paired(fresh: bool) -> Callable[[], float]:
        turn = [0]

        async def measure() -> float:
            turn[0] += 1
            hub.max_age_s = 0.0 if fresh else 1.0  # 0: every request rebuilds the snapshot
            if turn[0] % 2:
                status = await median_latency(client, "/api/status", n)
                dash = await median_latency(client, "/api/dashboard", n)
            else:
                dash = await median_latency(client, "/api/dashboard", n)
                status = await median_latency(client, "/api/status", n)
            return dash / status

        return lambda: loop.run_until_complete(measure())

    try:
        loop.run_until_complete(median_latency(client, "/api/dashboard", 10))
        for name, fresh, what in (
            ("dashboard.api_dashboard_vs_status", False, "its 1 s snapshot cache on"),
            ("dashboard.api_dashboard_fresh_vs_status", True,
             "the snapshot rebuilt on every request"),
        ):
            bench.rounds(name, paired(fresh), target=3.0, rounds=15,
                         workload=f"median latency of {n} keep-alive GET /api/dashboard with "
                                  f"{history:,} alerts in history ({what}) / of {n} GET "
                                  "/api/status, same server, same round")
    finally:
        loop.run_until_complete(client.aclose())
        loop.run_until_complete(dashboard.stop())


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=float, default=None,
                        help="seconds of one trading phase (default 2.5; pushes come every 2 s)")


def main(argv: Sequence[str] | None = None) -> int:
    bench = Bench("dashboard", __doc__, argv, extra=_options)
    quick = bench.args.quick
    # the alert engine warns about rate-limited notifications of 10,000 alerts: not news here
    logging.getLogger("otel_botmon.alerting").setLevel(logging.ERROR)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    with tempfile.TemporaryDirectory() as store_dir:
        telemetry.configure("bench-dashboard")
        monitor = SystemMonitor(MonitoringConfig(
            metrics_collection_interval=1.0, alert_check_interval=2.0,
            default_alert_rules=False, alert_store_path=os.path.join(store_dir, "alerts.db"),
            # console notifications of 10,000 alerts would drown the figures
            notification_config=NotificationConfig(console=False),
        ))
        loop.run_until_complete(monitor.start())
        try:
            if bench.wanted("dashboard.trade_p99_watched"):
                seconds = bench.args.seconds or 2.5  # the push interval is 2 s: one push at least
                trades = TradeRounds(loop, monitor, seconds)
                bench.rounds(
                    "dashboard.trade_p99_watched", trades.one_round, target=1.1, rounds=15,
                    warmup=trades.warmup, detail=trades.detail,
                    workload=f"p99 of a decorated async trade (yields once) in the bot's "
                             f"loop for {seconds:g} s with the dashboard serving {CLIENTS} "
                             "WebSocket clients (another process) / the same with the "
                             "dashboard off, per round")
            if any(bench.wanted(name) for name in ("dashboard.api_dashboard_vs_status",
                                                   "dashboard.api_dashboard_fresh_vs_status")):
                bench_api(bench, loop, monitor, 2_000 if quick else 10_000, 20 if quick else 60)
        finally:
            loop.run_until_complete(monitor.stop())
            monitor.close()
            telemetry.shutdown()
            loop.close()
    return bench.finish()


if __name__ == "__main__":
    sys.exit(main())
