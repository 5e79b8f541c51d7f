"""Benchmark: what the InfluxDB exporter costs a decorated trade.

Target (issue 7): with the InfluxDB exporter enabled next to OTLP export, the p99
latency of a ``@trade``-decorated call is at most 1.1 times its p99 with OTLP export
alone. Both configurations export every 0.2 s (far more often than the 10-60 s used in
production, to make the exporters' background work overlap as many trades as possible)
to sink servers in a separate process, so only the bot side is measured.

The machine is shared and noisy, so the two configurations run in alternating blocks
(one round = one block of each, in alternating order) and each round gives a p99 ratio
of blocks measured seconds apart under the same load. The verdict uses the median of the
rounds' ratios; the ratio over all samples pooled is printed too.

    python bench/bench_fleet.py [--rounds 16] [--calls 4000]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=16)
    parser.add_argument("--calls", type=int, default=4000)
    args = parser.parse_args()

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
        round_ratios: list[float] = []
        for round_no in range(args.rounds):
            # Alternate which configuration goes first, so neither always runs warmer.
            if round_no % 2 == 0:
                base_block = run_block(otlp_only, args.calls)
                influx_block = run_block(with_influx, args.calls)
            else:
                influx_block = run_block(with_influx, args.calls)
                base_block = run_block(otlp_only, args.calls)
            base.extend(base_block)
            influx.extend(influx_block)
            round_ratios.append(p99(influx_block) / p99(base_block))
    finally:
        sink.terminate()
        sink.wait(10)

    ratio = statistics.median(round_ratios)
    print(f"decorated trade: {args.rounds} rounds x {args.calls} calls per configuration, "
          f"exports every 0.2 s")
    print(f"  p50 ratio, pooled           (OTLP + InfluxDB) / (OTLP alone): "
          f"{statistics.median(influx) / statistics.median(base):.3f}")
    print(f"  p99 ratio, pooled           (OTLP + InfluxDB) / (OTLP alone): "
          f"{p99(influx) / p99(base):.3f}")
    print(f"  p99 ratio, median of rounds (OTLP + InfluxDB) / (OTLP alone): {ratio:.3f}"
          f"   target <= {TARGET_RATIO}: {'HOLDS' if ratio <= TARGET_RATIO else 'MISSED'}")
    print(f"  (per-round p99 ratios: {', '.join(f'{r:.2f}' for r in round_ratios)})")
    return 0 if ratio <= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
