"""Redaction of finished spans: name, attributes, events and status in one budget.

Part of :mod:`otel_botmon.redaction` (which re-exports everything here); see there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.util import BoundedList
from opentelemetry.trace import Status

from otel_botmon import redaction
from otel_botmon._internal import report_internal_error
from otel_botmon._redact_scan import (
    MAX_SEPARATORS,
    MAX_SPAN_CHARS,
    REDACTED,
    Budget,
    may_hold_pair,
)
from otel_botmon._redact_url import matched_url
from otel_botmon._span_processing import DelegatingSpanProcessor

__all__ = ["RedactingSpanExporter", "RedactingSpanProcessor", "redact_span"]

# What an attribute key says about its value (otel_botmon.redaction._key_kind).
_URL: Final = redaction._URL
_SECRET: Final = redaction._SECRET
_ONE_REDACTED: Final = (REDACTED,)  # a captured header's one value
_NO_TEXT: Final = redaction._NO_TEXT


def _keep_dropped_attributes(original: Any, redacted: Mapping[str, Any]) -> Any:
    """``redacted`` (``original``'s attributes with secrets replaced: the same keys),
    still counting the attributes ``original`` dropped: exporters read the count of a
    BoundedAttributes only, and redaction drops nothing."""
    dropped = getattr(original, "dropped", 0)
    if not dropped:
        return redacted
    kept = BoundedAttributes(getattr(original, "maxlen", None), immutable=False)
    kept._dict = dict(redacted)  # cleaned when the span took them: not validated again
    kept.dropped = dropped
    kept._immutable = True
    return kept


def _keep_dropped_events(original: Any, redacted: Sequence[Event]) -> Any:
    """``redacted`` (``original``'s events, redacted), still counting the events
    ``original`` dropped (read from a BoundedList only)."""
    dropped = getattr(original, "dropped", 0)
    if not dropped:
        return redacted
    kept = BoundedList.from_seq(None, redacted)
    kept.dropped = dropped
    return kept


def _redact_events(events: Sequence[Event], budget: Budget) -> tuple[Event, ...] | None:
    changed = False
    out: list[Event] = []
    for event in events:
        name = redaction._redact_str(event.name, budget)
        attributes = None
        original = event.attributes
        if original:
            attributes = redaction._changes(original, budget)
        if name is not event.name or attributes is not None:
            changed = True
            out.append(Event(
                name=name, timestamp=event.timestamp,
                attributes=original if attributes is None or not original
                else _keep_dropped_attributes(original, {**original, **attributes}),
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
            copy._attributes = _keep_dropped_attributes(fields["_attributes"], attributes)
        if events is not None:
            copy._events = _keep_dropped_events(fields["_events"], events)
        copy._status = status
        return copy
    return ReadableSpan(  # pragma: no cover - another SDK layout
        name=name, context=span.context, parent=span.parent, resource=span.resource,
        attributes=span.attributes if attributes is None else attributes,
        events=span.events if events is None else events, links=span.links,
        kind=span.kind, status=status, start_time=span.start_time, end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


def redact_span(span: ReadableSpan, *, in_place: bool = False) -> ReadableSpan:
    """The span itself when it carries no secret, else a redacted copy (or, with
    ``in_place``, the span itself with the secrets replaced in its own fields: what
    :class:`RedactingSpanProcessor` does, so that nothing holding the span can read them).

    Covers the span name, attributes, event names and attributes (an exception's message
    and stack trace) and the status description, all within one budget
    (:data:`otel_botmon._redact_scan.MAX_SPAN_CHARS` characters): a string past it is
    cut. Links and resource pass unchanged.
    """
    # This runs for every span the bot ends. Most have a name seen before, no events and
    # no status description: for those only the attributes are looked at, read from the
    # SDK's own fields (opentelemetry-sdk 1.x); anything else takes the full path. Read
    # as attributes, not through span.__dict__, which CPython would first build.
    fields: Any = span
    try:
        name = fields._name
        inner = fields._attributes._dict  # inside BoundedAttributes
        events = fields._events._dq  # inside BoundedList
        description = fields._status._description
    except AttributeError:
        return _redact_span_full(span, in_place)
    if events or description or name not in redaction._clean_texts:
        return _redact_span_full(span, in_place)
    if not inner:
        return span
    if in_place and type(inner) is dict and _scrub_common(inner):
        return span
    changes = redaction._changes(inner, None)
    if changes is None:
        return span
    if not in_place:
        return _copy_span(span, name, {**inner, **changes}, None, fields._status)
    if type(inner) is dict:
        inner.update(changes)  # the same keys: order and size kept
    else:  # pragma: no cover - another SDK layout
        fields._attributes = {**inner, **changes}
    return span


def _scrub_common(attributes: dict[str, Any]) -> bool:
    """Redact, in place, the attribute values of the kinds most spans carry: values
    known clean, numbers, a secret header's values, a signed URL of a known shape. True
    when every value was one of these; False as soon as one is not, for the general path
    (``redaction._changes``) to do; what was replaced stays so (redacting a redacted
    value gives it back unchanged).

    The span processor's branch of ``redaction._changes`` (the same decisions in fewer
    steps, checked against it by a property test): it runs for every span the bot ends.
    """
    plain = redaction._plain_keys
    clean = redaction._clean_texts
    kinds = redaction._key_kinds
    try:
        for key, value in attributes.items():  # values replaced, never keys: safe to iterate
            if key in plain:
                # Membership first, the type only if needed: whatever equals a clean text
                # is left as it is by the general path too (a str subclass is redacted as
                # its text; any other object that is not bytes, a sequence or a mapping
                # passes unchanged).
                if value in clean:
                    continue
                vtype = type(value)
                if vtype in _NO_TEXT:
                    continue
                if vtype is str and not redaction._secrets and "=" not in value \
                        and ":" not in value and "%" not in value \
                        and not may_hold_pair(value):
                    redaction._remember(clean, value)
                    continue
                return False
            kind = kinds.get(key)
            if kind == _URL:
                # A URL equal to a clean one is left as it is by the general path too; a
                # value matched_url cannot take (not a str) raises TypeError: that path.
                if value in redaction._clean_urls:
                    continue
                url = matched_url(value)
                if url is None:
                    return False
                attributes[key] = url
                continue
            if kind == _SECRET:
                vtype = type(value)
                if vtype is tuple:
                    attributes[key] = _ONE_REDACTED if len(value) == 1 \
                        else (REDACTED,) * len(value)
                    continue
                if vtype is str:
                    attributes[key] = REDACTED
                    continue
            return False
    except TypeError:  # an unhashable value (the SDK keeps none): the general path
        return False
    return True


def _redact_span_full(span: ReadableSpan, in_place: bool) -> ReadableSpan:
    """:func:`redact_span` for a span with events, a status description or a new name,
    or of another layout (a copy made by an exporter)."""
    fields = getattr(span, "__dict__", None)
    if fields is None or "_status" not in fields or "_name" not in fields:
        return _redact_span_public(span)  # pragma: no cover - another SDK layout
    budget = Budget(MAX_SPAN_CHARS, MAX_SEPARATORS)
    name = fields["_name"]
    new_name = redaction._redact_str(name, budget)  # remembered: names repeat
    changes = None
    attributes = fields.get("_attributes")
    inner = getattr(attributes, "_dict", attributes)
    if inner:
        changes = redaction._changes(inner, budget)
    events = span.events
    new_events = _redact_events(events, budget) if events else None
    status = fields["_status"]
    new_status = status
    if status.description:
        redacted = redaction._redact_str(status.description, budget)
        if redacted is not status.description:
            new_status = Status(status.status_code, redacted)
    if changes is None and new_events is None and new_name is name and new_status is status:
        return span
    if not in_place:
        new_attributes = None if changes is None else {**inner, **changes}
        return _copy_span(span, new_name, new_attributes, new_events, new_status)
    if changes is not None:
        if type(inner) is dict:
            inner.update(changes)
        else:
            fields["_attributes"] = {**inner, **changes}
    if new_events is not None:
        fields["_events"] = _keep_dropped_events(fields.get("_events"), new_events)
    fields["_name"] = new_name
    fields["_status"] = new_status
    return span


def _redact_span_public(span: ReadableSpan) -> ReadableSpan:  # pragma: no cover
    """:func:`redact_span` through the public properties only."""
    budget = Budget(MAX_SPAN_CHARS, MAX_SEPARATORS)
    name = redaction._redact_str(span.name, budget)
    attributes = span.attributes
    changes = redaction._changes(attributes, budget) if attributes else None
    events = span.events
    new_events = _redact_events(events, budget) if events else None
    status = span.status
    if status.description:
        status = Status(status.status_code, redaction._redact_str(status.description, budget))
    new_attributes = None if changes is None else {**attributes, **changes}  # type: ignore[dict-item]
    return _copy_span(span, name, new_attributes, new_events, status)


class RedactingSpanProcessor(DelegatingSpanProcessor):
    """Wraps the processor that exports spans so that it only ever sees redacted spans.

    ``RedactingSpanProcessor(BatchSpanProcessor(exporter))``: ``on_end`` redacts the
    finished span in place (:func:`redact_span` with ``in_place=True``), on the thread
    that ended it, and hands it to the delegate; everything else is forwarded unchanged.
    In place, so that no copy is made and every processor after this one, and anything
    else holding the span, sees only redacted values; the span is not redacted twice.
    If redaction itself fails the span is dropped rather than exported unredacted.
    """

    def on_end(self, span: ReadableSpan) -> None:
        try:
            span = redaction.redact_span(span, in_place=True)  # looked up: tests replace it
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
