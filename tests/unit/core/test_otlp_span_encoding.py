"""Spans encoded straight to OTLP bytes: the same request as the SDK's encoder, and the
compact tuples the batch processor keeps carry everything that request needs."""

from __future__ import annotations

import gc
from collections.abc import Sequence
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.exporter.otlp.proto.common.trace_encoder import (
    encode_spans as sdk_encode_spans,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.util import BoundedList
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import (
    Link,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
)

from otel_botmon import redaction
from otel_botmon.exporters.compact_spans import (
    CompactEndedSpans,
    EncodeCompactSpans,
    EncodedSpans,
    compact,
)
from otel_botmon.exporters.otlp_spans import encode_spans

# --- strategies -------------------------------------------------------------------------

keys = st.text(max_size=12)
scalars = st.one_of(
    st.text(max_size=20), st.booleans(), st.integers(-(2**64), 2**64),
    st.floats(allow_nan=False), st.binary(max_size=8),
)
values = st.one_of(
    scalars,
    st.lists(st.one_of(st.text(max_size=5), st.integers(-5, 5)), max_size=3).map(tuple),
    st.dictionaries(st.text(max_size=4), st.integers(-3, 3), max_size=2),
)
attribute_maps = st.dictionaries(keys, values, max_size=6)
ids = st.integers(1, 2**64 - 1)
contexts = st.builds(
    SpanContext, trace_id=st.integers(1, 2**128 - 1), span_id=ids, is_remote=st.booleans(),
    trace_flags=st.just(TraceFlags(TraceFlags.SAMPLED)),
    trace_state=st.lists(
        st.tuples(st.from_regex(r"\A[a-z][a-z0-9]{0,5}\Z"),
                  st.from_regex(r"\A[a-z0-9]{1,5}\Z")), max_size=2, unique_by=lambda kv: kv[0],
    ).map(TraceState),
)
resources = st.sampled_from([
    Resource({"service.name": "bot", "host": "a"}),
    Resource({"service.name": "bot", "host": "a"}),  # equal to the first, another object
    Resource({"service.name": "other"}, schema_url="https://x/1"),
])
scopes = st.sampled_from([
    None,
    InstrumentationScope("a", "1.0"),
    InstrumentationScope("a", "1.0", attributes={"k": "v"}),  # equal to the one above
    InstrumentationScope("b", None, "https://s/2"),
])
times = st.one_of(st.none(), st.integers(0, 2**63))


def _bounded_attributes(items: dict[str, Any], limit: int | None) -> Any:
    if limit is None:
        return items
    return BoundedAttributes(maxlen=limit, attributes=items, immutable=True)


def _bounded_list(items: list[Any], limit: int | None) -> Any:
    if limit is None:
        return items
    return BoundedList.from_seq(limit, items)


@st.composite
def spans(draw: Any) -> ReadableSpan:
    limit = draw(st.one_of(st.none(), st.integers(0, 3)))
    events = [Event(draw(st.text(max_size=8)), draw(attribute_maps), draw(times) or 1)
              for _ in range(draw(st.integers(0, 2)))]
    links = [Link(draw(contexts), draw(attribute_maps)) for _ in range(draw(st.integers(0, 2)))]
    code = draw(st.sampled_from(list(StatusCode)))
    description = draw(st.one_of(st.none(), st.text(max_size=10)))
    return ReadableSpan(
        name=draw(st.text(max_size=15)), context=draw(contexts),
        parent=draw(st.one_of(st.none(), contexts)), resource=draw(resources),
        attributes=_bounded_attributes(draw(attribute_maps), limit),
        events=_bounded_list(events, limit), links=_bounded_list(links, limit),
        kind=draw(st.sampled_from(list(SpanKind))),
        status=Status(code, description if code is StatusCode.ERROR else None),
        start_time=draw(times), end_time=draw(times),
        instrumentation_scope=draw(scopes),
    )


batches = st.lists(spans(), max_size=6)
common = settings(max_examples=150, deadline=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


class Collect(SpanExporter):
    def __init__(self) -> None:
        self.batches: list[Any] = []

    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        self.batches.append(spans)
        return SpanExportResult.SUCCESS


def _through_compact(batch: list[ReadableSpan]) -> EncodedSpans:
    collect = Collect()
    EncodeCompactSpans(collect).export([compact(span) for span in batch])  # type: ignore[misc]
    [encoded] = collect.batches
    assert isinstance(encoded, EncodedSpans)
    return encoded


# --- the encoder ------------------------------------------------------------------------


@common
@given(batches)
def test_the_request_bytes_are_the_sdk_encoders(batch: list[ReadableSpan]) -> None:
    assert encode_spans(batch) == sdk_encode_spans(batch).SerializeToString()


@common
@given(batches)
def test_compact_tuples_encode_to_the_same_request(batch: list[ReadableSpan]) -> None:
    """Everything the request carries survives compact(): ids, parent, kind, times,
    attributes, events, links, status, resource, scope and the dropped counts."""
    encoded = _through_compact(batch)
    expected = sdk_encode_spans([redaction.redact_span(span) for span in batch])
    assert encoded.data == expected.SerializeToString()
    assert len(encoded) == len(batch)


@common
@given(batches)
def test_spans_seen_before_encode_to_the_same_request(batch: list[ReadableSpan]) -> None:
    """The second time, names and values are known clean and most spans take the
    encoder's branch that skips rebuilding the span for redaction: the same bytes."""
    _through_compact(batch)
    again = _through_compact(batch)
    expected = sdk_encode_spans([redaction.redact_span(span) for span in batch])
    assert again.data == expected.SerializeToString()


def _sibling(span: ReadableSpan, draw: Any) -> ReadableSpan:
    """``span`` with other ids, parent, times and floats, and maybe one other value (a
    text, or a float turned int): a span of the same layout, or one that just misses it."""
    attributes = dict(span.attributes or {})
    for key, value in attributes.items():
        if type(value) is float:
            attributes[key] = draw(st.floats(allow_nan=False))
    change = draw(st.sampled_from(["none", "text", "int"]))
    if change != "none" and attributes:
        key = draw(st.sampled_from(sorted(attributes)))
        attributes[key] = draw(st.text(max_size=6)) if change == "text" else 7
    return ReadableSpan(
        name=span.name, context=draw(contexts), parent=draw(st.one_of(st.none(), contexts)),
        resource=span.resource, attributes=attributes, events=span.events, links=span.links,
        kind=span.kind, status=span.status, start_time=draw(times), end_time=draw(times),
        instrumentation_scope=span.instrumentation_scope,
    )


@common
@given(batches, st.data())
def test_spans_of_a_known_layout_encode_to_the_same_request(
    batch: list[ReadableSpan], data: Any
) -> None:
    """Spans alike but for their ids, parent, times and floats take a layout learned from
    the first batch (only those are encoded); one value or type off takes the general
    path. Either way, the SDK encoder's bytes."""
    _through_compact(batch)
    _through_compact(batch)
    siblings = [_sibling(span, data.draw) for span in batch for _ in range(2)]
    expected = sdk_encode_spans([redaction.redact_span(span) for span in siblings])
    assert _through_compact(siblings).data == expected.SerializeToString()


def test_a_secret_registered_after_its_layout_was_learned_is_redacted() -> None:
    def span(price: float) -> ReadableSpan:
        return ReadableSpan(
            name="trade BTCUSDT", context=SpanContext(7, 8, False),
            resource=Resource({}), start_time=1, end_time=2,
            attributes={"trading.symbol": "BTCUSDT", "note": "tok-9f8e7d6c5b4a", "p": price})

    for price in (1.5, 2.5, 3.5):  # learned, then encoded from the layout
        assert b"tok-9f8e7d6c5b4a" in _through_compact([span(price)]).data
    redaction.register_secret("tok-9f8e7d6c5b4a")
    try:
        data = _through_compact([span(4.5), span(5.5)]).data
    finally:
        redaction.forget_secrets()
    assert b"tok-9f8e7d6c5b4a" not in data
    assert b"BTCUSDT" in data


def test_a_secret_in_a_span_seen_before_is_still_redacted() -> None:
    def span(note: str) -> ReadableSpan:
        return ReadableSpan(
            name="trade BTCUSDT", context=SpanContext(7, 8, False),
            resource=Resource({}), start_time=1, end_time=2,
            attributes={"trading.symbol": "BTCUSDT", "trading.price": 1.5, "note": note})

    _through_compact([span("plain"), span("plain")])  # names and values now known clean
    data = _through_compact([span("retry with api_key=abcdef0123456789")]).data
    assert b"abcdef0123456789" not in data
    # a header list holds no '=', ':' or '%': its (name, value) pairs are still looked at
    data = _through_compact([span("[('X-MBX-APIKEY', 'abcdef0123456789')]")]).data
    assert b"abcdef0123456789" not in data
    redaction.register_secret("s3cr3t-value")
    try:
        data = _through_compact([span("s3cr3t-value")]).data
    finally:
        redaction.forget_secrets()
    assert b"s3cr3t-value" not in data


def test_dropped_counts_are_encoded() -> None:
    context = SpanContext(7, 8, False, TraceFlags(TraceFlags.SAMPLED))
    span = ReadableSpan(
        name="t", context=context, resource=Resource({}),
        attributes=BoundedAttributes(maxlen=1, attributes={"a": 1, "b": 2}, immutable=True),
        events=BoundedList.from_seq(1, [Event("e1", {}, 1), Event("e2", {}, 2)]),
        links=BoundedList.from_seq(0, [Link(context)]),
        start_time=1, end_time=2,
    )
    for data in (encode_spans([span]), _through_compact([span]).data):
        [sent] = ExportTraceServiceRequest.FromString(data).resource_spans[0].scope_spans[0].spans
        assert (sent.dropped_attributes_count, sent.dropped_events_count,
                sent.dropped_links_count) == (1, 1, 1)
        assert [e.name for e in sent.events] == ["e2"]


def test_an_attribute_that_cannot_be_encoded_is_skipped_like_the_sdk() -> None:
    span = ReadableSpan(
        name="t", context=SpanContext(7, 8, False), resource=Resource({}),
        attributes={"ok": 1, "too_big": 2**70, "after": "x"}, start_time=1, end_time=2,
    )
    assert encode_spans([span]) == sdk_encode_spans([span]).SerializeToString()
    [sent] = ExportTraceServiceRequest.FromString(encode_spans([span])).resource_spans[0] \
        .scope_spans[0].spans
    assert [kv.key for kv in sent.attributes] == ["ok", "after"]


# --- redaction and the batch processor ---------------------------------------------------


def test_compact_spans_are_redacted_before_encoding() -> None:
    url = "https://api.example/v3/order?symbol=BTCUSDT&signature=abcdef0123456789"
    span = ReadableSpan(
        name="trade", context=SpanContext(7, 8, False, TraceFlags(TraceFlags.SAMPLED)),
        resource=Resource({}), attributes={"http.url": url},
        events=[Event("exception", {"exception.message": f"failed: {url}"}, 3)],
        status=Status(StatusCode.ERROR, f"failed: {url}"), start_time=1, end_time=2,
    )
    data = _through_compact([span]).data
    assert b"abcdef0123456789" not in data
    assert data == sdk_encode_spans([redaction.redact_span(span)]).SerializeToString()


def test_a_span_that_cannot_be_redacted_is_dropped(monkeypatch: Any) -> None:
    def fail(span: ReadableSpan) -> ReadableSpan:
        if span.name == "bad":
            raise RuntimeError("redaction bug")
        return span

    monkeypatch.setattr(redaction, "redact_span", fail)
    good, bad = (ReadableSpan(name=name, context=SpanContext(7, i, False),
                              resource=Resource({}), start_time=1, end_time=2)
                 for i, name in ((1, "good"), (2, "bad")))
    encoded = _through_compact([good, bad])
    assert len(encoded) == 1
    assert encoded.data == sdk_encode_spans([good]).SerializeToString()


@common
@given(batches)
def test_a_redaction_that_reads_the_whole_span_gets_it(batch: list[ReadableSpan]) -> None:
    """Redaction sees a ReadableSpan with the queued span's fields, not only the four it
    reads today (name, attributes, events, status)."""
    seen: list[tuple[Any, ...]] = []

    def reads_everything(span: ReadableSpan) -> ReadableSpan:
        context = span.get_span_context()
        assert context is not None
        seen.append((context.trace_id, context.span_id, span.parent, span.kind,
                     span.start_time, span.end_time, span.links, span.resource,
                     span.instrumentation_scope))
        return span

    original = redaction.redact_span
    redaction.redact_span = reads_everything  # type: ignore[assignment]
    try:
        encoded = _through_compact(batch)
    finally:
        redaction.redact_span = original  # type: ignore[assignment]
    assert encoded.data == sdk_encode_spans(batch).SerializeToString()
    assert seen == [(s.context.trace_id, s.context.span_id, s.parent, s.kind, s.start_time,
                     s.end_time, tuple(s.links), s.resource, s.instrumentation_scope)
                    for s in batch]


def test_queued_spans_keep_one_tracked_object_each() -> None:
    """What waits in the batch queue costs the garbage collector one object per span, not
    the dozen a ReadableSpan keeps (its context, flags, attributes, lists and locks)."""
    collect = Collect()
    batch = BatchSpanProcessor(
        EncodeCompactSpans(collect), max_queue_size=10_000, max_export_batch_size=10_000,
        schedule_delay_millis=600_000)
    provider = TracerProvider()
    provider.add_span_processor(CompactEndedSpans(batch))
    tracer = provider.get_tracer("t")

    def trade() -> None:
        with tracer.start_as_current_span("trade", attributes={"s": "BTCUSDT", "q": 0.25}):
            pass

    trade()
    gc.collect()
    before = len(gc.get_objects())
    for _ in range(1_000):
        trade()
    gc.collect()
    assert len(gc.get_objects()) - before <= 1_100
    provider.force_flush()
    assert sum(len(b) for b in collect.batches) == 1_001
    provider.shutdown()


def test_unsampled_spans_are_not_queued() -> None:
    collect = Collect()
    processor = CompactEndedSpans(BatchSpanProcessor(EncodeCompactSpans(collect)))
    processor.on_end(ReadableSpan(name="x", context=SpanContext(7, 8, False),
                                  resource=Resource({})))
    processor.force_flush()
    assert collect.batches == []
    processor.shutdown()


# --- the transport ----------------------------------------------------------------------


def test_plain_http_without_a_proxy_uses_the_lean_transport(monkeypatch: Any) -> None:
    from otel_botmon.exporters.lean_http import LeanHTTPTransport
    from otel_botmon.exporters.otlp_http import lean_transport

    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NETRC", "/nonexistent/netrc")
    assert isinstance(lean_transport("http://127.0.0.1:4318/v1/traces"), LeanHTTPTransport)
    assert lean_transport("https://collector.example:4318/v1/traces") is None
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:3128")
    assert lean_transport("http://collector.example:4318/v1/traces") is None  # requests' proxy
    monkeypatch.setenv("NO_PROXY", "collector.example")
    assert isinstance(lean_transport("http://collector.example:4318/v1/traces"),
                      LeanHTTPTransport)
    monkeypatch.setenv("OTEL_PYTHON_EXPORTER_OTLP_HTTP_TRACES_CREDENTIAL_PROVIDER", "x")
    assert lean_transport("http://collector.example:4318/v1/traces") is None
