"""Redaction cost: linear in the input, bounded per span, cheap for signed URLs.

Every figure is a ratio against a baseline measured in the same process run, in
interleaved rounds (the machine is noisy); the median of the per-round ratios is printed.

1. ``redact_text`` of a 1 MB adversarial string / of a 1 KB one of the same kind
   (hex run, ``a:`` x n, ``=`` x n, ``token=`` x n): linear with a cut, target <= 1,500
   for each kind.
2. A span ending with a 20 KB exception message / the same span with a 1 KB message,
   through ``configure()``'s redacting pipeline (``@exchange_call`` raising a revert
   message full of hex calldata). Target: <= 2.
3. A span carrying a signed URL (a fresh signature per call) through
   ``RedactingSpanProcessor`` / the same span through the bare processor. Target: <= 1.3.
   3b. The same through ``configure()``'s OTLP span pipeline, where redaction runs on the
   batch processor's thread: ``BatchSpanProcessor(RedactingSpanExporter(x))`` /
   ``BatchSpanProcessor(x)``, time on the bot's thread. Target: <= 1.3.

Run: python bench/bench_redaction.py [--rounds N] [--only 1|2|3]
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.trace import SpanKind

from otel_botmon import telemetry
from otel_botmon.instrument.exchange import exchange_call
from otel_botmon.redaction import RedactingSpanExporter, RedactingSpanProcessor, redact_text


class DropExporter(SpanExporter):
    """Accepts spans and forgets them: the cost of a real exporter without the I/O."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


def per_call_s(func: Callable[[], Any], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        func()
    return (time.perf_counter() - start) / calls


def median_ratio(
    candidate: Callable[[], Any], baseline: Callable[[], Any], rounds: int,
    calls: int, baseline_calls: int | None = None,
) -> tuple[float, float, float]:
    """Median of per-round candidate/baseline ratios, and the median per-call times."""
    base_calls = baseline_calls or calls
    per_call_s(candidate, calls)  # warm caches and instruments
    per_call_s(baseline, base_calls)
    ratios, cand, base = [], [], []
    for i in range(rounds):
        if i % 2:
            b = per_call_s(baseline, base_calls)
            c = per_call_s(candidate, calls)
        else:
            c = per_call_s(candidate, calls)
            b = per_call_s(baseline, base_calls)
        ratios.append(c / b)
        cand.append(c)
        base.append(b)
    return statistics.median(ratios), statistics.median(cand), statistics.median(base)


def report(title: str, result: tuple[float, float, float], target: float) -> bool:
    ratio, cand, base = result
    ok = ratio <= target
    print(f"{title}\n    ratio {ratio:8.2f}  (target <= {target}, "
          f"{cand * 1e6:9.1f} us vs {base * 1e6:7.1f} us)  {'OK' if ok else 'MISSED'}")
    return ok


ADVERSARIAL = {"hex run": "0123456789abcdef", "a: x n": "a:", "= x n": "=",
               "token= x n": "token="}


def _linear_pair(unit: str) -> tuple[Callable[[], Any], Callable[[], Any]]:
    """(redact a 1 MB string, redact one of 4,096 distinct 1 KB strings) of one kind."""
    big = (unit * (1_048_576 // len(unit) + 1))[:1_048_576]
    small = (unit * (1024 // len(unit) + 1))[:1024]
    # distinct strings each call: the small-text cache must not serve the baseline
    smalls = [small[:-8] + f"{i:08d}" for i in range(4096)]
    counter = iter(range(10**9))

    def one_big() -> None:
        redact_text(big)

    def one_small() -> None:
        redact_text(smalls[next(counter) % 4096])

    return one_big, one_small


def bench_linear(rounds: int) -> bool:
    results = []
    for kind, unit in ADVERSARIAL.items():
        one_big, one_small = _linear_pair(unit)
        results.append(report(
            f"1. redact_text 1 MB / 1 KB, {kind}",
            median_ratio(one_big, one_small, rounds, 3, 60), 1500,
        ))
    return all(results)


def bench_exception_span(rounds: int) -> bool:
    tel = telemetry.configure(
        "bench", exchange="binance", span_processors=[SimpleSpanProcessor(DropExporter())],
        set_global=False,
    )
    try:
        calldata = secrets.token_hex(10_000)

        def failing(size: int) -> Callable[[], None]:
            message = ("execution reverted: 0x" + calldata)[:size]

            @exchange_call(exchange="binance", endpoint="create_order")
            def place() -> None:
                raise RuntimeError(message)

            def one() -> None:
                try:
                    place()
                except RuntimeError:
                    pass

            return one

        return report("2. span with a 20 KB exception message / with a 1 KB one",
                      median_ratio(failing(20_000), failing(1_000), rounds, 300), 2.0)
    finally:
        tel.shutdown()


def bench_signed_url_span(rounds: int) -> bool:
    plain = TracerProvider()
    plain.add_span_processor(SimpleSpanProcessor(DropExporter()))
    redacting = TracerProvider()
    redacting.add_span_processor(RedactingSpanProcessor(SimpleSpanProcessor(DropExporter())))
    # A fresh timestamp and signature per request, as a real signed request has.
    urls = [
        "https://api.binance.com/api/v3/order?symbol=BTCUSDT&side=BUY&type=MARKET"
        f"&quantity=0.001&timestamp={1700000000000 + i}&recvWindow=5000"
        f"&signature={secrets.token_hex(32)}"
        for i in range(4096)
    ]

    def span_on(provider: TracerProvider) -> Callable[[], None]:
        tracer = provider.get_tracer("bench")
        counter = iter(range(10**9))

        def one() -> None:
            url = urls[next(counter) % 4096]
            tracer.start_span("POST", kind=SpanKind.CLIENT, attributes={
                "http.request.method": "POST", "url.full": url,
                "server.address": "api.binance.com", "http.response.status_code": 200,
            }).end()

        return one

    held = report("3. signed-URL span through RedactingSpanProcessor / bare processor",
                  median_ratio(span_on(redacting), span_on(plain), rounds, 2000), 1.3)
    # configure()'s OTLP pipeline: the batch processor's thread redacts, not the bot's.
    batch_plain = TracerProvider()
    batch_plain.add_span_processor(BatchSpanProcessor(DropExporter()))
    batch_redacting = TracerProvider()
    batch_redacting.add_span_processor(BatchSpanProcessor(RedactingSpanExporter(DropExporter())))
    try:
        held = report(
            "3b. signed-URL span, BatchSpanProcessor(RedactingSpanExporter) / bare batch "
            "(bot's thread, configure()'s OTLP pipeline)",
            median_ratio(span_on(batch_redacting), span_on(batch_plain), rounds, 2000), 1.3,
        ) and held
    finally:
        batch_plain.shutdown()
        batch_redacting.shutdown()
    return held


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--only", type=int, choices=(1, 2, 3), help="run one benchmark")
    args = parser.parse_args(argv)
    benches = [bench_linear, bench_exception_span, bench_signed_url_span]
    if args.only:
        benches = [benches[args.only - 1]]
    results = [bench(args.rounds) for bench in benches]
    print(f"{sum(results)}/{len(results)} targets hold")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
