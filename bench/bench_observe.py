"""Benchmark of the observers: psutil overhead per tick and the monitor's own CPU use.

Run: ``python bench/bench_observe.py`` (about 75 s; ``--seconds 20`` for a quick look).

1. Tick cost: one HostObserver tick (a fresh sample plus every metric callback reading
   it) against a raw psutil sample of the same fields, in interleaved rounds in the same
   process, timed in CPU time; median of the paired rounds' ratios. Target: <= 1.2.
2. Readers: psutil calls for one collection by two metric readers. Target: one sample.
3. Own CPU: HostObserver at the guide's ``metrics_collection_interval`` (5 s) with an
   exporting reader every 5 s and the in-memory reader read every 10 s (the guide's
   ``alert_check_interval``), plus the built-in health checks every 30 s
   (``health_check_interval``) against loopback servers, for ``--seconds`` of wall
   time. Target: < 1 % of one core.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
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


def per_call(fn: Callable[[], object], calls: int) -> float:
    """CPU seconds of this thread per call: time spent descheduled on a busy machine
    does not count, which is most of the noise of wall-clock timing here."""
    started = time.thread_time()
    for _ in range(calls):
        fn()
    return (time.thread_time() - started) / calls


def bench_tick(rounds: int, calls: int) -> float:
    observer = HostObserver(interval_s=5.0)
    observer.start()
    callbacks = [source for _, source in observer._sources]
    process = psutil.Process()
    mountpoints = discover_mountpoints()

    def tick() -> None:
        observer.sample_now()
        for callback in callbacks:
            callback()

    raw_times, tick_times = [], []
    for _ in range(rounds):  # interleaved so machine noise hits both alike
        raw_times.append(per_call(lambda: raw_sample(process, mountpoints), calls))
        tick_times.append(per_call(tick, calls))
    observer.stop()
    # Each round's pair ran back to back under the same conditions: compare within
    # pairs, then take the median over rounds.
    raw, ticked = statistics.median(raw_times), statistics.median(tick_times)
    ratio = statistics.median(t / r for t, r in zip(tick_times, raw_times, strict=True))
    print(f"tick: raw psutil sample {raw * 1e6:.1f} us, observer tick {ticked * 1e6:.1f} us "
          f"(CPU time per call) -> ratio {ratio:.3f} (target <= {TICK_TARGET}) "
          f"{'OK' if ratio <= TICK_TARGET else 'MISSED'}")
    return ratio


# --- 2. two readers -------------------------------------------------------------------


def bench_readers() -> int:
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
    print(f"readers: 2 readers collected -> {calls} psutil sample(s) (target 1) "
          f"{'OK' if calls == 1 else 'MISSED'}")
    return calls


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


def bench_cpu(seconds: float) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        server, url = start_http_server(Path(tmp))
        try:
            idle = asyncio.run(idle_baseline(min(5.0, seconds / 4)))
            busy = asyncio.run(run_monitor(seconds, url))
        finally:
            server.terminate()
            server.wait(10)
    own = max(0.0, busy - idle)
    print(f"own cpu: {busy:.3f} % of one core with the monitor over {seconds:.0f} s "
          f"(idle loop alone {idle:.3f} %) -> monitor {own:.3f} % "
          f"= {own / CPU_TARGET_PERCENT:.2f} x the 1 % budget "
          f"{'OK' if own < CPU_TARGET_PERCENT else 'MISSED'}")
    return own


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0,
                        help="wall time of the own-CPU measurement (default 60)")
    parser.add_argument("--rounds", type=int, default=25)
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args(argv)
    ratio = bench_tick(args.rounds, args.calls)
    calls = bench_readers()
    own = bench_cpu(args.seconds)
    ok = ratio <= TICK_TARGET and calls == 1 and own < CPU_TARGET_PERCENT
    print("all targets hold" if ok else "some target MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
