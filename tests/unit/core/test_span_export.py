"""OTLP/HTTP spans on one thread: batched, redacted, encoded and posted by the same
thread; the bot never waits on the network; flush and shutdown are bounded."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.common.trace_encoder import (
    encode_spans as sdk_encode_spans,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from otel_botmon import redaction
from otel_botmon.exporters.compact_spans import EncodeCompactSpans, EncodedSpans, compact
from otel_botmon.exporters.span_export import CompactSpanExport
from tests.services import wait_until


class Collect(SpanExporter):
    """Keeps each request; with ``gate`` cleared, blocks like an endpoint that never answers."""

    def __init__(self) -> None:
        self.requests: list[EncodedSpans] = []
        self.threads: set[str] = set()
        self.gate = threading.Event()
        self.gate.set()
        self.calls = 0
        self.closed = threading.Event()

    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        self.calls += 1
        self.threads.add(threading.current_thread().name)
        self.gate.wait(10)
        assert isinstance(spans, EncodedSpans)
        self.requests.append(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.closed.set()
        self.gate.set()


def _pipeline(collect: Collect, **kwargs: Any) -> tuple[TracerProvider, CompactSpanExport]:
    processor = CompactSpanExport(collect, **kwargs)
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(processor)
    return provider, processor


def test_spans_are_redacted_encoded_and_posted_by_one_thread_in_batches() -> None:
    collect = Collect()
    provider, processor = _pipeline(collect, max_export_batch_size=4,
                                    schedule_delay_millis=600_000)
    tracer = provider.get_tracer("t")
    url = "https://api.example/v3/order?symbol=BTCUSDT&signature=abcdef0123456789"
    ended: list[ReadableSpan] = []
    for i in range(10):
        with tracer.start_as_current_span(f"trade {i}", attributes={"http.url": url}) as span:
            pass
        ended.append(span)  # type: ignore[arg-type]
    # two full batches leave without a flush; the rest waits for the schedule or a flush
    wait_until(lambda: len(collect.requests) == 2)
    assert processor.force_flush(5_000)
    assert [len(r) for r in collect.requests] == [4, 4, 2]
    assert collect.threads == {"botmon-span-export"}
    data = b"".join(r.data for r in collect.requests)
    assert b"abcdef0123456789" not in data
    expected = [sdk_encode_spans([redaction.redact_span(s) for s in ended[i:i + 4]])
                .SerializeToString() for i in (0, 4, 8)]
    assert [r.data for r in collect.requests] == expected
    provider.shutdown()


def test_the_bot_never_waits_and_spans_are_shed_while_the_endpoint_hangs() -> None:
    collect = Collect()
    collect.gate.clear()
    provider, processor = _pipeline(collect, max_queue_size=8, max_export_batch_size=4)
    tracer = provider.get_tracer("t")
    for _ in range(4):
        tracer.start_span("t").end()
    wait_until(lambda: collect.calls == 1)  # stuck in the first request
    started = time.perf_counter()
    for _ in range(100):
        tracer.start_span("t").end()
    assert time.perf_counter() - started < 0.5
    assert processor.dropped_spans == 92  # 8 wait in the queue, the rest at the door
    started = time.perf_counter()
    assert processor.force_flush(200) is False  # bounded by its timeout
    assert time.perf_counter() - started < 2.0
    collect.gate.set()
    assert processor.force_flush(5_000)
    assert sum(len(r) for r in collect.requests) == 12
    provider.shutdown()


def test_shutdown_returns_while_a_request_hangs() -> None:
    collect = Collect()
    collect.gate.clear()
    provider, processor = _pipeline(collect, max_export_batch_size=2)
    tracer = provider.get_tracer("t")
    for _ in range(6):
        tracer.start_span("t").end()
    wait_until(lambda: collect.calls == 1)
    started = time.perf_counter()
    processor.shutdown()
    assert time.perf_counter() - started < 2.0
    assert collect.closed.wait(5)  # the exporter's own shutdown, on another thread
    tracer.start_span("after").end()  # ignored, never raises


def test_a_forked_child_exports_its_own_spans_only() -> None:
    collect = Collect()
    provider, processor = _pipeline(collect, schedule_delay_millis=600_000)
    tracer = provider.get_tracer("t")
    tracer.start_span("parent-only").end()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its own thread, none of the parent's queued spans
        try:
            collect.requests.clear()
            tracer.start_span("child").end()
            ok = processor.force_flush(5_000)
            count = sum(len(r) for r in collect.requests)
            leaked = b"parent-only" in b"".join(r.data for r in collect.requests)
            os.write(write, f"{ok} {count} {leaked}".encode())
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    assert os.read(read, 100).decode() == "True 1 False"
    os.close(read)
    assert processor.force_flush(5_000)
    assert sum(len(r) for r in collect.requests) == 1
    provider.shutdown()


def test_a_flush_waits_for_every_span_ended_before_it() -> None:
    collect = Collect()
    provider, processor = _pipeline(collect, max_export_batch_size=7)
    tracer = provider.get_tracer("t")
    ended = 0
    for round_size in (1, 50, 333, 1_000):
        for _ in range(round_size):
            tracer.start_span("t").end()
        ended += round_size
        assert processor.force_flush(10_000)
        assert sum(len(r) for r in collect.requests) == ended
    assert all(len(r) <= 7 for r in collect.requests)
    provider.shutdown()


def test_a_burst_leaves_in_requests_of_2048_spans_unless_the_environment_says(
        monkeypatch: Any) -> None:
    # Each request costs the bot's thread the same few GIL hand-backs whatever its size:
    # by default four times the SDK's 512 spans go in one (OTEL_BSP_MAX_EXPORT_BATCH_SIZE
    # still decides when set).
    for env, size in ((None, 2048), ("100", 100)):
        if env is None:
            monkeypatch.delenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", raising=False)
        else:
            monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", env)
        collect = Collect()
        provider, processor = _pipeline(collect, schedule_delay_millis=600_000)
        tracer = provider.get_tracer("t")
        for _ in range(size * 2 + 1):
            tracer.start_span("t").end()
        wait_until(lambda c=collect: len(c.requests) == 2)  # two full batches, no flush
        assert [len(r) for r in collect.requests] == [size, size]
        assert processor.force_flush(10_000)
        assert [len(r) for r in collect.requests] == [size, size, 1]
        provider.shutdown()


def _decoded(requests: Sequence[EncodedSpans]) -> list[list[str]]:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    out = []
    for request in requests:
        message = ExportTraceServiceRequest.FromString(request.data)
        names = [span.name for rs in message.resource_spans for ss in rs.scope_spans
                 for span in ss.spans]
        assert len(names) == len(request)
        out.append(names)
    return out


@settings(max_examples=40, deadline=None)
@given(sizes=st.lists(st.integers(0, 3_000), min_size=1, max_size=60),
       limit=st.integers(1, 20_000))
# a request's resource and scope count before the split, not only after: [s0, s1] over
# the bound by them alone was halved, and s1 then went alone beside [s2]
@example(sizes=[1273, 0, 0], limit=1427)
def test_a_batch_is_split_into_requests_within_the_byte_bound(
        sizes: list[int], limit: int) -> None:
    collect = Collect()
    encode = EncodeCompactSpans(collect, max_request_bytes=limit)
    provider = TracerProvider(shutdown_on_exit=False)
    tracer = provider.get_tracer("t")
    spans = []
    for i, size in enumerate(sizes):
        span = tracer.start_span(f"s{i}", attributes={"blob": "x" * size})
        span.end()
        spans.append(compact(span))  # type: ignore[arg-type]
    assert encode.export(spans) is SpanExportResult.SUCCESS
    names = _decoded(collect.requests)
    # every span once, in order; each request within the bound unless it holds one span
    assert [n for request in names for n in request] == [f"s{i}" for i in range(len(sizes))]
    for request, names_in in zip(collect.requests, names, strict=True):
        assert len(request.data) <= limit or len(names_in) == 1
    # and no more requests than needed: two neighbours never fit in one
    for first, second in zip(collect.requests, collect.requests[1:], strict=False):
        assert len(first.data) + len(second.data) > limit - 300


def test_the_exporters_own_size_limit_splits_instead_of_dropping() -> None:
    # The SDK's exporter drops a request over its max_request_size whole; the batch
    # leaves within it instead.
    collect = Collect()
    collect._max_request_size = 50_000  # type: ignore[attr-defined]
    encode = EncodeCompactSpans(collect)
    provider = TracerProvider(shutdown_on_exit=False)
    tracer = provider.get_tracer("t")
    spans = []
    for i in range(100):
        span = tracer.start_span(f"s{i}", attributes={"error.message": "e" * 2_000})
        span.end()
        spans.append(compact(span))  # type: ignore[arg-type]
    assert encode.export(spans) is SpanExportResult.SUCCESS
    assert len(collect.requests) > 1
    assert all(len(r.data) <= 50_000 for r in collect.requests)
    assert sum(len(r) for r in collect.requests) == 100


def test_a_batch_size_that_is_not_positive_falls_back_to_the_default(
        monkeypatch: Any, caplog: Any) -> None:
    # A batch of 0 (or fewer) spans is always "full": the thread spun without ever taking
    # a span, every span was eventually dropped at the door and flushes timed out. The
    # SDK's batch processor refuses such sizes; here the default applies, with a warning.
    for env, explicit in (("0", None), ("-3", None), (None, -1)):
        if env is None:
            monkeypatch.delenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", raising=False)
        else:
            monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", env)
        collect = Collect()
        caplog.clear()
        provider, processor = _pipeline(collect, schedule_delay_millis=600_000,
                                        max_export_batch_size=explicit)
        tracer = provider.get_tracer("t")
        for _ in range(2048 + 5):
            tracer.start_span("t").end()
        wait_until(lambda c=collect: len(c.requests) == 1)  # one full batch, no flush
        assert processor.force_flush(10_000)
        assert [len(r) for r in collect.requests] == [2048, 5]
        assert processor.dropped_spans == 0
        assert "must be positive" in caplog.text
        provider.shutdown()
