"""Redaction of finished spans: name, attributes, events and status in one budget.

Part of :mod:`otel_botmon.redaction` (which re-exports everything here); see there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import Status

from otel_botmon import redaction
from otel_botmon._internal import report_internal_error
from otel_botmon._redact_scan import MAX_SEPARATORS, MAX_SPAN_CHARS, MAX_TEXT_CHARS, Budget
from otel_botmon._span_processing import DelegatingSpanProcessor

__all__ = ["RedactingSpanExporter", "RedactingSpanProcessor", "redact_span"]


def _redact_events(events: Sequence[Event], budget: Budget) -> tuple[Event, ...] | None:
    changed = False
    out: list[Event] = []
    for event in events:
        name = redaction._redact_str(event.name, budget)
        attributes = redaction._redact_map(event.attributes, budget) if event.attributes else None
        if name is not event.name or attributes is not None:
            changed = True
            out.append(Event(
                name=name, timestamp=event.timestamp,
                attributes=event.attributes if attributes is None else attributes,
            ))
        else:
            out.append(event)
    return tuple(out) if changed else None


def _copy_span(
    # A ReadableSpan's fields are copied directly (opentelemetry-sdk 1.x): a fraction of
    # the constructor plus a dozen property reads. The constructor is the fallback.
    span: ReadableSpan, name: str, attributes: Mapping[str, Any] | None,
    events: Sequence[Event] | None, status: Status,
) -> ReadableSpan:
    fields = getattr(span, "__dict__", None)
    if fields is not None and "_attributes" in fields and "_events" in fields \
            and "_status" in fields and "_name" in fields:
        copy = object.__new__(ReadableSpan)
        copy.__dict__ = fields.copy()  # in C: the span's own fields, the Span's extras too
        copy._name = name
        if attributes is not None:
            copy._attributes = attributes
        if events is not None:
            copy._events = events
        copy._status = status
        return copy
    return ReadableSpan(  # pragma: no cover - another SDK layout
        name=name, context=span.context, parent=span.parent, resource=span.resource,
        attributes=span.attributes if attributes is None else attributes,
        events=span.events if events is None else events, links=span.links,
        kind=span.kind, status=status, start_time=span.start_time, end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


def redact_span(span: ReadableSpan) -> ReadableSpan:
    """The span itself when it carries no secret, else a redacted copy.

    Covers the span name, attributes, event names and attributes (an exception's message
    and stack trace) and the status description, all within one budget
    (:data:`otel_botmon._redact_scan.MAX_SPAN_CHARS` characters): a string past it is
    cut. Links and resource pass unchanged.
    """
    # This runs for every span the bot ends: the SDK's own fields are read from the
    # span's __dict__ (opentelemetry-sdk 1.x), the public properties are the fallback.
    fields = getattr(span, "__dict__", None)
    if fields is None or "_status" not in fields or "_name" not in fields:
        return _redact_span_public(span)  # pragma: no cover - another SDK layout
    budget = Budget(MAX_SPAN_CHARS, MAX_SEPARATORS)
    name = original_name = fields["_name"]
    if (redaction._secrets or "=" in name or ":" in name or "%" in name
            or len(name) > MAX_TEXT_CHARS):
        name = redaction._redact_str(name, budget)
    attributes = fields.get("_attributes")
    inner = getattr(attributes, "_dict", None)
    if type(inner) is dict:
        attributes = inner
    new_attributes = redaction._redact_map(attributes, budget) if attributes else None
    events = fields.get("_events")
    queue = getattr(events, "_dq", None)
    if queue is not None and not queue:
        new_events = None  # the common case: no events, told by the SDK's deque at once
    else:
        events = span.events
        new_events = _redact_events(events, budget) if events else None
    status = original_status = fields["_status"]
    description = status.description
    if description:
        redacted = redaction._redact_str(description, budget)
        if redacted is not description:
            status = Status(status.status_code, redacted)
    if (name is original_name and new_attributes is None and new_events is None
            and status is original_status):
        return span
    return _copy_span(span, name, new_attributes, new_events, status)


def _redact_span_public(span: ReadableSpan) -> ReadableSpan:  # pragma: no cover
    """:func:`redact_span` through the public properties only."""
    budget = Budget(MAX_SPAN_CHARS, MAX_SEPARATORS)
    name = redaction._redact_str(span.name, budget)
    attributes = span.attributes
    new_attributes = redaction._redact_map(attributes, budget) if attributes else None
    events = span.events
    new_events = _redact_events(events, budget) if events else None
    status = span.status
    if status.description:
        status = Status(status.status_code, redaction._redact_str(status.description, budget))
    return _copy_span(span, name, new_attributes, new_events, status)


class RedactingSpanProcessor(DelegatingSpanProcessor):
    """Wraps the processor that exports spans so that it only ever sees redacted spans.

    ``RedactingSpanProcessor(BatchSpanProcessor(exporter))``: ``on_end`` hands the
    delegate :func:`redact_span`'s result; everything else is forwarded unchanged. If
    redaction itself fails the span is dropped rather than exported unredacted.
    """

    def on_end(self, span: ReadableSpan) -> None:
        try:
            span = redaction.redact_span(span)  # looked up here: tests replace it
        except Exception as exc:  # never export what we could not check
            report_internal_error("redaction", exc)
            return
        self._delegate.on_end(span)


class RedactingSpanExporter(SpanExporter):
    """Wraps an exporter so that it only ever sees redacted spans, redacting on the
    exporting thread: ``BatchSpanProcessor(RedactingSpanExporter(exporter))`` keeps the
    work off the thread that ends the span. A span that cannot be redacted is dropped."""

    def __init__(self, inner: SpanExporter) -> None:
        self._inner = inner

    @property
    def inner(self) -> SpanExporter:
        return self._inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        redacted = []
        for span in spans:
            try:
                redacted.append(redaction.redact_span(span))
            except Exception as exc:  # never export what we could not check
                report_internal_error("redaction", exc)
        return self._inner.export(redacted)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._inner.force_flush(timeout_millis)

    def shutdown(self) -> None:
        self._inner.shutdown()
