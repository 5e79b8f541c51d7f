"""Overhead of exchange-call instrumentation, httpx hooks and span redaction.

Every figure is a ratio against a baseline measured in the same process run, in
alternating rounds (the machine is noisy); the median of the per-round ratios is printed.

1. ``@exchange_call`` (span + duration histogram + request counter, 3 attributes)
   against hand-written OpenTelemetry code doing the same on the same SDK providers.
   Target: median ratio <= 1.10.
2. ``instrument_httpx(client)`` (contrib span + redaction hooks + metrics wrapper +
   rate-limit headers) against the contrib instrumentation alone, per request through
   an in-process transport. It records three measurements more than the contrib (request
   count, duration, rate-limit gauge), each about as costly as the contrib's own
   histogram. Target: <= 1.50.
3. ``RedactingSpanProcessor`` around the exporting processor against the bare
   processor, for a trade-like span with no secret (the common case). Target: <= 1.15.

Run: python bench/bench_exchange.py [--rounds N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.trace import SpanKind

from otel_botmon import conventions as conv
from otel_botmon import telemetry
from otel_botmon.instrument.exchange import exchange_call
from otel_botmon.instrument.httpx import instrument_httpx, uninstrument_httpx
from otel_botmon.redaction import RedactingSpanProcessor


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
    candidate: Callable[[], Any], baseline: Callable[[], Any], rounds: int, calls: int
) -> tuple[float, float, float]:
    """Median of per-round candidate/baseline ratios, and the median per-call times."""
    for _ in range(3):  # warm caches and instruments
        per_call_s(candidate, calls)
        per_call_s(baseline, calls)
    ratios, cand, base = [], [], []
    for i in range(rounds):
        if i % 2:
            b = per_call_s(baseline, calls)
            c = per_call_s(candidate, calls)
        else:
            c = per_call_s(candidate, calls)
            b = per_call_s(baseline, calls)
        ratios.append(c / b)
        cand.append(c)
        base.append(b)
    return statistics.median(ratios), statistics.median(cand), statistics.median(base)


def report(title: str, result: tuple[float, float, float], target: float) -> bool:
    ratio, cand, base = result
    ok = ratio <= target
    print(f"{title}\n    ratio {ratio:.3f} (target <= {target:.2f}: {'HOLDS' if ok else 'MISSED'});"
          f" candidate {cand * 1e6:.1f} us, baseline {base * 1e6:.1f} us per call")
    return ok


def bench_exchange_call(rounds: int) -> bool:
    tel = telemetry.configure(
        "bench", exchange="binance", span_processors=[SimpleSpanProcessor(DropExporter())],
        set_global=False,
    )
    tracer = tel.tracer_provider.get_tracer(conv.INSTRUMENTATION_SCOPE)
    duration = telemetry.instrument(conv.EXCHANGE_REQUEST_DURATION)
    requests = telemetry.instrument(conv.EXCHANGE_REQUESTS)

    class Response:
        status_code = 200

    response = Response()

    @exchange_call(exchange="binance", endpoint="create_order")
    def decorated() -> Response:
        return response

    def hand_written() -> Response:
        # What a careful user writes by hand: the span is current for the body (so an
        # httpx span nests under it), errors are recorded, then the two metrics.
        start = time.perf_counter()
        attrs: dict[str, Any] = {conv.EXCHANGE_NAME: "binance",
                                 conv.EXCHANGE_ENDPOINT: "create_order"}
        with tracer.start_as_current_span("exchange create_order", kind=SpanKind.CLIENT,
                                          attributes=attrs) as span:
            try:
                result = response
            except Exception as exc:
                attrs = {**attrs, conv.ERROR_TYPE: type(exc).__qualname__}
                duration.record(time.perf_counter() - start, attrs)
                requests.add(1, attrs)
                raise
            attrs = {**attrs, conv.HTTP_RESPONSE_STATUS_CODE: result.status_code}
            span.set_attribute(conv.HTTP_RESPONSE_STATUS_CODE, result.status_code)
        duration.record(time.perf_counter() - start, attrs)
        requests.add(1, attrs)
        return result

    try:
        return report("1. @exchange_call vs hand-written OpenTelemetry (same providers)",
                      median_ratio(decorated, hand_written, rounds, 2000), 1.10)
    finally:
        tel.shutdown()


def bench_httpx(rounds: int) -> bool:
    tel = telemetry.configure(
        "bench", exchange="binance", span_processors=[SimpleSpanProcessor(DropExporter())],
        set_global=False,
    )

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"X-MBX-USED-WEIGHT-1M": "7"}, content=b"{}")

    ours = httpx.Client(transport=httpx.MockTransport(answer))
    contrib_only = httpx.Client(transport=httpx.MockTransport(answer))
    instrument_httpx(ours, exchange="binance")
    HTTPXClientInstrumentor.instrument_client(
        contrib_only, tracer_provider=tel.tracer_provider, meter_provider=tel.meter_provider
    )
    url = "https://api.binance.com/api/v3/order?symbol=BTCUSDT&timestamp=1&signature=abc"
    try:
        return report(
            "2. instrument_httpx(client) vs the contrib instrumentation alone, per request",
            median_ratio(lambda: ours.get(url), lambda: contrib_only.get(url), rounds, 200),
            1.50,
        )
    finally:
        uninstrument_httpx()
        HTTPXClientInstrumentor.uninstrument_client(contrib_only)
        tel.shutdown()


def bench_redacting_processor(rounds: int) -> bool:
    plain = TracerProvider()
    plain.add_span_processor(SimpleSpanProcessor(DropExporter()))
    redacting = TracerProvider()
    redacting.add_span_processor(RedactingSpanProcessor(SimpleSpanProcessor(DropExporter())))
    attrs = {conv.TRADING_SYMBOL: "BTCUSDT", conv.TRADING_SIDE: "BUY",
             conv.TRADING_ORDER_TYPE: "MARKET", conv.TRADING_QUANTITY: 0.001,
             conv.TRADING_PRICE: 45000.0, conv.TRADING_OUTCOME: "filled"}

    def span_on(provider: TracerProvider) -> Callable[[], None]:
        tracer = provider.get_tracer("bench")

        def one() -> None:
            tracer.start_span("trade BTCUSDT", attributes=attrs).end()

        return one

    return report("3. RedactingSpanProcessor vs bare processor, span without secrets",
                  median_ratio(span_on(redacting), span_on(plain), rounds, 2000), 1.15)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=41)
    args = parser.parse_args(argv)
    results = [
        bench_exchange_call(args.rounds),
        bench_httpx(args.rounds),
        bench_redacting_processor(args.rounds),
    ]
    print(f"{sum(results)}/{len(results)} targets hold")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
