"""Benchmark: what the InfluxDB exporter costs a decorated trade.

Target (issue 7): with the InfluxDB exporter enabled next to OTLP export, the p99
latency of a ``@trade``-decorated call is at most 1.1 times its p99 with OTLP export
alone. Both configurations export every 0.2 s (far more often than the 10-60 s used in
production, to make the exporters' background work overlap as many trades as possible)
to sink servers in a separate process, so only the bot side is measured.

The machine is shared and noisy, so the two configurations run in alternating blocks
(one round = one block of each, in alternating order) and each round gives a p99 ratio
of blocks measured seconds apart under the same load. bench/_harness.py reports the
median of the rounds' ratios (the verdict), their interquartile range and mean; the p50
and p99 ratios over all samples pooled are in the figure's detail.

    python bench/bench_fleet.py [--quick] [--repeat N] [--rounds 16] [--calls 4000]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from bench._harness import Bench
from otel_botmon import telemetry
from otel_botmon.instrument.trading import current_trade, trade

TARGET_RATIO = 1.1
SYMBOLS = [f"SYM{i}USDT" for i in range(20)]

# A sink answering every POST with 204: stands in for the collector and for InfluxDB.
_SINK = """
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(204 if "/api/v2/write" in self.path else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *a):
        pass
server = ThreadingHTTPServer(("127.0.0.1", 0), H)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


@trade
def place_order(symbol: str, side: str, quantity: float, price: float) -> None:
    t = current_trade()
    if t is not None:
        t.filled(price=price * 1.0001, quantity=quantity)


def measure(calls: int) -> list[int]:
    """Latency in ns of ``calls`` decorated trades."""
    samples = []
    clock = time.perf_counter_ns
    for i in range(calls):
        symbol = SYMBOLS[i % len(SYMBOLS)]
        start = clock()
        place_order(symbol, "BUY" if i % 2 else "SELL", 0.01, 45000.0)
        samples.append(clock() - start)
    return samples


def p99(samples: list[int]) -> float:
    return statistics.quantiles(samples, n=100)[98]


def run_block(config: dict[str, Any], calls: int) -> list[int]:
    tel = telemetry.configure("bench-bot", bot_name="bench", set_global=False, **config)
    measure(500)  # warm-up: instruments created, first export scheduled
    gc.collect()
    samples = measure(calls)
    tel.shutdown(timeout_s=5.0)
    return samples


def _calls_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--calls", type=int, default=None,
                        help="trades per block (default 4000, 1500 with --quick)")


def main(argv: Sequence[str] | None = None) -> int:
    bench = Bench("fleet", __doc__, argv, extra=_calls_option)
    calls = bench.args.calls or (1500 if bench.args.quick else 4000)
    sink = subprocess.Popen([sys.executable, "-c", _SINK], stdout=subprocess.PIPE, text=True)
    try:
        assert sink.stdout is not None
        url = f"http://127.0.0.1:{int(sink.stdout.readline())}"
        httpx.get(url, timeout=5)
        otlp_only: dict[str, Any] = {"otlp_endpoint": url, "export_interval_s": 0.2}
        with_influx: dict[str, Any] = {
            **otlp_only,
            "influxdb": {"url": url, "token": "bench-token-not-checked", "org": "o", "bucket": "b",
                         "export_interval_s": 0.2},
        }
        base: list[int] = []
        influx: list[int] = []
        turn = [0]

        def one_round() -> float:
            # Alternate which configuration goes first, so neither always runs warmer.
            turn[0] += 1
            if turn[0] % 2:
                base_block = run_block(otlp_only, calls)
                influx_block = run_block(with_influx, calls)
            else:
                influx_block = run_block(with_influx, calls)
                base_block = run_block(otlp_only, calls)
            base.extend(base_block)
            influx.extend(influx_block)
            return p99(influx_block) / p99(base_block)

        def pooled() -> dict[str, Any]:
            return {"pooled_p50_ratio": round(statistics.median(influx)
                                              / statistics.median(base), 3),
                    "pooled_p99_ratio": round(p99(influx) / p99(base), 3),
                    "p99_otlp_only_us": round(p99(base) / 1e3, 1),
                    "p99_with_influx_us": round(p99(influx) / 1e3, 1)}

        bench.rounds(
            "fleet.trade_p99_influx", one_round, target=TARGET_RATIO, rounds=16,
            workload=f"p99 of {calls} @trade calls (20 symbols, fill reported) with OTLP + "
                     "InfluxDB export every 0.2 s / with OTLP export alone, to sink servers "
                     "in another process, a fresh pipeline per block",
            detail=pooled)
    finally:
        sink.terminate()
        sink.wait(10)
    return bench.finish()


if __name__ == "__main__":
    sys.exit(main())
