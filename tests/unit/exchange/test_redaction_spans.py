"""Span redaction: in place on the thread that ends the span, every kind of value."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_botmon.redaction import (
    REDACTED,
    RedactingSpanProcessor,
    attributes_are_clean,
    redact_attributes,
    redact_span,
    register_secret,
)

SIGNED = "https://api.binance.com/api/v3/order?symbol=BTCUSDT&timestamp=1&signature=ab12cd34"
REDACTED_URL = "https://api.binance.com/api/v3/order?symbol=BTCUSDT&timestamp=1&signature=" \
    + REDACTED


class Keeping(SpanProcessor):
    """A processor that keeps the spans it is given (as a batch processor's queue does)."""

    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def on_end(self, span: ReadableSpan) -> None:
        self.spans.append(span)


def test_the_processor_redacts_the_finished_span_itself() -> None:
    before = Keeping()  # registered ahead of the redacting processor
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(before)
    provider.add_span_processor(RedactingSpanProcessor(SimpleSpanProcessor(exporter)))
    provider.get_tracer("t").start_span("POST", attributes={
        "url.full": SIGNED, "http.request.header.x_mbx_apikey": ("k" * 64,),
        "server.port": 443,
    }).end()

    (exported,) = exporter.get_finished_spans()
    assert exported is before.spans[0]  # no copy: what anyone holds is redacted too
    assert dict(exported.attributes or {}) == {
        "url.full": REDACTED_URL, "http.request.header.x_mbx_apikey": (REDACTED,),
        "server.port": 443,
    }


def test_redact_span_without_in_place_leaves_the_span_as_it_was() -> None:
    kept = Keeping()
    provider = TracerProvider()
    provider.add_span_processor(kept)
    provider.get_tracer("t").start_span("GET", attributes={"url.full": SIGNED}).end()
    (span,) = kept.spans
    copy = redact_span(span)
    assert copy is not span
    assert (copy.attributes or {})["url.full"] == REDACTED_URL
    assert (span.attributes or {})["url.full"] == SIGNED


@pytest.mark.parametrize(("value", "expected"), [
    (b"GET /p?token=abc", b"GET /p?token=" + REDACTED.encode()),
    (("ok", "token=abc"), ("ok", "token=" + REDACTED)),
    ((1, "token=abc"), (1, "token=" + REDACTED)),
    ({"api_key": "k", "n": 1, "inner": {"note": "token=abc"}},
     {"api_key": REDACTED, "n": 1, "inner": {"note": "token=" + REDACTED}}),
])
def test_bytes_sequences_and_mappings_are_redacted_inside(value: Any, expected: Any) -> None:
    assert redact_attributes({"detail": value}) == {"detail": expected}
    assert not attributes_are_clean({"detail": value})
    assert attributes_are_clean({"detail": expected})


def test_a_registered_secret_is_found_in_a_value_seen_clean_before() -> None:
    text = "order placed by bot-7f3a9c2e1d"
    assert attributes_are_clean({"note": text})  # remembered as clean ...
    register_secret("bot-7f3a9c2e1d")  # ... until a secret is registered
    assert redact_attributes({"note": text}) == {"note": "order placed by " + REDACTED}


@pytest.mark.parametrize("in_place", [False, True])
@pytest.mark.parametrize("event_first", [False, True])  # redaction's common and full paths
def test_redaction_keeps_the_counts_of_what_the_span_dropped(
    in_place: bool, event_first: bool
) -> None:
    from opentelemetry.sdk.trace import SpanLimits

    kept = Keeping()
    provider = TracerProvider(span_limits=SpanLimits(
        max_span_attributes=2, max_events=1, max_event_attributes=1))
    provider.add_span_processor(kept)
    span = provider.get_tracer("t").start_span(
        "GET", attributes={"a": 1, "b": 2, "url.full": SIGNED})
    if event_first:
        span.add_event("sent", {"x": 1})
        span.add_event("refused", {"a": 1, "url.full": SIGNED})
    span.end()
    (original,) = kept.spans

    redacted = redact_span(original, in_place=in_place)

    assert (redacted.attributes or {})["url.full"] == REDACTED_URL
    assert redacted.dropped_attributes == 1
    if event_first:
        (event,) = redacted.events
        assert (event.attributes or {})["url.full"] == REDACTED_URL
        assert (redacted.dropped_events, event.dropped_attributes) == (1, 1)
