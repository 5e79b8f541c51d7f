"""OTLP/HTTP answers read as the specification asks: partial success counted and logged
(never retried), malformed Retry-After ignored (backoff instead of an immediate resend).

The SDK's own client sends through :class:`ReadAnswers` over the lean transport to a
scripted h11 server (tests/unit/core/test_lean_http.py), and through ``configure()`` to
the real OTLP/HTTP receiver.
"""

from __future__ import annotations

import gzip
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
from google.protobuf import json_format
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.common.http import _OTLPHTTPClient
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from otel_botmon import telemetry
from otel_botmon.exporters.lean_http import LeanHTTPTransport
from otel_botmon.exporters.otlp_answers import ReadAnswers
from tests.otlp_receiver import OtlpReceiver
from tests.unit.core.test_lean_http import Server


@pytest.fixture
def server() -> Iterator[Server]:
    found = Server()
    yield found
    found.close()


def _answer(signal: str, rejected: int, message: str, encoding: str) -> tuple[list[Any], bytes]:
    if signal == "spans":
        answer: Any = ExportTraceServiceResponse()
        answer.partial_success.rejected_spans = rejected
    else:
        answer = ExportMetricsServiceResponse()
        answer.partial_success.rejected_data_points = rejected
    answer.partial_success.error_message = message
    if encoding == "json":
        return [("Content-Type", "application/json")], json_format.MessageToJson(answer).encode()
    body = answer.SerializeToString()
    headers = [("Content-Type", "application/x-protobuf")]
    if encoding == "gzip":
        return [*headers, ("Content-Encoding", "gzip")], gzip.compress(body)
    return headers, body


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(signal=st.sampled_from(["spans", "metrics"]),
       answers=st.lists(st.tuples(st.integers(0, 2**40), st.text(max_size=300)),
                        min_size=1, max_size=4),
       encoding=st.sampled_from(["protobuf", "gzip", "json"]))
def test_a_partial_success_is_a_success_counted_and_logged_once_a_minute(
    server: Server, caplog: pytest.LogCaptureFixture, signal: str,
    answers: list[tuple[int, str]], encoding: str,
) -> None:
    caplog.clear()
    server.requests.clear()
    server.answer = lambda n, body: (200, *_answer(signal, *answers[n - 1], encoding), "keep")
    transport = ReadAnswers(LeanHTTPTransport(), signal)  # type: ignore[arg-type]
    client = _OTLPHTTPClient(transport, server.url, signal)  # type: ignore[arg-type]
    try:
        with caplog.at_level(logging.WARNING, logger="otel_botmon"):
            for _ in answers:
                assert client.export(b"\x0a\x00").success
    finally:
        client.shutdown()
    assert len(server.requests) == len(answers)  # never sent again
    assert transport.rejected == sum(rejected for rejected, _ in answers)
    reported = [(r, m) for r, m in answers if r or m]
    warnings = [r.getMessage() for r in caplog.records if "rejected" in r.getMessage()]
    assert len(warnings) == (1 if reported else 0)
    if reported:
        first = reported[0]
        assert f"rejected {first[0]} " in warnings[0]
        assert all(0x20 <= ord(c) < 0x7f for c in warnings[0])


@pytest.mark.parametrize("value", ["-5", "soon", "nan", "inf", "1e3x", "",
                                   "Wed, 21 Oct 2015 07:28:00 GMT"])
def test_a_malformed_or_past_retry_after_backs_off_instead_of_resending_at_once(
    server: Server, value: str
) -> None:
    arrived: list[float] = []

    def answer(n: int, body: bytes) -> tuple[int, list[tuple[str, str]], bytes, str]:
        arrived.append(time.monotonic())
        return (429, [("Retry-After", value)], b"", "keep") if n == 1 else (200, [], b"", "keep")

    server.answer = answer
    client = _OTLPHTTPClient(ReadAnswers(LeanHTTPTransport(), "spans"), server.url, "spans",
                             timeout=5)
    try:
        assert client.export(b"\x0a\x00").success
    finally:
        client.shutdown()
    assert arrived[1] - arrived[0] >= 0.7  # the client's first backoff: 1 s +- 20 %


@settings(max_examples=30, deadline=None)
@given(value=st.one_of(st.integers(0, 10**9).map(str),
                       st.floats(0, 1e6).map(lambda f: f"{f:.3f}"),
                       st.just("Fri, 31 Dec 9999 23:59:59 GMT")))
def test_a_valid_retry_after_reaches_the_client_unchanged(value: str) -> None:
    server = Server(answer=lambda n, body: (503, [("Retry-After", value)], b"", "keep"))
    transport = ReadAnswers(LeanHTTPTransport(), "metrics")
    try:
        result = transport.request("POST", server.url, data=b"x", timeout=2)
        assert result.status_code == 503
        assert result.headers().get("retry-after") == value
        assert result.headers().get("Retry-After") == value
    finally:
        transport.close()
        server.close()


def test_configure_reports_partial_success_once_and_never_logs_the_headers(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer secret123")
    with OtlpReceiver() as receiver:
        receiver.partial_success = (2, "span name too long")
        tel = telemetry.configure("partial-bot", otlp_endpoint=receiver.endpoint,
                                  export_interval_s=3600, set_global=False)
        try:
            with caplog.at_level(logging.DEBUG):
                tracer = tel.tracer_provider.get_tracer("t")
                tel.meter_provider.get_meter("m").create_counter("orders").add(1)
                for _ in range(3):
                    with tracer.start_as_current_span("trade"):
                        pass
                    assert tel.force_flush(timeout_s=5)
                receiver.wait_for(lambda r: len(r.trace_requests) >= 3 and r.metric_requests)
        finally:
            tel.shutdown(timeout_s=5)
        assert receiver.request_headers[0]["authorization"] == "Bearer secret123"
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "secret123" not in text
    spans = [m for m in text.splitlines() if "rejected 2 spans" in m]
    points = [m for m in text.splitlines() if "rejected 2 data points" in m]
    assert len(spans) == 1 and len(points) == 1, text
    assert "span name too long" in spans[0]
