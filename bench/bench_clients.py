"""Overhead of instrument_ccxt and instrument_requests against a local exchange.

The simulated exchange runs in its own process (``botmon demo --exchange-only`` on a free
loopback port), so its work does not share this process's GIL with the client. Every
figure is a ratio against a baseline measured in the same run (bench/_harness.py: A and
B interleaved in rounds, one ratio per round, median / IQR / mean).

1. A ccxt request (``fetch_ticker``) through ``instrument_ccxt`` (client span, request
   metrics, rate-limit gauges, redaction) against a bare ccxt instance talking to the
   same server. Target: median ratio <= 1.30.
2. A request with ``requests`` through ``instrument_requests()`` (the contrib
   instrumentation plus redaction hooks, exchange metrics and rate-limit headers) against
   the contrib requests instrumentation alone. Target: <= 1.20.

Run: python bench/bench_clients.py [--repeat 3] [--quick] [--calls N]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import ccxt
import requests
from opentelemetry.instrumentation.requests import RequestsInstrumentor

from bench._harness import Bench
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


def bench_ccxt(bench: Bench, base_url: str, calls: int) -> None:
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
        bench.ratio("clients.ccxt", lambda: instrumented.fetch_ticker("BTC/USDT"),
                    lambda: bare.fetch_ticker("BTC/USDT"), target=1.30, calls=calls,
                    workload="ccxt.binance fetch_ticker('BTC/USDT') over HTTP to the simulated "
                             "exchange in another process: instrument_ccxt (client span, "
                             "request metrics, rate-limit gauges, redaction) / a bare ccxt "
                             "instance on the same server")
    finally:
        uninstrument_ccxt()


def bench_requests(bench: Bench, base_url: str, calls: int) -> None:
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
        bench.ratio("clients.requests", lambda: session.get(url), lambda: session.get(url),
                    target=1.20, calls=calls, before_candidate=ours,
                    before_baseline=contrib_only,
                    workload="requests.Session GET /api/v3/ticker/price (keep-alive) to the "
                             "simulated exchange in another process: instrument_requests() "
                             "(contrib + redaction hooks, exchange metrics, rate-limit "
                             "headers) / the contrib requests instrumentation alone")
    finally:
        uninstrument_requests()
        if contrib.is_instrumented_by_opentelemetry:
            contrib.uninstrument()


def _calls_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--calls", type=int, default=None,
                        help="requests per side and round (default 100, 30 with --quick)")


def main(argv: Sequence[str] | None = None) -> int:
    bench = Bench("clients", __doc__, argv, extra=_calls_option)
    calls = bench.args.calls or (30 if bench.args.quick else 100)
    tel = telemetry.configure("bench-clients", exchange="binance", set_global=False)
    try:
        with exchange_process() as base_url:
            if bench.wanted("clients.ccxt"):
                bench_ccxt(bench, base_url, calls)
            if bench.wanted("clients.requests"):
                bench_requests(bench, base_url, calls)
    finally:
        tel.shutdown()
    return bench.finish()


if __name__ == "__main__":
    raise SystemExit(main())
