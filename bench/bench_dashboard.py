"""Dashboard benchmarks, as ratios measured in one run (the machine is noisy).

1. Trades under a watched dashboard: p99 of a decorated async trade in the bot's own
   event loop with the dashboard serving 20 WebSocket clients (in another process,
   reading every push) versus the dashboard off. Phases alternate off/on to cancel
   drift. Target: ratio <= 1.1.
2. ``GET /api/dashboard`` with 10,000 alerts in history versus ``GET /api/status``
   (median latency over keep-alive requests). Target: ratio <= 3.

    python bench/bench_dashboard.py [--quick]
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
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

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


def p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


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


async def bench_trades(monitor: SystemMonitor, rounds: int, seconds: float) -> tuple[float, float]:
    """Pooled p99 with the dashboard off and on, phases in ABBA order (so neither side
    always follows the other's set-up or tear-down)."""
    off: list[float] = []
    on: list[float] = []
    await trade_for(1.0, [])  # warm up
    for i in range(rounds):
        if i % 2 == 0:
            await trade_for(seconds, off)
            await trade_with_dashboard(monitor, seconds, on)
        else:
            await trade_with_dashboard(monitor, seconds, on)
            await trade_for(seconds, off)
    return p99(off), p99(on)


async def median_latency(client: httpx.AsyncClient, path: str, n: int) -> float:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        response = await client.get(path)
        times.append(time.perf_counter() - started)
        response.raise_for_status()
    return statistics.median(times)


async def bench_api(
    monitor: SystemMonitor, alerts: int, n: int,
) -> tuple[float, float, float, int]:
    for i in range(alerts):
        alert_id = await monitor.create_custom_alert(f"alert {i}", "history", AlertSeverity.INFO)
        await monitor.resolve_alert(alert_id)
    await monitor.create_custom_alert("still active", "m", AlertSeverity.WARNING)
    history = len(monitor.alert_manager.get_alert_history(limit=alerts + 10))
    dashboard = MonitoringDashboard(monitor, port=0)
    await dashboard.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{dashboard.port}") as client:
            await median_latency(client, "/api/dashboard", 10)
            status_s, dash_s, fresh_s = [], [], []
            hub = dashboard.app.state.push_hub
            for _ in range(3):  # interleave to cancel drift
                status_s.append(await median_latency(client, "/api/status", n))
                dash_s.append(await median_latency(client, "/api/dashboard", n))
                hub.max_age_s = 0.0  # every request rebuilds the snapshot
                fresh_s.append(await median_latency(client, "/api/dashboard", n))
                hub.max_age_s = 1.0
    finally:
        await dashboard.stop()
    return (statistics.median(status_s), statistics.median(dash_s),
            statistics.median(fresh_s), history)


async def main(quick: bool, store_dir: str) -> int:
    # the alert engine warns about rate-limited notifications of 10,000 alerts: not news here
    logging.getLogger("otel_botmon.alerting").setLevel(logging.ERROR)
    telemetry.configure("bench-dashboard")
    monitor = SystemMonitor(MonitoringConfig(
        metrics_collection_interval=1.0, alert_check_interval=2.0, default_alert_rules=False,
        alert_store_path=os.path.join(store_dir, "alerts.db"),
        # console notifications of 10,000 alerts would drown the figures
        notification_config=NotificationConfig(console=False),
    ))
    await monitor.start()
    ok = True
    try:
        rounds, seconds = (3, 1.5) if quick else (8, 2.5)
        off, on = await bench_trades(monitor, rounds, seconds)
        ratio = on / off
        ok &= ratio <= 1.1
        print(f"trade p99 with {CLIENTS} WebSocket clients: {on * 1e6:.1f} us; dashboard off: "
              f"{off * 1e6:.1f} us; ratio {ratio:.3f} (target <= 1.1: "
              f"{'holds' if ratio <= 1.1 else 'MISSED'})")
        status_s, dash_s, fresh_s, history = await bench_api(
            monitor, 2_000 if quick else 10_000, 50 if quick else 200)
        ratio = dash_s / status_s
        ok &= ratio <= 3.0
        print(f"GET /api/dashboard with {history} alerts in history: {dash_s * 1e3:.2f} ms; "
              f"GET /api/status: {status_s * 1e3:.2f} ms; ratio {ratio:.2f} (target <= 3: "
              f"{'holds' if ratio <= 3.0 else 'MISSED'})")
        fresh = fresh_s / status_s
        ok &= fresh <= 3.0
        print(f"  same with the snapshot rebuilt on every request (no 1 s cache): "
              f"{fresh_s * 1e3:.2f} ms; ratio {fresh:.2f} (target <= 3: "
              f"{'holds' if fresh <= 3.0 else 'MISSED'})")
    finally:
        await monitor.stop()
        monitor.close()
        telemetry.shutdown()
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="shorter run (smoke test)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        code = asyncio.run(main(args.quick, tmp))
    sys.exit(code)
