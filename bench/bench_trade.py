"""Benchmark: the cost of ``@trade`` against hand-written OpenTelemetry code.

Run ``python bench/bench_trade.py`` (``--quick`` for a shorter, noisier run). Every
scenario runs in its own subprocess so providers, globals and memory start clean, and
every figure is a ratio against a baseline measured in the same process run.

Scenarios and targets (issue 2, "Speed and memory"):

sdk        decorated trade vs hand-written span + histogram + counter with the same
           4 attributes on the same SDK providers (configure() + a BatchSpanProcessor
           to a discarding exporter): median ratio <= 1.10
api        the same with no SDK pipeline (OpenTelemetry API only, nothing configured):
           median ratio <= 1.20
memory     1,000,000 decorated trades across 10,000 symbols: RSS growth <= 10 MiB
blackhole  OTLP endpoint = a loopback socket that accepts and never answers: p99 of
           decorated calls <= 1.2 x p99 with no exporter (two processes, measured in
           alternating windows so both see the same machine load; median of the window
           p99s); the process exits <= 5 s after shutdown()
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

SYMBOL_ATTR = "trading.symbol"


# --- shared -------------------------------------------------------------------------


def _body() -> dict[str, str]:
    return {"status": "FILLED"}


def _interleaved(
    a: Callable[[], object], b: Callable[[], object], rounds: int, calls: int
) -> tuple[float, float]:
    """Median per-call µs of ``a`` and ``b``, timed in alternating rounds."""
    times_a: list[float] = []
    times_b: list[float] = []

    def run(fn: Callable[[], object]) -> float:
        start = time.perf_counter_ns()
        for _ in range(calls):
            fn()
        return (time.perf_counter_ns() - start) / calls / 1000

    for fn in (a, b):  # warm up caches, instruments and attribute series
        for _ in range(calls):
            fn()
    for i in range(rounds):
        gc.collect()
        if i % 2:
            times_a.append(run(a))
            times_b.append(run(b))
        else:
            times_b.append(run(b))
            times_a.append(run(a))
    return statistics.median(times_a), statistics.median(times_b)


def _hand_written(tracer: Any, meter: Any, prefix: str) -> Callable[[str, str], object]:
    """What a careful engineer writes by hand: span + duration histogram + counter."""
    from opentelemetry import trace

    from otel_botmon import conventions as conv

    duration = meter.create_histogram(
        f"{prefix}.trade.duration", unit="s",
        explicit_bucket_boundaries_advisory=list(conv.DURATION_BUCKETS_S),
    )
    trades = meter.create_counter(f"{prefix}.trades", unit="{trade}")

    def place(symbol: str, side: str) -> object:
        start = time.perf_counter_ns()
        with tracer.start_as_current_span(
            f"trade {symbol}",
            attributes={
                conv.TRADING_SYMBOL: symbol, conv.TRADING_SIDE: side,
                conv.TRADING_ORDER_TYPE: "MARKET",
            },
        ) as span:
            try:
                result = _body()
            except Exception as exc:
                attrs = {
                    conv.TRADING_SYMBOL: symbol, conv.TRADING_SIDE: side,
                    conv.TRADING_ORDER_TYPE: "MARKET", conv.TRADING_OUTCOME: "error",
                    conv.ERROR_TYPE: type(exc).__qualname__,
                }
                duration.record((time.perf_counter_ns() - start) / 1e9, attrs)
                trades.add(1, attrs)
                span.set_status(trace.StatusCode.ERROR)
                raise
            span.set_attribute(conv.TRADING_OUTCOME, "filled")
        attrs = {
            conv.TRADING_SYMBOL: symbol, conv.TRADING_SIDE: side,
            conv.TRADING_ORDER_TYPE: "MARKET", conv.TRADING_OUTCOME: "filled",
        }
        duration.record((time.perf_counter_ns() - start) / 1e9, attrs)
        trades.add(1, attrs)
        return result

    return place


def _decorated() -> Callable[[str, str], object]:
    from otel_botmon.instrument.trading import trade

    @trade(order_type="MARKET")
    def place(symbol: str, side: str) -> object:
        return _body()

    return place


# --- scenarios (each runs in a subprocess and prints one JSON line) --------------------


def scenario_sdk(quick: bool) -> dict[str, Any]:
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )

    from otel_botmon import telemetry
    from otel_botmon.instrument.trading import trade

    class Discard(SpanExporter):
        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    tel = telemetry.configure("bench", span_processors=[BatchSpanProcessor(Discard())])
    hand = _hand_written(
        tel.tracer_provider.get_tracer("bench-hand"), tel.meter_provider.get_meter("bench-hand"),
        "hand",
    )
    decorated = _decorated()

    def context_managed(symbol: str, side: str) -> object:
        with trade(symbol=symbol, side=side, order_type="MARKET"):
            return _body()

    rounds, calls = (20, 500) if quick else (60, 1000)
    dec_us, hand_us = _interleaved(
        lambda: decorated("BTCUSDT", "BUY"), lambda: hand("BTCUSDT", "BUY"), rounds, calls
    )
    with_us, hand2_us = _interleaved(
        lambda: context_managed("BTCUSDT", "BUY"), lambda: hand("BTCUSDT", "BUY"),
        rounds // 2, calls,
    )
    tel.shutdown()
    return {
        "decorated_us": dec_us, "hand_us": hand_us, "ratio": dec_us / hand_us,
        "with_us": with_us, "with_ratio": with_us / hand2_us,
    }


def scenario_api(quick: bool) -> dict[str, Any]:
    from opentelemetry import metrics, trace

    # Nothing configured: otel_botmon and the hand-written code both get the API's
    # proxy (no-op) tracer and meter, as in an application without an SDK pipeline.
    hand = _hand_written(trace.get_tracer("bench-hand"), metrics.get_meter("bench-hand"), "hand")
    decorated = _decorated()
    rounds, calls = (20, 2000) if quick else (60, 5000)
    dec_us, hand_us = _interleaved(
        lambda: decorated("BTCUSDT", "BUY"), lambda: hand("BTCUSDT", "BUY"), rounds, calls
    )
    return {"decorated_us": dec_us, "hand_us": hand_us, "ratio": dec_us / hand_us}


def _rss_mib() -> float:
    import psutil

    return float(psutil.Process().memory_info().rss) / (1024 * 1024)


def scenario_memory(quick: bool) -> dict[str, Any]:
    from otel_botmon import conventions as conv
    from otel_botmon import telemetry
    from otel_botmon.instrument.trading import trade

    total = 100_000 if quick else 1_000_000
    symbols = [f"SYM{i:05d}USDT" for i in range(10_000)]
    tel = telemetry.configure("bench-memory")

    @trade(order_type="MARKET")
    def place(symbol: str, side: str, quantity: float, price: float) -> object:
        return _body()

    place("WARMUP", "BUY", 1.0, 1.0)  # first-call imports and instrument creation
    gc.collect()
    before = _rss_mib()
    start = time.perf_counter()
    for i in range(total):
        place(symbols[i % 10_000], "BUY" if i & 1 else "SELL", 0.01, 100.0)
        if i == 19_999:  # every symbol seen twice: all (capped) metric series exist now
            gc.collect()
            series_built = _rss_mib()
    elapsed = time.perf_counter() - start
    gc.collect()
    after = _rss_mib()
    series = {
        name: len(tel_points)
        for name, tel_points in _point_counts(tel).items()
        if name.startswith("botmon.trade")
    }
    tel.shutdown()
    return {
        "trades": total, "rss_before_mib": before, "rss_after_mib": after,
        "growth_mib": after - before, "us_per_trade": elapsed / total * 1e6,
        "steady_growth_mib": after - series_built, "rss_series_built_mib": series_built,
        "series": series, "cardinality_limit": conv.CARDINALITY_LIMIT,
    }


def _point_counts(tel: Any) -> dict[str, list[Any]]:
    data = tel.metric_reader.get_metrics_data()
    found: dict[str, list[Any]] = {}
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                found[metric.name] = list(metric.data.data_points)
    return found


def _blackhole() -> tuple[socket.socket, int]:
    """A listening socket that accepts connections and never answers them."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            held.append(conn)  # keep it open, say nothing

    threading.Thread(target=accept, daemon=True).start()
    return server, server.getsockname()[1]


def _latencies(place: Callable[[str, str], object], seconds: float) -> list[float]:
    samples: list[float] = []
    deadline = time.perf_counter() + seconds
    clock = time.perf_counter_ns
    while time.perf_counter() < deadline:
        for _ in range(200):
            start = clock()
            place("BTCUSDT", "BUY")
            samples.append((clock() - start) / 1000)
    return samples


def _p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100)[98]


def _blackhole_child(mode: str) -> None:
    """One side of the blackhole comparison, driven window by window over stdin.

    ``mode`` is ``none`` (no exporter) or ``stuck`` (OTLP to a socket that never
    answers). The parent alternates windows between the two processes so both see the
    same machine load; each ``go`` line runs one window and prints its p99 and median.
    """
    from otel_botmon import telemetry

    place = _decorated()
    if mode == "stuck":
        _server, port = _blackhole()
        telemetry.configure(
            "bench-blackhole", otlp_endpoint=f"http://127.0.0.1:{port}", export_interval_s=0.5
        )
    else:
        telemetry.configure("bench-no-exporter")
    _latencies(place, 1.0)  # warm up; with "stuck" the span queue fills up meanwhile
    print("READY", flush=True)
    collections = [0]  # diagnostics: garbage collections during the windows

    def count_collections(phase: str, info: dict[str, int]) -> None:
        if phase == "stop":
            collections[0] += 1

    gc.callbacks.append(count_collections)
    for line in sys.stdin:
        if not line.startswith("go"):
            break
        collections[0] = 0
        samples = _latencies(place, float(line.split()[1]))
        print(json.dumps({"p99": _p99(samples), "median": statistics.median(samples),
                          "gc_per_1000": collections[0] * 1000 / len(samples)}), flush=True)
    # The parent times from this line to the process's exit.
    print("SHUTDOWN", flush=True)
    telemetry.shutdown()


def _run_blackhole(quick: bool) -> tuple[dict[str, Any], float | None]:
    windows, seconds = (4, 0.5) if quick else (10, 0.8)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    procs = {
        mode: subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--blackhole-child", mode],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
        )
        for mode in ("none", "stuck")
    }
    for proc in procs.values():
        assert proc.stdout is not None and proc.stdout.readline().startswith("READY")
    results: dict[str, list[dict[str, float]]] = {"none": [], "stuck": []}
    for i in range(windows):
        order = ("none", "stuck") if i % 2 == 0 else ("stuck", "none")
        for mode in order:
            proc = procs[mode]
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(f"go {seconds}\n")
            proc.stdin.flush()
            results[mode].append(json.loads(proc.stdout.readline()))
    exit_after: float | None = None
    for mode, proc in procs.items():
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write("stop\n")
        proc.stdin.flush()
        proc.stdin.close()
        line = proc.stdout.readline()
        started = time.monotonic()
        proc.wait(timeout=60)
        if mode == "stuck" and line.startswith("SHUTDOWN"):
            exit_after = time.monotonic() - started

    def med(mode: str, key: str) -> float:
        return statistics.median(w[key] for w in results[mode])

    return {
        "p99_no_exporter_us": med("none", "p99"), "p99_blackhole_us": med("stuck", "p99"),
        "ratio": med("stuck", "p99") / med("none", "p99"),
        "median_no_exporter_us": med("none", "median"),
        "median_blackhole_us": med("stuck", "median"),
        "gc_per_1000_no_exporter": med("none", "gc_per_1000"),
        "gc_per_1000_blackhole": med("stuck", "gc_per_1000"),
        "windows": windows,
    }, exit_after


SCENARIOS = {"sdk": scenario_sdk, "api": scenario_api, "memory": scenario_memory}


# --- orchestration ---------------------------------------------------------------------


def _run_child(name: str, quick: bool) -> dict[str, Any]:
    cmd = [sys.executable, os.path.abspath(__file__), "--scenario", name]
    if quick:
        cmd.append("--quick")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env=env, timeout=600)
    if done.returncode != 0:
        raise SystemExit(f"scenario {name} failed with exit code {done.returncode}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _verdict(ok: bool) -> str:
    return "OK  " if ok else "MISS"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter, noisier run")
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), help=argparse.SUPPRESS)
    parser.add_argument("--blackhole-child", choices=("none", "stuck"), help=argparse.SUPPRESS)
    parser.add_argument("--only", choices=[*sorted(SCENARIOS), "blackhole"], action="append",
                        help="run only these scenarios")
    args = parser.parse_args(argv)
    if args.scenario:
        print(json.dumps(SCENARIOS[args.scenario](args.quick)), flush=True)
        return 0
    if args.blackhole_child:
        _blackhole_child(args.blackhole_child)
        return 0

    failures = 0
    wanted = args.only or ["sdk", "api", "memory", "blackhole"]
    print(f"bench_trade ({'quick' if args.quick else 'full'} run, python {sys.version.split()[0]})")
    if "sdk" in wanted:
        r = _run_child("sdk", args.quick)
        ok = r["ratio"] <= 1.10
        failures += not ok
        print(f"[{_verdict(ok)}] SDK: decorated / hand-written median = {r['ratio']:.3f} "
              f"(target <= 1.10; {r['decorated_us']:.1f} vs {r['hand_us']:.1f} us/call)")
        print(f"       with trade(...) / hand-written = {r['with_ratio']:.3f} (informational)")
    if "api" in wanted:
        r = _run_child("api", args.quick)
        ok = r["ratio"] <= 1.20
        failures += not ok
        print(f"[{_verdict(ok)}] API only: decorated / hand-written median = {r['ratio']:.3f} "
              f"(target <= 1.20; {r['decorated_us']:.2f} vs {r['hand_us']:.2f} us/call)")
    if "memory" in wanted:
        r = _run_child("memory", args.quick)
        ok = r["growth_mib"] <= 10.0
        failures += not ok
        print(f"[{_verdict(ok)}] memory: {r['trades']:,} trades over 10,000 symbols grew RSS "
              f"by {r['growth_mib']:.1f} MiB (target <= 10; {r['rss_before_mib']:.0f} -> "
              f"{r['rss_after_mib']:.0f} MiB, {r['us_per_trade']:.1f} us/trade)")
        print(f"       of which after the first 20,000 trades built every capped series: "
              f"{r['steady_growth_mib']:.1f} MiB (no per-call growth)")
        capped = all(n <= r["cardinality_limit"] + 1 for n in r["series"].values())
        failures += not capped
        print(f"[{_verdict(capped)}] cardinality: series per metric {r['series']} "
              f"(limit {r['cardinality_limit']} + 1 overflow)")
    if "blackhole" in wanted:
        r, exit_after = _run_blackhole(args.quick)
        ok = r["ratio"] <= 1.2
        failures += not ok
        print(f"[{_verdict(ok)}] OTLP blackhole: p99 stuck / p99 no exporter = {r['ratio']:.3f} "
              f"(target <= 1.2; {r['p99_blackhole_us']:.1f} vs {r['p99_no_exporter_us']:.1f} us;"
              f" medians {r['median_blackhole_us']:.1f} vs {r['median_no_exporter_us']:.1f} us;"
              f" median over {r['windows']} alternating windows per side)")
        print(f"       garbage collections per 1000 calls: {r['gc_per_1000_blackhole']:.2f} "
              f"stuck vs {r['gc_per_1000_no_exporter']:.2f} no exporter (informational)")
        ok = exit_after is not None and exit_after <= 5.0
        failures += not ok
        shown = "never" if exit_after is None else f"{exit_after:.2f} s"
        print(f"[{_verdict(ok)}] OTLP blackhole: process exited {shown} after shutdown() "
              f"(target <= 5 s)")
    print("all targets hold" if not failures else f"{failures} target(s) missed")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
