"""Overhead of exchange-call instrumentation and the httpx hooks.

Figures (each a ratio against a baseline in the same process, interleaved rounds by
bench/_harness.py):

- ``exchange.exchange_call``: ``@exchange_call`` (span + duration histogram + request
  counter, 3 attributes) against hand-written OpenTelemetry code doing the same on the
  same SDK providers. Target <= 1.10.
- ``exchange.httpx``: ``instrument_httpx(client)`` (contrib span + redaction hooks +
  metrics wrapper + rate-limit headers) against the contrib instrumentation alone, per
  request through an in-process transport. It records three measurements more than the
  contrib (request count, duration, rate-limit gauge). Target <= 1.50.

The redacting span processor's figures (with and without secrets) are in
bench_redaction.py.

Run: python bench/bench_exchange.py [--repeat 3] [--quick]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind

from bench._common import DropExporter
from bench._harness import Bench
from otel_botmon import conventions as conv
from otel_botmon import telemetry
from otel_botmon.instrument.exchange import exchange_call
from otel_botmon.instrument.httpx import instrument_httpx, uninstrument_httpx


def bench_exchange_call(bench: Bench) -> None:
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
        bench.ratio("exchange.exchange_call", decorated, hand_written, target=1.10,
                    calls=2000, workload="@exchange_call returning a 200 response / "
                    "hand-written span (current, error-recording) + duration + count, "
                    "same providers, spans dropped")
    finally:
        tel.shutdown()


def bench_httpx(bench: Bench) -> None:
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
        bench.ratio("exchange.httpx", lambda: ours.get(url), lambda: contrib_only.get(url),
                    target=1.50, calls=200, workload="GET of a signed Binance URL through "
                    "httpx.MockTransport: instrument_httpx / contrib HTTPX instrumentation "
                    "alone")
    finally:
        uninstrument_httpx()
        HTTPXClientInstrumentor.uninstrument_client(contrib_only)
        tel.shutdown()


def main() -> int:
    bench = Bench("exchange", __doc__)
    bench_exchange_call(bench)
    bench_httpx(bench)
    return bench.finish()


if __name__ == "__main__":
    sys.exit(main())
