"""Benchmark: a whole ``@trade`` against the best hand-written OpenTelemetry code, and its tail.

Run ``python bench/bench_trade.py`` (``--quick`` for a smoke run, ``--repeat N``). Every
figure is a ratio against a baseline measured in the same run (bench/_harness.py: A and
B interleaved in rounds, one ratio per round, median / IQR / mean).

The workload, for every timed figure: one whole trade of BTCUSDT, BUY 0.25 at a requested
70,000.0, filled at 70,003.5 (reported by the body, so there is slippage): a span with
symbol, side, order type, quantity and price, then outcome, fill quantity, fill price and
signed slippage set on it; the duration histogram, the trade counter, the volume and
notional counters, and the slippage histogram.

The baseline is hand-written OpenTelemetry doing exactly that with the best idioms:
pre-built attribute dicts, ``histogram.record`` / ``counter.add``, and for the span the
faster (per round) of ``tracer.start_as_current_span`` and ``start_span`` + ``attach``.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _harness import Bench, quantile, time_calls  # noqa: E402
from _trade_workload import (  # noqa: E402
    FILL_PRICE,
    ORDER_TYPE,
    PRICE,
    QUANTITY,
    SIDE,
    SYMBOL,
    decorated_trade,
    trade_attributes,
)

# --- the two sides ----------------------------------------------------------------------


def with_trade() -> Callable[[], object]:
    """``with trade(...) as t`` doing the same trade."""
    from otel_botmon.instrument.trading import trade

    def place() -> str:
        with trade(symbol=SYMBOL, side=SIDE, quantity=QUANTITY, price=PRICE,
                   order_type=ORDER_TYPE) as t:
            t.filled(price=FILL_PRICE)
            return "FILLED"

    return place


def hand_written(tracer: Any, meter: Any, idiom: str) -> Callable[[], object]:
    """The same trade written by hand with the OpenTelemetry API, ``idiom`` being
    ``current_span`` (``start_as_current_span``) or ``attach`` (``start_span`` +
    ``context.attach``)."""
    from opentelemetry import context, trace

    from otel_botmon import conventions as conv

    prefix = f"hand_{idiom}"
    duration = meter.create_histogram(
        f"{prefix}.trade.duration", unit="s",
        explicit_bucket_boundaries_advisory=list(conv.DURATION_BUCKETS_S))
    trades = meter.create_counter(f"{prefix}.trades", unit="{trade}")
    volume = meter.create_counter(f"{prefix}.trade.volume", unit="{unit}")
    notional = meter.create_counter(f"{prefix}.trade.notional", unit="1")
    slippage = meter.create_histogram(
        f"{prefix}.trade.slippage", unit="bp",
        explicit_bucket_boundaries_advisory=list(conv.SLIPPAGE_BUCKETS_BP))
    attrs = trade_attributes()
    span_attrs, filled_attrs, pair_attrs, slip_attrs = (
        attrs.span, attrs.filled, attrs.pair, attrs.slippage)
    name = f"trade {SYMBOL}"
    clock = time.perf_counter_ns

    def record(span: Any, start: int) -> None:
        fill_price = FILL_PRICE  # what the exchange answered
        bp = (fill_price - PRICE) / PRICE * 10_000.0
        span.set_attributes({conv.TRADING_OUTCOME: "filled",
                             conv.TRADING_FILL_QUANTITY: QUANTITY,
                             conv.TRADING_FILL_PRICE: fill_price,
                             conv.TRADING_SLIPPAGE_BP: bp})
        duration.record((clock() - start) / 1e9, filled_attrs)
        trades.add(1, filled_attrs)
        volume.add(QUANTITY, pair_attrs)
        notional.add(QUANTITY * fill_price, pair_attrs)
        slippage.record(abs(bp), slip_attrs)

    if idiom == "current_span":
        def place() -> str:
            start = clock()
            with tracer.start_as_current_span(name, attributes=span_attrs) as span:
                result = "FILLED"
                record(span, start)
            return result
    else:
        def place() -> str:
            start = clock()
            span = tracer.start_span(name, attributes=span_attrs)
            token = context.attach(trace.set_span_in_context(span))
            try:
                result = "FILLED"
            finally:
                context.detach(token)
            record(span, start)
            span.end()
            return result

    return place


def versus_best_hand_written(
    candidate: Callable[[], object], hands: Sequence[Callable[[], object]], calls: int
) -> tuple[Callable[[], float], dict[str, list[float]]]:
    """A round: candidate and each hand-written idiom timed back to back (order
    rotating); the ratio is against the faster idiom of that round."""
    times: dict[str, list[float]] = {"candidate": [], "best_hand": []}
    turn = [0]

    def one_round() -> float:
        sides = [candidate, *hands]
        shift = turn[0] % len(sides)
        turn[0] += 1
        order = sides[shift:] + sides[:shift]
        measured = {id(fn): time_calls(fn, calls) for fn in order}
        best = min(measured[id(h)] for h in hands)
        times["candidate"].append(measured[id(candidate)])
        times["best_hand"].append(best)
        return measured[id(candidate)] / best

    return one_round, times


def _detail(times: dict[str, list[float]]) -> Callable[[], dict[str, Any]]:
    return lambda: {k + "_us": round(statistics.median(v) * 1e6, 3) for k, v in times.items()}


# --- figures ----------------------------------------------------------------------------


class _Discard:
    """A span exporter that drops everything (the SDK pipeline without the network)."""

    def export(self, spans: Sequence[Any]) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def figure_sdk(bench: Bench) -> None:
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from otel_botmon import telemetry

    tel = telemetry.configure(
        "bench", span_processors=[BatchSpanProcessor(_Discard())])  # type: ignore[arg-type]
    tracer = tel.tracer_provider.get_tracer("bench-hand")
    meter = tel.meter_provider.get_meter("bench-hand")
    hands = [hand_written(tracer, meter, "current_span"), hand_written(tracer, meter, "attach")]
    calls = 300 if bench.args.quick else 1_000
    for name, candidate, what in (
        ("trade.sdk.decorated", decorated_trade(), "@trade"),
        ("trade.sdk.with", with_trade(), "with trade(...) as t"),
    ):
        one_round, times = versus_best_hand_written(candidate, hands, calls)
        bench.rounds(
            name, one_round, target=0.8, rounds=31,
            workload=f"a whole {what} (span + duration, count, volume, notional, slippage) "
                     "on configure()'s SDK pipeline (BatchSpanProcessor to a discarding "
                     "exporter, in-memory reader) / the best hand-written OTel equivalent",
            warmup=lambda c=candidate: [time_calls(f, calls) for f in (c, *hands)],
            detail=_detail(times))
    tel.shutdown()


def figure_api(bench: Bench) -> None:
    from opentelemetry import metrics, trace

    # Nothing configured: both sides get the API's proxy tracer and meter.
    tracer, meter = trace.get_tracer("bench-hand"), metrics.get_meter("bench-hand")
    hands = [hand_written(tracer, meter, "current_span"), hand_written(tracer, meter, "attach")]
    calls = 1_000 if bench.args.quick else 5_000
    one_round, times = versus_best_hand_written(decorated_trade(), hands, calls)
    bench.rounds(
        "trade.api_only", one_round, target=1.0, rounds=31,
        workload="the same whole @trade with no SDK (OpenTelemetry API only, nothing "
                 "configured) / the best hand-written OTel equivalent on the same API",
        detail=_detail(times))


def _series_bytes_botmon(n: int) -> float:
    """Bytes per counter series of the lean trade aggregation: ``n`` (symbol, side) pairs
    each get a volume and a notional series (two counter series per pair)."""
    from opentelemetry.sdk.resources import Resource

    from otel_botmon.instrument._trade_metrics import TradeMetrics

    lean = TradeMetrics(Resource({}), limit=n + 1)
    symbols = [f"S{i:06d}USDT" for i in range(n)]
    labels = [(s, "BUY", "MARKET", "filled", None) for s in symbols]
    lean.record(("WARM", "BUY", "MARKET", "filled", None), None, 1.0, 2.0, None, 0.0)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for key in labels:
        lean.record(key, None, 0.25, 17_500.0, None, 0.0)
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    # The trade-count cells (one per label set) are the duration histogram's, not a
    # counter's: subtract them, measured the same way.
    only_counts = TradeMetrics(Resource({}), limit=n + 1)
    only_counts.record(("WARM", "BUY", "MARKET", "filled", None), None, None, None, None, 0.0)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for key in labels:
        only_counts.record(key, None, None, None, None, 0.0)
    counts = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return (used - counts) / (2 * n)


def _series_bytes_prometheus(n: int) -> float:
    """Bytes per series of prometheus_client: volume and notional Counters by (symbol,
    side), the same ``n`` pairs."""
    import prometheus_client

    registry = prometheus_client.CollectorRegistry()
    volume = prometheus_client.Counter("volume", "v", ("symbol", "side"), registry=registry)
    notional = prometheus_client.Counter("notional", "n", ("symbol", "side"), registry=registry)
    symbols = [f"S{i:06d}USDT" for i in range(n)]
    volume.labels("WARM", "BUY").inc(1.0)
    notional.labels("WARM", "BUY").inc(2.0)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for s in symbols:
        volume.labels(s, "BUY").inc(0.25)
        notional.labels(s, "BUY").inc(17_500.0)
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return used / (2 * n)


def figure_counter_memory(bench: Bench) -> None:
    n = 2_000 if bench.args.quick else 10_000
    ours: list[float] = []
    theirs: list[float] = []

    def one_round() -> float:
        ours.append(_series_bytes_botmon(n))
        theirs.append(_series_bytes_prometheus(n))
        return ours[-1] / theirs[-1]

    bench.rounds(
        "trade.counter_bytes_per_series", one_round, target=1.2, rounds=5,
        workload=f"{n:,} (symbol, side) pairs x (volume, notional) counter series: bytes "
                 "per series (tracemalloc) of the lean trade aggregation / prometheus_client "
                 "Counters with the same labels",
        detail=lambda: {"botmon_bytes": round(statistics.median(ours), 1),
                        "prometheus_client_bytes": round(statistics.median(theirs), 1)})


# --- memory over a million trades (own process) ----------------------------------------


def _rss_mib() -> float:
    import psutil

    return float(psutil.Process().memory_info().rss) / (1024 * 1024)


def child_memory(total: int) -> dict[str, Any]:
    from otel_botmon import telemetry
    from otel_botmon.instrument.trading import trade

    symbols = [f"SYM{i:05d}USDT" for i in range(10_000)]
    tel = telemetry.configure("bench-memory")

    @trade(order_type="MARKET")
    def place(symbol: str, side: str, quantity: float, price: float) -> object:
        return "FILLED"

    place("WARMUP", "BUY", 1.0, 1.0)
    gc.collect()
    before = _rss_mib()
    for i in range(total):
        place(symbols[i % 10_000], "BUY" if i & 1 else "SELL", 0.01, 100.0)
    gc.collect()
    after = _rss_mib()
    data = tel.metric_reader.get_metrics_data()
    series = {m.name: len(m.data.data_points) for rm in data.resource_metrics
              for sm in rm.scope_metrics for m in sm.metrics
              if m.name.startswith("botmon.trade")}
    tel.shutdown()
    return {"growth_mib": after - before, "series": series}


def figure_memory(bench: Bench) -> None:
    from otel_botmon import conventions as conv

    total = 100_000 if bench.args.quick else 1_000_000
    series: dict[str, int] = {}

    def one_round() -> float:
        result = _run_child(["--child-memory", str(total)])
        series.update(result["series"])
        return float(result["growth_mib"])

    figure = bench.rounds(
        "trade.memory_growth_mib", one_round, target=10.0, unit=" MiB", rounds=1,
        workload=f"{total:,} decorated trades over 10,000 symbols x 2 sides in a fresh "
                 "process: RSS growth (series capped at "
                 f"{conv.CARDINALITY_LIMIT} + 1 overflow per metric)",
        detail=lambda: {"series": series})
    if figure is None:
        return
    capped = all(n <= conv.CARDINALITY_LIMIT + 1 for n in series.values())
    print(f"  cardinality: series per metric {series} -> {'capped' if capped else 'NOT CAPPED'}")


# --- p99 with an OTLP endpoint (paired processes, window by window) --------------------


def _latency_window(place: Callable[[], object], calls: int) -> dict[str, float]:
    clock = time.perf_counter_ns
    samples = []
    for _ in range(calls):
        start = clock()
        place()
        samples.append((clock() - start) / 1000)
    return {"p99": quantile(samples, 0.99), "median": statistics.median(samples)}


def _dropped_spans() -> int:
    """Spans the span export shed so far (a queue that could not keep up): a p99 with
    spans dropped would flatter the candidate, so each window reports the count."""
    from otel_botmon import telemetry

    tel = telemetry.get_telemetry()
    if tel is None:
        return 0
    processors = tel.tracer_provider._active_span_processor._span_processors
    return sum(int(getattr(p, "dropped_spans", 0)) for p in processors)


def child_latency(endpoint: str, freeze: bool) -> None:
    """One side of a p99 figure, driven over stdin: each ``go N`` line times N trades
    and prints that window's p99 and median (µs)."""
    from otel_botmon import telemetry

    place = decorated_trade()
    if endpoint == "none":
        telemetry.configure("bench-no-exporter")
    else:
        telemetry.configure("bench-otlp", otlp_endpoint=endpoint, export_interval_s=1.0)
    if freeze:
        gc.freeze()
    _latency_window(place, 20_000)  # warm up: the span queue and its batches cycle
    tel = telemetry.get_telemetry()
    if tel is not None:  # the first window starts as every other: nothing queued
        tel.force_flush(10.0)
    warm_dropped = _dropped_spans()
    print("READY", flush=True)
    for line in sys.stdin:
        if line.startswith("flush"):
            # Export what this window produced before the other side's window starts, so
            # its sender thread's work is not timed on the other side.
            tel = telemetry.get_telemetry()
            if tel is not None:
                tel.force_flush(10.0)
            print("FLUSHED", flush=True)
            continue
        if not line.startswith("go"):
            break
        window = _latency_window(place, int(line.split()[1]))
        window["dropped"] = _dropped_spans() - warm_dropped  # in the timed windows
        print(json.dumps(window), flush=True)
    print("SHUTDOWN", flush=True)
    telemetry.shutdown()


class _Pair:
    """Two child processes timed in alternating windows (the same machine load)."""

    def __init__(self, candidate: Sequence[str], baseline: Sequence[str],
                 flush: bool = True) -> None:
        self.flush = flush
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        self.procs = {
            side: subprocess.Popen(
                [sys.executable, os.path.abspath(__file__), *args],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
            for side, args in (("candidate", candidate), ("baseline", baseline))
        }
        for proc in self.procs.values():
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if not line.startswith("READY"):
                raise SystemExit(f"bench child failed to start: {line!r}")
        self.turn = 0
        self.windows: dict[str, list[dict[str, float]]] = {"candidate": [], "baseline": []}

    def window(self, side: str, calls: int) -> dict[str, float]:
        proc = self.procs[side]
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(f"go {calls}\n")
        proc.stdin.flush()
        result: dict[str, float] = json.loads(proc.stdout.readline())
        self.windows[side].append(result)
        if self.flush:
            proc.stdin.write("flush\n")
            proc.stdin.flush()
            proc.stdout.readline()
        return result

    def p99_round(self, calls: int) -> float:
        self.turn += 1
        order = ("candidate", "baseline") if self.turn % 2 else ("baseline", "candidate")
        found = {side: self.window(side, calls)["p99"] for side in order}
        return found["candidate"] / found["baseline"]

    def close(self) -> dict[str, float | None]:
        """Stop both; the seconds from each's shutdown() to its exit."""
        exits: dict[str, float | None] = {}
        for side, proc in self.procs.items():
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write("stop\n")
            proc.stdin.flush()
            proc.stdin.close()
            line = proc.stdout.readline()
            started = time.monotonic()
            proc.wait(timeout=60)
            exits[side] = time.monotonic() - started if line.startswith("SHUTDOWN") else None
        return exits

    def detail(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            f"{side}_{key}_us": round(statistics.median(w[key] for w in windows), 2)
            for side, windows in self.windows.items() for key in ("p99", "median")}
        for side, windows in self.windows.items():  # spans shed, over all the windows
            found[f"{side}_dropped_spans"] = int(max((w.get("dropped", 0) for w in windows),
                                                     default=0))
        return found


@contextlib.contextmanager
def _rotel_blackhole(workdir: Path) -> Iterator[str]:
    """A real rotel collector (OTLP/HTTP in, answering at once) that discards what it
    receives, so no receiver in this process competes for the CPU. Yields its endpoint."""
    from tests.otlp_receiver import rotel_binary
    from tests.services import LOOPBACK, free_port, wait_for_tcp

    grpc_port, http_port = free_port(), free_port()
    log = open(workdir / "rotel.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [rotel_binary(), "start", "--otlp-grpc-endpoint", f"{LOOPBACK}:{grpc_port}",
         "--otlp-http-endpoint", f"{LOOPBACK}:{http_port}", "--exporter", "blackhole",
         "--pid-file", str(workdir / "rotel.pid"), "--log-file", str(workdir / "r.log")],
        stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_tcp(LOOPBACK, http_port, timeout=15)
        yield f"http://{LOOPBACK}:{http_port}"
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def figure_healthy_otlp(bench: Bench) -> None:
    if not bench.wanted("trade.p99.healthy_otlp"):
        return
    calls = 2_000 if bench.args.quick else 5_000
    with tempfile.TemporaryDirectory() as tmp, _rotel_blackhole(Path(tmp)) as endpoint:
        for name, flag, note in (
            ("trade.p99.healthy_otlp", [], ""),
            ("trade.p99.healthy_otlp_gc_frozen", ["--freeze"],
             " (both processes call gc.freeze() after configure(); informational)"),
        ):
            if not bench.wanted(name):
                continue
            pair = _Pair(["--child-latency", endpoint, *flag],
                         ["--child-latency", "none", *flag])
            try:
                bench.rounds(
                    name, lambda p=pair: p.p99_round(calls),
                    target=1.2 if not flag else None, rounds=31,
                    workload=f"p99 of {calls:,} decorated trades per window, OTLP/HTTP to a "
                             "real rotel collector (blackhole exporter: it answers at once) "
                             "/ no exporter; two processes in alternating windows, each "
                             "window's spans exported (force_flush) before the next window; "
                             f"verdict on the median of per-window p99 ratios; spans the "
                             f"export shed in the timed windows are in the detail{note}",
                    detail=pair.detail)
                shed = pair.detail()["candidate_dropped_spans"]
                print(f"  spans dropped by the span export in the timed windows: {shed:,}")
            finally:
                pair.close()


def _blackhole_server() -> tuple[Any, int]:
    import socket
    import threading

    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[Any] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            held.append(conn)  # keep it open, say nothing

    threading.Thread(target=accept, daemon=True).start()
    return server, server.getsockname()[1]


def figure_blackhole(bench: Bench) -> None:
    name = "trade.p99.blackholed_otlp"
    if not bench.wanted(name):
        return
    server, port = _blackhole_server()
    calls = 2_000 if bench.args.quick else 5_000
    # No flush between windows: against a socket that never answers it would only wait.
    pair = _Pair(["--child-latency", f"http://127.0.0.1:{port}"], ["--child-latency", "none"],
                 flush=False)
    try:
        bench.rounds(
            name, lambda: pair.p99_round(calls), target=1.2, rounds=21,
            workload=f"p99 of {calls:,} decorated trades per window, OTLP to a socket that "
                     "accepts and never answers / no exporter (alternating windows)",
            detail=pair.detail)
    finally:
        exits = pair.close()
        server.close()
    stuck_exit = exits["candidate"]
    bench.rounds(
        "trade.exit_after_shutdown_s", lambda: -1.0 if stuck_exit is None else stuck_exit,
        target=5.0, unit=" s", rounds=1,
        workload="seconds from shutdown() to process exit with the blackholed endpoint")


# --- orchestration ---------------------------------------------------------------------


def _run_child(args: Sequence[str]) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run([sys.executable, os.path.abspath(__file__), *args],
                          stdout=subprocess.PIPE, text=True, env=env, timeout=900, check=False)
    if done.returncode != 0:
        raise SystemExit(f"bench child {args} failed with exit code {done.returncode}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _children(argv: Sequence[str]) -> bool:
    if "--child-memory" in argv:
        print(json.dumps(child_memory(int(argv[argv.index("--child-memory") + 1]))))
        return True
    if "--child-latency" in argv:
        child_latency(argv[argv.index("--child-latency") + 1], "--freeze" in argv)
        return True
    return False


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if _children(args):
        return 0
    bench = Bench("trade", __doc__, args)
    figure_api(bench)  # first: nothing may have installed global providers yet
    figure_sdk(bench)
    figure_counter_memory(bench)
    figure_memory(bench)
    figure_healthy_otlp(bench)
    figure_blackhole(bench)
    return bench.finish()


if __name__ == "__main__":
    raise SystemExit(main())
