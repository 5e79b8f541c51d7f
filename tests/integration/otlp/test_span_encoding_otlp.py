"""Through a real collector, the compact span path exports what the SDK's exporter does.

One pipeline (``configure()`` with an OTLP/HTTP endpoint: compact tuples, otel_botmon's
encoder and transport) and, beside it on the same tracer provider, the SDK's own
``OTLPSpanExporter`` behind a ``SimpleSpanProcessor``, both sending to rotel, which
forwards to a receiver. Every generated span therefore arrives twice; both copies, with
their resource and scope, must be the same protobuf bytes.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from opentelemetry import trace as trace_api
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.span import TraceState

from otel_botmon import telemetry
from tests.otlp_receiver import OtlpReceiver, RotelCollector

pytestmark = pytest.mark.integration

_runs = itertools.count()

# Values of every kind an attribute may hold, with the awkward ones: NaN, infinities,
# -0.0, ints past int64 (neither encoder can send them), bytes, lists with None and
# mixed types, text outside the BMP and control characters.
_scalars = st.one_of(
    st.text(max_size=12), st.booleans(), st.integers(-(2**64), 2**64),
    st.floats(), st.sampled_from([-0.0, math.nan, math.inf, -math.inf, 2**63 - 1, -(2**63)]),
    st.binary(max_size=6),
    st.sampled_from(["\U0001f680", "\x00", "a\u2028b", "é" * 40, "lone \ud800"]),
)
_values = st.one_of(
    _scalars,
    st.lists(st.one_of(st.none(), st.text(max_size=4)), max_size=3),
    st.lists(st.integers(-(2**63), 2**63 - 1), max_size=3).map(tuple),
    st.lists(st.floats(), max_size=3),
    st.lists(st.booleans(), max_size=3),
)
_attributes = st.dictionaries(st.text(max_size=8), _values, max_size=6)
_ids = st.integers(1, 2**64 - 1)
_trace_states = st.lists(
    st.tuples(st.from_regex(r"\A[a-z][a-z0-9]{0,5}\Z"), st.from_regex(r"\A[a-z0-9]{1,5}\Z")),
    max_size=2, unique_by=lambda kv: kv[0],
).map(TraceState)
_contexts = st.builds(
    SpanContext, trace_id=st.integers(1, 2**128 - 1), span_id=_ids, is_remote=st.booleans(),
    trace_flags=st.just(TraceFlags(TraceFlags.SAMPLED)), trace_state=_trace_states,
)


class _Failed(Exception):
    pass


def _exception() -> BaseException:
    try:
        try:
            raise KeyError("inner")
        except KeyError as inner:
            error = _Failed("outer, with a cause")
            error.add_note("a note")
            raise error from inner
    except _Failed as caught:
        return caught


@st.composite
def _span_plans(draw: st.DrawFn) -> dict[str, Any]:
    start = draw(st.one_of(st.none(), st.integers(1, 2**62)))
    return {
        "name": draw(st.text(st.characters(exclude_categories=["Cs"]), max_size=12)),
        "kind": draw(st.sampled_from(list(SpanKind))),
        "parent": draw(st.one_of(st.none(), _contexts)),
        "attributes": draw(_attributes),
        "set_later": draw(_attributes),
        "events": draw(st.lists(st.tuples(st.text(max_size=6), _attributes,
                                          st.one_of(st.none(), st.integers(1, 2**62))),
                                max_size=3)),
        "exception": draw(st.booleans()),
        "links": draw(st.lists(st.tuples(_contexts, _attributes), max_size=2)),
        "status": draw(st.sampled_from([None, StatusCode.OK, StatusCode.ERROR])),
        "description": draw(st.one_of(st.none(), st.text(max_size=10))),
        "start": start,
        "end": None if start is None else start + draw(st.integers(0, 2**40)),
        "children": draw(st.integers(0, 2)),
    }


def _play(tracer: Any, plan: dict[str, Any]) -> list[Any]:
    """Make the planned span (and its children); the spans made."""
    parent = plan["parent"]
    context = None if parent is None else trace_api.set_span_in_context(
        trace_api.NonRecordingSpan(parent))
    span = tracer.start_span(
        plan["name"], context=context, kind=plan["kind"], attributes=plan["attributes"],
        links=[Link(c, a) for c, a in plan["links"]], start_time=plan["start"])
    made = [span]
    span.set_attributes(plan["set_later"])
    for name, attributes, timestamp in plan["events"]:
        span.add_event(name, attributes, timestamp)
    if plan["exception"]:
        span.record_exception(_exception(), {"extra": 1})
    if plan["status"] is not None:
        span.set_status(Status(plan["status"], plan["description"]))
    with trace_api.use_span(span, end_on_exit=False):
        for i in range(plan["children"]):
            child = tracer.start_span(f"child {i}")
            child.end()
            made.append(child)
    span.end(plan["end"])
    return made


def _copies(receiver: OtlpReceiver, service: str) -> dict[tuple[bytes, bytes], list[bytes]]:
    """Each received span of ``service`` by (trace id, span id): its encodings with
    resource, scope and schema URLs, one per copy received."""
    found: dict[tuple[bytes, bytes], list[bytes]] = {}
    for request in list(receiver.trace_requests):
        for rs in request.resource_spans:
            if not any(kv.key == "service.name" and kv.value.string_value == service
                       for kv in rs.resource.attributes):
                continue
            head = (rs.resource.SerializeToString(deterministic=True)
                    + rs.schema_url.encode())
            for ss in rs.scope_spans:
                scope = ss.scope.SerializeToString(deterministic=True) + ss.schema_url.encode()
                for span in ss.spans:
                    found.setdefault((span.trace_id, span.span_id), []).append(
                        head + b"|" + scope + b"|" + span.SerializeToString(deterministic=True))
    return found


_LIMITS = {  # small, so that spans drop attributes, events, links and their attributes
    "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT": "5", "OTEL_SPAN_EVENT_COUNT_LIMIT": "2",
    "OTEL_SPAN_LINK_COUNT_LIMIT": "1", "OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT": "2",
    "OTEL_LINK_ATTRIBUTE_COUNT_LIMIT": "2", "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT": "30",
}


@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(plans=st.lists(_span_plans(), min_size=1, max_size=6),
       scope_attributes=st.one_of(st.none(), _attributes), limited=st.booleans())
@example(plans=[{
    "name": "all of it", "kind": SpanKind.CLIENT,
    "parent": SpanContext(7, 9, True, TraceFlags(TraceFlags.SAMPLED), TraceState([("k", "v")])),
    "attributes": {"nan": math.nan, "neg0": -0.0, "big": 2**64, "b": b"\x00", "l": [None, "x"]},
    "set_later": {"u": "\U0001f680"}, "events": [("e", {"i": 1}, 5)], "exception": True,
    "links": [(SpanContext(3, 4, False, TraceFlags(TraceFlags.SAMPLED)), {"a": True})],
    "status": StatusCode.ERROR, "description": "why", "start": 10, "end": 20, "children": 2,
}], scope_attributes={"scope.attr": 1}, limited=True)
def test_the_compact_span_path_exports_what_the_sdk_exporter_does(
    collector: tuple[OtlpReceiver, RotelCollector], plans: list[dict[str, Any]],
    scope_attributes: dict[str, Any] | None, limited: bool, monkeypatch: pytest.MonkeyPatch,
) -> None:
    receiver, rotel = collector
    for name, value in _LIMITS.items():
        if limited:
            monkeypatch.setenv(name, value)
        else:
            monkeypatch.delenv(name, raising=False)
    service = f"spans-{next(_runs)}"
    sdk_exporter = OTLPSpanExporter(endpoint=f"{rotel.http_endpoint}/v1/traces")
    tel = telemetry.configure(service, otlp_endpoint=rotel.http_endpoint, set_global=False,
                              span_processors=[SimpleSpanProcessor(sdk_exporter)])
    try:
        tracer = tel.tracer_provider.get_tracer(
            "attack.scope", "1.2.3", schema_url="https://example.com/schema/1",
            attributes=scope_attributes)
        made = [span for plan in plans for span in _play(tracer, plan)]
        assert tel.force_flush(10.0)
    finally:
        telemetry.shutdown()
    expected = {(c.trace_id.to_bytes(16, "big"), c.span_id.to_bytes(8, "big"))
                for c in (span.get_span_context() for span in made) if c.trace_flags.sampled}
    receiver.wait_for(lambda r: {k: len(v) for k, v in _copies(r, service).items()}
                      == dict.fromkeys(expected, 2))
    for key, (first, second) in _copies(receiver, service).items():
        assert first == second, key


_SECRET = "Xk3vmPUZE6mv9SD5VNHk4HlWFsOr6aKE"
_SIGNED = f"https://api.example.com/api/v3/order?symbol=BTCUSDT&signature={_SECRET}"


def _counts(receiver: OtlpReceiver, service: str) -> list[tuple[Any, ...]]:
    return [(span.dropped_attributes_count, span.dropped_events_count,
             span.dropped_links_count, [e.dropped_attributes_count for e in span.events])
            for resource, _, span in receiver.spans() if resource.get("service.name") == service]


def test_redacted_spans_keep_the_dropped_counts_the_sdk_exports(
    collector: tuple[OtlpReceiver, RotelCollector], monkeypatch: pytest.MonkeyPatch,
) -> None:
    receiver, rotel = collector
    for name, value in (("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "3"),
                        ("OTEL_SPAN_EVENT_COUNT_LIMIT", "1"),
                        ("OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT", "2")):
        monkeypatch.setenv(name, value)

    def make(provider: Any) -> None:
        span = provider.get_tracer("orders").start_span(
            "order", attributes={"a": 1, "b": 2, "api_key": _SECRET, "d": 4, "e": 5})
        span.add_event("sent", {"x": 1})
        span.add_event("refused", {"a": 1, "b": 2, "url": _SIGNED})
        span.end()

    service = f"redacted-{next(_runs)}"
    tel = telemetry.configure(service, otlp_endpoint=rotel.http_endpoint, set_global=False)
    try:
        make(tel.tracer_provider)
        assert tel.force_flush(10.0)
    finally:
        telemetry.shutdown()
    plain = TracerProvider(resource=Resource({"service.name": f"{service}-sdk"}))
    plain.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{rotel.http_endpoint}/v1/traces")))
    make(plain)
    plain.shutdown()
    receiver.wait_for(lambda r: len(_counts(r, service)) == len(_counts(r, f"{service}-sdk")) == 1)
    assert _counts(receiver, service) == _counts(receiver, f"{service}-sdk") == [(2, 1, 0, [1])]
    [(_, _, span)] = [s for s in receiver.spans() if s[0].get("service.name") == service]
    assert _SECRET not in str(span)
