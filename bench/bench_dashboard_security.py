"""What the dashboard's Host/Origin guard costs on ``GET /api/status``.

Two dashboards on one SystemMonitor, served by the same embedded server with the same
limits: one with ``DashboardGuard`` (the default), one with the guard removed. Every
request carries ``Host`` and ``Origin`` (so the guard checks both). Within a round the
requests alternate between the servers one by one (ABAB..., then BABA... in the next
round), so both see the same machine noise; each round's figure is the ratio of the two
median latencies, and the result is the median of the per-round ratios. Target: <= 1.05.

    python bench/bench_dashboard_security.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from otel_botmon.dashboard.app import create_app
from otel_botmon.dashboard.embedded import EmbeddedServer
from otel_botmon.dashboard.security import DashboardGuard, ServerLimits
from otel_botmon.monitor import MonitoringConfig, SystemMonitor

TARGET = 1.05


def unguarded(app: Any) -> Any:
    """``app`` without its DashboardGuard (the middleware stack is built on first use)."""
    app.user_middleware = [m for m in app.user_middleware if m.cls is not DashboardGuard]
    return app


def one_request(conn: http.client.HTTPConnection, port: int) -> float:
    headers = {"Host": f"127.0.0.1:{port}", "Origin": f"http://127.0.0.1:{port}"}
    started = time.perf_counter()
    conn.request("GET", "/api/status", headers=headers)
    response = conn.getresponse()
    response.read()
    elapsed = time.perf_counter() - started
    if response.status != 200:
        raise RuntimeError(f"GET /api/status answered {response.status}")
    return elapsed


def paired_round(conns: dict[int, http.client.HTTPConnection], order: list[int],
                 n: int) -> dict[int, float]:
    """``n`` requests to each server, alternating one by one; the median per server."""
    times: dict[int, list[float]] = {port: [] for port in order}
    for _ in range(n):
        for port in order:
            times[port].append(one_request(conns[port], port))
    return {port: statistics.median(t) for port, t in times.items()}


def main(quick: bool) -> int:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    def call(coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, loop).result(60)

    async def start() -> tuple[SystemMonitor, EmbeddedServer, EmbeddedServer]:
        monitor = SystemMonitor(MonitoringConfig(default_alert_rules=False))
        guarded = EmbeddedServer(create_app(monitor), limits=ServerLimits(), name="guarded")
        plain = EmbeddedServer(unguarded(create_app(monitor)), limits=ServerLimits(),
                               name="plain")
        await guarded.start()
        await plain.start()
        return monitor, guarded, plain

    monitor, guarded, plain = call(start())
    rounds, n = (8, 100) if quick else (30, 300)
    try:
        conns = {s.port: http.client.HTTPConnection("127.0.0.1", s.port)
                 for s in (guarded, plain)}
        paired_round(conns, [guarded.port, plain.port], 50)  # warm up
        ratios, on_s, off_s = [], [], []
        for i in range(rounds):
            order = [guarded.port, plain.port] if i % 2 == 0 else [plain.port, guarded.port]
            figures = paired_round(conns, order, n)
            on_s.append(figures[guarded.port])
            off_s.append(figures[plain.port])
            ratios.append(figures[guarded.port] / figures[plain.port])
        for conn in conns.values():
            conn.close()
    finally:
        async def stop() -> None:
            await guarded.stop()
            await plain.stop()
            monitor.close()

        call(stop())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
    ratio = statistics.median(ratios)
    holds = ratio <= TARGET
    print(f"GET /api/status with the Host/Origin guard: {statistics.median(on_s) * 1e6:.0f} us; "
          f"without: {statistics.median(off_s) * 1e6:.0f} us; median of {rounds} per-round "
          f"ratios {ratio:.3f} (target <= {TARGET}: {'holds' if holds else 'MISSED'})")
    return 0 if holds else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run)")
    sys.exit(main(parser.parse_args().quick))
