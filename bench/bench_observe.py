"""Benchmark of the observers: psutil overhead per tick and the monitor's own CPU use.

Run: ``python bench/bench_observe.py`` (about 2 min; ``--quick`` for a smoke run,
``--repeat N``, ``--seconds S`` for the length of one own-CPU round). Figures go
through bench/_harness.py (rounds, median / IQR / mean).

1. ``observe.tick``: one HostObserver tick (a fresh sample plus every metric callback
   reading it) against a raw psutil sample of the same fields, interleaved in rounds in
   the same process, timed in this thread's CPU time. Target: <= 1.2.
2. ``observe.psutil_samples_per_collection``: psutil samples taken for one collection
   by two metric readers. Target: one sample.
3. ``observe.own_cpu_percent``: HostObserver at the guide's
   ``metrics_collection_interval`` (5 s) with an exporting reader every 5 s and the
   in-memory reader read every 10 s (the guide's ``alert_check_interval``), plus the
   built-in health checks every 30 s (``health_check_interval``) against loopback
   servers: CPU of this process over a round of ``--seconds`` wall time, minus an idle
   event loop's, in % of one core. Target: < 1 %.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil
from opentelemetry.sdk.metrics.export import (
    InMemoryMetricReader,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    PeriodicExportingMetricReader,
)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._harness import Bench, time_calls
from otel_botmon import telemetry
from otel_botmon.observe.checks import (
    ExchangeApiCheck,
    NetworkCheck,
    SystemResourcesCheck,
    TradingEngineCheck,
    WebUICheck,
)
from otel_botmon.observe.health import HealthChecker
from otel_botmon.observe.host import HostObserver, discover_mountpoints

TICK_TARGET = 1.2
CPU_TARGET_PERCENT = 1.0


# --- 1. tick cost ---------------------------------------------------------------------


def raw_sample(process: psutil.Process, mountpoints: Sequence[str]) -> tuple[Any, ...]:
    """The same psutil calls an observer tick makes, with nothing around them."""
    disks = [psutil.disk_usage(mp).percent for mp in mountpoints]
    network = psutil.net_io_counters()
    with process.oneshot():
        process_cpu = process.cpu_percent(None)
        rss = process.memory_info().rss
    return (psutil.cpu_times(), psutil.virtual_memory().percent, disks,
            network.bytes_sent, network.bytes_recv, process_cpu, rss)


def bench_tick(bench: Bench, calls: int) -> None:
    observer = HostObserver(interval_s=5.0)
    observer.start()
    callbacks = [source for _, source in observer._sources]
    process = psutil.Process()
    mountpoints = discover_mountpoints()

    def tick() -> None:
        observer.sample_now()
        for callback in callbacks:
            callback()

    def raw() -> object:
        return raw_sample(process, mountpoints)

    times: dict[str, list[float]] = {"tick_us": [], "raw_us": []}
    turn = [0]

    def one_round() -> float:
        # CPU time of this thread per call: time spent descheduled on a busy machine
        # does not count, which is most of the noise of wall-clock timing here.
        turn[0] += 1
        if turn[0] % 2:
            ticked = time_calls(tick, calls, time.thread_time)
            plain = time_calls(raw, calls, time.thread_time)
        else:
            plain = time_calls(raw, calls, time.thread_time)
            ticked = time_calls(tick, calls, time.thread_time)
        times["tick_us"].append(ticked * 1e6)
        times["raw_us"].append(plain * 1e6)
        return ticked / plain

    try:
        bench.rounds("observe.tick", one_round, target=TICK_TARGET, rounds=25,
                     warmup=lambda: (time_calls(tick, calls), time_calls(raw, calls)),
                     workload=f"{calls} HostObserver ticks (sample_now + every metric "
                              "callback) / the same psutil calls bare (cpu, memory, disks, "
                              "network, process), thread CPU time",
                     detail=lambda: {k: round(sorted(v)[len(v) // 2], 2)
                                     for k, v in times.items()})
    finally:
        observer.stop()


# --- 2. two readers -------------------------------------------------------------------


def readers_round() -> float:
    second = InMemoryMetricReader()
    tel = telemetry.configure("bench-readers", metric_readers=[second], set_global=False)
    observer = HostObserver(interval_s=60.0)
    observer.start()
    calls = 0
    real = psutil.virtual_memory

    def counting() -> Any:
        nonlocal calls
        calls += 1
        return real()

    psutil.virtual_memory = counting
    try:
        tel.metric_reader.get_metrics_data()
        second.get_metrics_data()
    finally:
        psutil.virtual_memory = real
        observer.stop()
        telemetry.shutdown()
    return float(calls)


# --- 3. own CPU at the guide's default intervals --------------------------------------


class DiscardingExporter(MetricExporter):
    """Stands in for OTLP: the collection work happens, the network part does not."""

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000,
               **kwargs: Any) -> MetricExportResult:
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        return None


def start_http_server(root: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A static file server in another process, so its CPU is not counted as ours."""
    (root / "api" / "v3").mkdir(parents=True)
    (root / "api" / "v3" / "ping").write_text("{}")
    (root / "api" / "v3" / "time").write_text('{"serverTime": 0}')
    (root / "index.html").write_text("<html></html>")
    from tests.services import free_port, wait_for_http

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
         "--directory", str(root)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    wait_for_http(url + "/index.html")
    return server, url


async def run_monitor(seconds: float, url: str) -> float:
    exporting = PeriodicExportingMetricReader(DiscardingExporter(), export_interval_millis=5000)
    tel = telemetry.configure("bench-cpu", metric_readers=[exporting], set_global=False)

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    listener = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]

    observer = HostObserver(interval_s=5.0)
    engine = TradingEngineCheck(max_age_s=60)
    checker = HealthChecker(default_interval_s=30.0)
    checker.register_health_check("exchange_api", ExchangeApiCheck(url))
    checker.register_health_check("web_ui", WebUICheck(url + "/index.html"))
    checker.register_health_check("network", NetworkCheck([("localhost", port)]))
    checker.register_health_check("trading_engine", engine)
    checker.register_health_check("system_resources", SystemResourcesCheck(observer=observer))

    async def alert_evaluator() -> None:  # what the alert evaluator does every 10 s
        while True:
            tel.metric_reader.get_metrics_data()
            await asyncio.sleep(10.0)

    wall0, cpu0 = time.monotonic(), time.process_time()
    observer.start()
    await checker.start()
    evaluator = asyncio.ensure_future(alert_evaluator())
    end = wall0 + seconds
    while time.monotonic() < end:
        engine.heartbeat()  # the bot's own loop, once a second
        await asyncio.sleep(min(1.0, max(0.0, end - time.monotonic())))
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    evaluator.cancel()
    await checker.stop()
    observer.stop()
    listener.close()
    telemetry.shutdown()
    return cpu / wall * 100.0


async def idle_baseline(seconds: float) -> float:
    wall0, cpu0 = time.monotonic(), time.process_time()
    end = wall0 + seconds
    while time.monotonic() < end:
        await asyncio.sleep(min(1.0, max(0.0, end - time.monotonic())))
    return (time.process_time() - cpu0) / (time.monotonic() - wall0) * 100.0


def bench_cpu(bench: Bench, seconds: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        server, url = start_http_server(Path(tmp))
        parts: dict[str, list[float]] = {"busy_percent": [], "idle_percent": []}

        def one_round() -> float:
            idle = asyncio.run(idle_baseline(min(5.0, seconds / 4)))
            busy = asyncio.run(run_monitor(seconds, url))
            parts["busy_percent"].append(busy)
            parts["idle_percent"].append(idle)
            return max(0.0, busy - idle)

        try:
            bench.rounds(
                "observe.own_cpu_percent", one_round, target=CPU_TARGET_PERCENT, rounds=3,
                unit=" %", workload=f"{seconds:.0f} s per round of HostObserver (5 s), an "
                "exporting reader (5 s), the in-memory reader (10 s) and five health checks "
                "(30 s) against loopback servers: process CPU in % of one core, minus an idle "
                "event loop's",
                detail=lambda: {k: [round(v, 3) for v in vs] for k, vs in parts.items()})
        finally:
            server.terminate()
            server.wait(10)


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=float, default=None,
                        help="wall time of one own-CPU round (default 30, 5 with --quick)")
    parser.add_argument("--calls", type=int, default=200,
                        help="ticks per side and round of the tick figure")


def main(argv: Sequence[str] | None = None) -> int:
    bench = Bench("observe", __doc__, argv, extra=_options)
    if bench.wanted("observe.tick"):
        bench_tick(bench, bench.args.calls)
    bench.value("observe.psutil_samples_per_collection", readers_round, target=1.0,
                unit=" samples", rounds=3,
                workload="psutil.virtual_memory() calls while two metric readers (the "
                         "configured one and a second InMemoryMetricReader) collect once")
    if bench.wanted("observe.own_cpu_percent"):
        bench_cpu(bench, bench.args.seconds or (5.0 if bench.args.quick else 30.0))
    return bench.finish()


if __name__ == "__main__":
    raise SystemExit(main())
