"""Redaction cost: linear in the input, bounded per span, cheap with and without secrets.

Figures (issues 13 and 16), each a ratio against a baseline in the same process,
measured in interleaved rounds by bench/_harness.py:

- ``redaction.linear.<kind>``: ``redact_text`` of a 1 MB adversarial string / of a 1 KB
  one of the same kind (hex run, ``a:`` x n, ``=`` x n, ``token=`` x n), the 1 KB ones
  distinct so that no cache serves them. Target <= 1,500 (linear, with the cut).
- ``redaction.exception_20kb``: a span ending with a 20 KB exception message / the same
  span with a 1 KB message, through ``configure()``'s redacting pipeline
  (``@exchange_call`` raising a revert message full of hex calldata). Target <= 2.
- ``redaction.processor.signed_url``: an HTTP client span carrying a signed URL (six
  endpoints in turn, a fresh timestamp and signature per call) and the API-key header
  the contrib instrumentations capture (``http.request.header.x_mbx_apikey``) through
  ``RedactingSpanProcessor`` / the same span through the bare processor, with the API
  key and secret registered (``register_secret``, as the README asks and
  ``instrument_ccxt`` does), so every kept URL is also searched for them. Target <= 1.3.
- ``redaction.processor.public_url``: the same with unsigned market-data URLs (no
  secret). Target <= 1.15.
- ``redaction.processor.no_secret``: a trade-like span (symbol, side, type, quantity,
  price, outcome; no secret) through ``RedactingSpanProcessor`` / bare. Target <= 1.15.
- ``redaction.exporter.signed_url``: the signed-URL span (key and secret registered)
  through configure()'s OTLP pipeline,
  ``BatchSpanProcessor(RedactingSpanExporter(x))`` / ``BatchSpanProcessor(x)``: time on
  the bot's thread (redaction runs on the batch thread). Target <= 1.3.

The processors deliver to an exporter that drops the spans, so the baseline is the
SDK's own span cost with nothing slowed down.

Run: python bench/bench_redaction.py [--repeat 3] [--quick] [--only processor] [--clock cpu]
"""

from __future__ import annotations

import secrets
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

from bench._common import (
    API_KEY,
    API_KEY_HEADER,
    API_SECRET,
    DropExporter,
    http_client_span,
    provider_with,
    public_requests,
    registered_secrets,
    signed_requests,
    trade_span,
)
from bench._harness import Bench
from otel_botmon import telemetry
from otel_botmon.instrument.exchange import exchange_call
from otel_botmon.redaction import RedactingSpanExporter, RedactingSpanProcessor, redact_text

ADVERSARIAL = {"hex": "0123456789abcdef", "a_colon": "a:", "equals": "=",
               "token_eq": "token="}


def linear_pair(unit: str) -> tuple[Callable[[], object], Callable[[], object]]:
    """(redact a 1 MB string, redact one of 4,096 distinct 1 KB strings) of one kind."""
    big = (unit * (1_048_576 // len(unit) + 1))[:1_048_576]
    small = (unit * (1024 // len(unit) + 1))[:1024]
    # distinct strings each call: the small-text cache must not serve the baseline
    smalls = [small[:-8] + f"{i:08d}" for i in range(4096)]
    counter = iter(range(10**12))

    def one_big() -> None:
        redact_text(big)

    def one_small() -> None:
        redact_text(smalls[next(counter) % 4096])

    return one_big, one_small


def bench_linear(bench: Bench) -> None:
    for kind, unit in ADVERSARIAL.items():
        one_big, one_small = linear_pair(unit)
        bench.ratio(f"redaction.linear.{kind}", one_big, one_small, target=1500,
                    calls=3, baseline_calls=60, rounds=15,
                    workload=f"redact_text of 1 MB of {unit!r} x n / of a distinct 1 KB one")


def bench_exception_span(bench: Bench) -> None:
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

        bench.ratio("redaction.exception_20kb", failing(20_000), failing(1_000), target=2.0,
                    calls=300, workload="@exchange_call raising a revert message of 20 KB "
                    "of hex / of 1 KB, configure()'s redacting span pipeline")
    finally:
        tel.shutdown()


def bench_processor(bench: Bench) -> None:
    def pair(make: Callable[..., Callable[[], None]], *args: object
             ) -> tuple[Callable[[], None], Callable[[], None]]:
        redacting = provider_with(RedactingSpanProcessor(SimpleSpanProcessor(DropExporter())))
        plain = provider_with(SimpleSpanProcessor(DropExporter()))
        return make(redacting, *args), make(plain, *args)

    with registered_secrets(API_KEY, API_SECRET):
        bench.ratio("redaction.processor.signed_url",
                    *pair(http_client_span, signed_requests(), API_KEY_HEADER),
                    target=1.3, calls=2000, workload=(
                        "HTTP client span with a signed Binance URL (6 endpoints in turn, "
                        "fresh timestamp+signature each) and the captured X-MBX-APIKEY "
                        "header, API key and secret registered, "
                        "RedactingSpanProcessor(Simple(drop)) / Simple(drop)"))
    bench.ratio("redaction.processor.public_url", *pair(http_client_span, public_requests()),
                target=1.15, calls=2000, workload=(
                    "HTTP client span with an unsigned market-data URL (5 in turn, no "
                    "secret), RedactingSpanProcessor(Simple(drop)) / Simple(drop)"))
    bench.ratio("redaction.processor.no_secret", *pair(trade_span), target=1.15, calls=2000,
                workload="trade-like span, 6 attributes, fresh price each, no secret, "
                         "RedactingSpanProcessor(Simple(drop)) / Simple(drop)")


def bench_exporter(bench: Bench) -> None:
    # configure()'s OTLP pipeline: the batch processor's thread redacts, not the bot's.
    redacting = provider_with(BatchSpanProcessor(RedactingSpanExporter(DropExporter())))
    plain = provider_with(BatchSpanProcessor(DropExporter()))
    try:
        requests = signed_requests()
        with registered_secrets(API_KEY, API_SECRET):
            bench.ratio("redaction.exporter.signed_url",
                        http_client_span(redacting, requests, API_KEY_HEADER),
                        http_client_span(plain, requests, API_KEY_HEADER), target=1.3,
                        calls=2000, workload=(
                            "signed-URL span, key and secret registered, "
                            "Batch(RedactingSpanExporter(drop)) / Batch(drop): time on the "
                            "bot's thread (redaction on the batch thread)"))
    finally:
        redacting.shutdown()
        plain.shutdown()


def main() -> int:
    bench = Bench("redaction", __doc__)
    bench_linear(bench)
    bench_exception_span(bench)
    bench_processor(bench)
    bench_exporter(bench)
    return bench.finish()


if __name__ == "__main__":
    sys.exit(main())
