"""What the dashboard's Host/Origin guard costs on ``GET /api/status``.

Two dashboards on one SystemMonitor, served by the same embedded server with the same
limits: one with ``DashboardGuard`` (the default), one with the guard removed. Every
request carries ``Host`` and ``Origin`` (so the guard checks both). Within a round the
requests alternate between the servers one by one (ABAB..., then BABA... in the next
round), so both see the same machine noise; each round's figure is the ratio of the two
median latencies, and the result (bench/_harness.py) is the median of the per-round
ratios, with their interquartile range. Target: <= 1.05.

    python bench/bench_dashboard_security.py [--quick] [--repeat N]
"""

from __future__ import annotations

import asyncio
import http.client
import statistics
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._harness import Bench
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


def main(argv: Sequence[str] | None = None) -> int:
    bench = Bench("dashboard_security", __doc__, argv)
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
    n = 100 if bench.args.quick else 300
    conns = {s.port: http.client.HTTPConnection("127.0.0.1", s.port) for s in (guarded, plain)}
    latency: dict[str, list[float]] = {"guarded_us": [], "plain_us": []}
    turn = [0]

    def one_round() -> float:
        turn[0] += 1
        order = [guarded.port, plain.port] if turn[0] % 2 else [plain.port, guarded.port]
        figures = paired_round(conns, order, n)
        latency["guarded_us"].append(figures[guarded.port] * 1e6)
        latency["plain_us"].append(figures[plain.port] * 1e6)
        return figures[guarded.port] / figures[plain.port]

    try:
        bench.rounds(
            "dashboard_security.guard_status", one_round, target=TARGET, rounds=30,
            warmup=lambda: paired_round(conns, [guarded.port, plain.port], 50),
            workload=f"median latency of {n} keep-alive GET /api/status with Host and Origin "
                     "through DashboardGuard / the same app without the guard, requests "
                     "alternating one by one between the two servers",
            detail=lambda: {k: round(statistics.median(v), 1) for k, v in latency.items()})
    finally:
        for conn in conns.values():
            conn.close()

        async def stop() -> None:
            await guarded.stop()
            await plain.stop()
            monitor.close()

        call(stop())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
    return bench.finish()


if __name__ == "__main__":
    sys.exit(main())
