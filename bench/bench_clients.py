"""Overhead of instrument_ccxt and instrument_requests against a local exchange.

The simulated exchange runs in its own process (``botmon demo --exchange-only`` on a free
loopback port), so its work does not share this process's GIL with the client. Every
figure is a ratio against a baseline measured in the same run, in alternating rounds; the
median of the per-round ratios is printed.

1. A ccxt request (``fetch_ticker``) through ``instrument_ccxt`` (client span, request
   metrics, rate-limit gauges, redaction) against a bare ccxt instance talking to the
   same server. Target: median ratio <= 1.30.
2. A request with ``requests`` through ``instrument_requests()`` (the contrib
   instrumentation plus redaction hooks, exchange metrics and rate-limit headers) against
   the contrib requests instrumentation alone. Target: <= 1.20.

Run: python bench/bench_clients.py [--rounds N] [--calls N]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import ccxt
import requests
from opentelemetry.instrumentation.requests import RequestsInstrumentor

from otel_botmon import telemetry
from otel_botmon.demo.serve import local_urls
from otel_botmon.instrument.ccxt import instrument_ccxt, uninstrument_ccxt
from otel_botmon.instrument.requests_client import (
    instrument_requests,
    is_requests_instrumented,
    uninstrument_requests,
)

API_KEY, API_SECRET = "bench-api-key", "bench-api-secret"


@contextmanager
def exchange_process() -> Iterator[str]:
    """The simulated exchange in a child process; yields its base URL."""
    env_cmd = [sys.executable, "-m", "otel_botmon.cli", "demo", "--exchange-only",
               "--port", "0"]
    env = {**os.environ, "BOTMON_DEMO_API_KEY": API_KEY, "BOTMON_DEMO_API_SECRET": API_SECRET}
    proc = subprocess.Popen(env_cmd, stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        match = re.search(r"(http://127\.0\.0\.1:\d+)", proc.stdout.readline())
        if match is None:
            raise RuntimeError("the simulated exchange did not start")
        yield match.group(1)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def per_call_s(func: Callable[[], Any], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        func()
    return (time.perf_counter() - start) / calls


def median_ratio(
    candidate: Callable[[], Any], baseline: Callable[[], Any], rounds: int, calls: int,
    before_candidate: Callable[[], None] = lambda: None,
    before_baseline: Callable[[], None] = lambda: None,
) -> tuple[float, float, float]:
    """Median of per-round candidate/baseline ratios, and the median per-call times."""
    for _ in range(2):  # warm connections, caches and instruments
        before_candidate()
        per_call_s(candidate, calls)
        before_baseline()
        per_call_s(baseline, calls)
    ratios, cand, base = [], [], []
    for i in range(rounds):
        order = [(before_candidate, candidate, cand), (before_baseline, baseline, base)]
        if i % 2:
            order.reverse()
        for prepare, func, times in order:
            prepare()
            times.append(per_call_s(func, calls))
        ratios.append(cand[-1] / base[-1])
    return statistics.median(ratios), statistics.median(cand), statistics.median(base)


def report(title: str, result: tuple[float, float, float], target: float) -> bool:
    ratio, cand, base = result
    ok = ratio <= target
    print(f"{title}\n    ratio {ratio:.3f} (target <= {target:.2f}: {'HOLDS' if ok else 'MISSED'});"
          f" {cand * 1e6:.0f} us vs {base * 1e6:.0f} us per request")
    return ok


def bench_ccxt(base_url: str, rounds: int, calls: int) -> bool:
    def make() -> Any:
        exchange = ccxt.binance({"apiKey": API_KEY, "secret": API_SECRET,
                                 "enableRateLimit": False,
                                 "options": {"fetchMarkets": {"types": ["spot"]}}})
        exchange.urls["api"] = local_urls(exchange.urls["api"], base_url)
        exchange.load_markets()
        return exchange

    bare, instrumented = make(), make()
    instrument_ccxt(instrumented)
    try:
        return report(
            "ccxt fetch_ticker: instrument_ccxt vs bare ccxt (same local server)",
            median_ratio(lambda: instrumented.fetch_ticker("BTC/USDT"),
                         lambda: bare.fetch_ticker("BTC/USDT"), rounds, calls), 1.30)
    finally:
        uninstrument_ccxt()


def bench_requests(base_url: str, rounds: int, calls: int) -> bool:
    session = requests.Session()
    url = f"{base_url}/api/v3/ticker/price?symbol=BTCUSDT"
    tel = telemetry.get_telemetry()
    assert tel is not None

    contrib = RequestsInstrumentor()

    def ours() -> None:
        if contrib.is_instrumented_by_opentelemetry and not is_requests_instrumented():
            contrib.uninstrument()
        instrument_requests(exchange="binance")

    def contrib_only() -> None:
        uninstrument_requests()
        if not contrib.is_instrumented_by_opentelemetry:
            contrib.instrument(tracer_provider=tel.tracer_provider,
                               meter_provider=tel.meter_provider)

    try:
        return report(
            "requests GET: instrument_requests vs the contrib requests instrumentation alone",
            median_ratio(lambda: session.get(url), lambda: session.get(url), rounds, calls,
                         before_candidate=ours, before_baseline=contrib_only), 1.20)
    finally:
        uninstrument_requests()
        if contrib.is_instrumented_by_opentelemetry:
            contrib.uninstrument()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--calls", type=int, default=100)
    args = parser.parse_args(argv)
    tel = telemetry.configure("bench-clients", exchange="binance", set_global=False)
    try:
        with exchange_process() as base_url:
            results = [
                bench_ccxt(base_url, args.rounds, args.calls),
                bench_requests(base_url, args.rounds, args.calls),
            ]
    finally:
        tel.shutdown()
    print(f"{sum(results)}/{len(results)} targets hold")
    return 0 if all(results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
