"""Finished spans kept as one flat tuple each while they wait for their batch.

A ReadableSpan waiting in the batch processor's queue keeps about a dozen objects the
garbage collector tracks (the span, its context and trace flags, the bounded attributes
with their dict and lock, the event and link lists with their deques and locks). The
bot's thread allocates them, so they trigger the collector there: with an OTLP endpoint a
5,000-trade window ran about 80 young and 7 middle collections and a full one, where the
same bot without an exporter ran none.

:class:`CompactEndedSpans` turns each finished span into one tuple of plain values
(attributes flattened in, ids and flags as ints) before the batch processor keeps it;
the garbage collector stops tracking such a tuple at its first pass. The exporting
thread turns the tuples back into ReadableSpans (:class:`ExpandCompactSpans`) before
redaction and encoding, with the same content: name, context, parent, kind, times,
attributes, events, links, status, resource, scope and the dropped counts.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any, Final

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import SpanContext, Status, StatusCode, TraceFlags

from otel_botmon import _redact_span, redaction
from otel_botmon._internal import report_internal_error
from otel_botmon._redact_scan import may_hold_pair
from otel_botmon._span_processing import DelegatingSpanProcessor
from otel_botmon.exporters.otlp_spans import (
    SpanLayout,
    encode_request,
    encode_span,
    span_attributes,
    span_field,
    span_field_encoded,
    status_field,
)

__all__ = ["CompactEndedSpans", "EncodeCompactSpans", "EncodedSpans", "compact"]

logger = logging.getLogger("otel_botmon")

# The batch processor only asks a queued item whether it is sampled.
_SAMPLED_FLAGS: Final = TraceFlags(TraceFlags.SAMPLED)
_SAMPLED: Final = SpanContext(1, 1, False, _SAMPLED_FLAGS)
_FIELDS: Final = 15  # the attribute keys follow, then their values


class _Ended(tuple):  # type: ignore[type-arg]
    """A :func:`compact` tuple the batch processor can ask whether it is sampled (when
    its queue cannot be fed plain tuples directly)."""

    __slots__ = ()
    context = _SAMPLED


class _Dropped(tuple):  # type: ignore[type-arg]
    """Events or links some of which the span dropped (``dropped``, as BoundedList)."""

    dropped = 0


def _sequence(items: Any, dropped: int) -> tuple[Any, ...]:
    """Events or links as a tuple; one with a ``dropped`` count if the span dropped some."""
    if not dropped:
        return tuple(items) if items else ()
    out = _Dropped(items)
    out.dropped = dropped
    return out


def compact(span: ReadableSpan) -> tuple[Any, ...]:
    """``span`` as one tuple of plain values (what its OTLP encoding needs): name, ids,
    trace state, parent, kind, times, status, events, links, dropped attributes,
    resource, scope, then the attribute keys, then their values."""
    sdk: Any = span
    try:  # the SDK's fields (opentelemetry-sdk 1.x): SpanContext is a tuple,
        # BoundedAttributes keeps a dict, BoundedList a deque
        context, bounded, status = sdk._context, sdk._attributes, sdk._status
        attributes, events, links = bounded._dict, sdk._events, sdk._links
        if events._dq or links._dq or events.dropped or links.dropped:
            events = _sequence(events, events.dropped)
            links = _sequence(links, links.dropped)
        else:
            events = links = ()
        return (
            sdk._name, context[0], context[1], context[4], sdk._parent, sdk._kind,
            sdk._start_time, sdk._end_time, status._status_code, status._description,
            events, links, bounded.dropped, sdk._resource, sdk._instrumentation_scope,
            *attributes, *attributes.values(),
        )
    except AttributeError:  # another layout: the public properties
        context, attributes, status = span.context, span.attributes or {}, span.status
        return (
            span.name, context.trace_id, context.span_id, context.trace_state, span.parent,
            span.kind, span.start_time, span.end_time, status.status_code,
            status.description, _sequence(span.events, span.dropped_events),
            _sequence(span.links, span.dropped_links), span.dropped_attributes,
            span.resource, span.instrumentation_scope, *attributes, *attributes.values(),
        )


_STATUS: Final = {code: Status(code) for code in StatusCode}


def _redaction_view(
    record: Sequence[Any], attributes: dict[str, Any], status: Status, whole: bool
) -> Any:
    """The ReadableSpan a :func:`compact` tuple was made from, for redaction: its name,
    attributes, events and status (what redaction reads today), or with ``whole`` every
    field (its own context with the sampled flag, as queued spans all have)."""
    (name, trace_id, span_id, trace_state, parent, kind, start, end, _code, _description,
     events, links, _dropped, resource, scope) = record[:_FIELDS]
    view = object.__new__(ReadableSpan)
    if not whole:
        view.__dict__.update(_name=name, _attributes=attributes, _events=events,
                             _status=status)
        return view
    view.__dict__.update(
        _name=name, _context=tuple.__new__(SpanContext, (
            trace_id, span_id, False, _SAMPLED_FLAGS, trace_state, True)),
        _kind=kind, _instrumentation_info=None, _instrumentation_scope=scope, _parent=parent,
        _start_time=start, _end_time=end, _attributes=attributes, _events=events,
        _links=links, _resource=resource, _status=status,
    )
    return view


def _encoded(record: Sequence[Any], redact: Any) -> tuple[Any, Any, bytes]:
    """(resource, scope, Span field bytes) for a :func:`compact` tuple, redacted."""
    (name, trace_id, span_id, trace_state, parent, kind, start, end, code, description,
     events, links, dropped, resource, scope) = record[:_FIELDS]
    half = (len(record) + _FIELDS) // 2
    attributes = dict(zip(record[_FIELDS:half], record[half:], strict=True))
    status = _STATUS[code] if description is None else Status(code, description)
    view = _redaction_view(record, attributes, status, whole=False)
    try:
        redacted = redact(view)
    except AttributeError:  # a redaction that reads more of the span: give it all
        view = _redaction_view(record, attributes, status, whole=True)
        redacted = redact(view)
    dropped_events = getattr(events, "dropped", 0)
    dropped_links = getattr(links, "dropped", 0)
    # read back from what redaction returned, whether a copy or the view itself (a
    # redaction that edits in place may have replaced any of these fields)
    name, status = redacted.name, redacted.status
    status_bytes = status_field(status.status_code.value, status.description)
    # (redaction replaces values, never drops any: the span's dropped counts stay)
    new = getattr(redacted, "_attributes", attributes)
    if new is not attributes:
        attributes = new or redacted.attributes
    new = getattr(redacted, "_events", events)
    if new is not events:
        events = redacted.events
    new = getattr(redacted, "_links", links)  # absent from the short view
    if new is not links:
        links = redacted.links
    return resource, scope or None, span_field(
        trace_id, span_id, trace_state, parent, name, kind, start, end, attributes, dropped,
        events, dropped_events, links, dropped_links, status_bytes)


# The status field of a span without a description, by the id of its code (members live
# as long as the module; an enum's .value and hash are Python-level calls).
_PLAIN_STATUS: Final = {id(code): status_field(code.value, None) for code in StatusCode}


def _unchanged_by_redaction(record: Sequence[Any], half: int) -> bool:
    """Whether redaction leaves the span of a :func:`compact` tuple exactly as it is,
    decided by the checks of ``redact_span``'s common path (a name known clean, no
    events, no status description, every attribute a plain key with a number or a text
    known clean or without a separator a secret could follow): the branch of
    :func:`_encoded` that runs for almost every span. False means "not known": the
    span then takes the full redaction."""
    if record[10] or record[9] or record[0] not in redaction._clean_texts:
        return False  # events, a status description, or a name not seen clean before
    # (an events tuple that is empty may still count dropped events: see _encoded_unchanged)
    plain = redaction._plain_keys
    clean = redaction._clean_texts
    literals = redaction._secrets
    no_text = redaction._NO_TEXT
    values = iter(record[half:])
    for key in record[_FIELDS:half]:
        value = next(values)
        if key not in plain:
            return False
        vtype = type(value)
        if vtype is str:
            if value in clean:
                continue
            if literals or "=" in value or ":" in value or "%" in value \
                    or may_hold_pair(value):
                return False
            redaction._remember(clean, value)
        elif vtype not in no_text:
            return False
    return True


def _encoded_unchanged(record: Sequence[Any], half: int) -> tuple[Any, Any, bytes]:
    """:func:`_encoded` for a span redaction leaves unchanged (:func:`_unchanged_by_redaction`)."""
    (_name, trace_id, span_id, trace_state, parent, kind, start, end, code, _description,
     events, links, dropped, resource, scope) = record[:_FIELDS]
    status = _PLAIN_STATUS.get(id(code))
    if status is None:  # pragma: no cover - a code that is not a StatusCode member
        status = status_field(code.value, None)
    attributes = span_attributes(zip(record[_FIELDS:half], record[half:], strict=True))
    return resource, scope or None, span_field_encoded(
        trace_id, span_id, trace_state, parent, record[0], kind, start, end, attributes,
        dropped, (), getattr(events, "dropped", 0), links, getattr(links, "dropped", 0),
        status)


# Layouts of spans redaction left unchanged, by (name, attribute keys), each with the
# redaction cache it was checked against: while that is the same object (the secrets
# and names have not changed since), a span with the same name, keys, types and texts
# is unchanged by redaction too, and only its ids, times and floats need encoding.
_LAYOUTS_LIMIT: Final = 512
_layouts: dict[tuple[Any, ...], tuple[set[str], SpanLayout | None]] = {}


def _encoded_known(record: Sequence[Any], half: int) -> tuple[Any, Any, bytes] | None:
    """:func:`_encoded_unchanged` for a span that fits a layout checked before, else None."""
    (name, trace_id, span_id, trace_state, parent, kind, start, end, code, description,
     events, links, dropped, resource, scope) = record[:_FIELDS]
    if (events or links or description is not None or trace_state or dropped
            or type(events) is not tuple or type(links) is not tuple):
        return None  # the layout has none of these, nor dropped events or links
        # (an empty _Dropped), and the redaction checks read the events
    found = _layouts.get((name, record[_FIELDS:half]))
    if found is None or found[0] is not redaction._clean_texts:
        return None
    layout = found[1]
    if layout is None or kind is not layout.kind or code is not layout.code or not (
            start and end):
        return None
    encoded = layout.encode(trace_id, span_id, parent, start, end, record[half:])
    if encoded is None:
        return None
    return resource, scope or None, encoded


def _learn_layout(record: Sequence[Any], half: int, clean: set[str]) -> None:
    """Remember the layout of a span just found unchanged by redaction (``clean``: the
    redaction cache read before the check)."""
    key = (record[0], record[_FIELDS:half])
    known = _layouts.get(key)
    if known is not None and known[0] is clean:
        return  # the layout for these keys (one that did not fit this span stays)
    try:
        layout: SpanLayout | None = SpanLayout(
            record[0], record[5], record[8], key[1], record[half:])
    except (ValueError, AttributeError):
        layout = None  # such spans keep the general path
    if len(_layouts) >= _LAYOUTS_LIMIT:
        _layouts.clear()
    _layouts[key] = (clean, layout)


class CompactEndedSpans(DelegatingSpanProcessor):
    """Hands ``delegate`` (a batch processor) :func:`compact` tuples, sampled spans only.

    Its exporter must be :class:`EncodeCompactSpans`.
    """

    def __init__(self, delegate: SpanProcessor) -> None:
        super().__init__(delegate)
        # The batch processor's own on_end only checks sampling, done here: its queue
        # takes the plain tuple (opentelemetry-sdk 1.x), else an _Ended that can answer.
        emit = getattr(getattr(delegate, "_batch_processor", None), "emit", None)
        self._emit = emit if emit is not None else self._wrapped

    def _wrapped(self, record: tuple[Any, ...]) -> None:
        self._delegate.on_end(_Ended(record))  # type: ignore[arg-type]

    def on_end(self, span: ReadableSpan) -> None:
        try:  # the SDK's field: SpanContext is a tuple, trace flags its 4th item
            sampled = span._context[3] & TraceFlags.SAMPLED  # type: ignore[index]
        except (AttributeError, TypeError, IndexError):
            context = span.context
            sampled = context is not None and context.trace_flags.sampled
        if sampled:
            self._emit(compact(span))


class EncodedSpans:
    """A batch already encoded as an OTLP ``ExportTraceServiceRequest``; ``len()`` is
    the number of spans in it."""

    __slots__ = ("count", "data")

    def __init__(self, data: bytes, count: int) -> None:
        self.data = data
        self.count = count

    def __len__(self) -> int:
        return self.count


MAX_REQUEST_BYTES: Final = 4 * 1024 * 1024
"""The longest request :class:`EncodeCompactSpans` sends by default (4 MiB, gRPC's
default message limit; the OpenTelemetry Collector accepts 20 MiB over HTTP): a batch
that encodes longer leaves as several requests."""


class EncodeCompactSpans(SpanExporter):
    """Redacts and encodes a batch of :func:`compact` tuples one span at a time (on the
    batch processor's thread), then hands ``inner`` one :class:`EncodedSpans` per
    request.

    The batch then waits as bytes, which the garbage collector does not track. ``inner``
    must accept :class:`EncodedSpans` (otel_botmon.exporters.otlp_http.OTLPSpanExporter,
    through the handoff). A span that cannot be redacted is dropped, as by
    RedactingSpanExporter.

    Batches are counted in spans, but a request is bounded in bytes too: spans are
    added to a request while it stays within ``max_request_bytes`` (default
    :data:`MAX_REQUEST_BYTES`, or the inner exporter's ``max_request_size`` if that is
    smaller), so a batch of large spans (long exception messages) leaves as several
    requests instead of one the endpoint or the SDK's size check refuses whole. A span
    longer than the bound alone goes alone.
    """

    def __init__(self, inner: SpanExporter, max_request_bytes: int | None = None) -> None:
        self._inner = inner
        limit = MAX_REQUEST_BYTES if max_request_bytes is None else max_request_bytes
        inner_limit = getattr(inner, "_max_request_size", None)  # the SDK exporter's
        if isinstance(inner_limit, int) and 0 < inner_limit < limit:
            limit = inner_limit
        self._max_bytes = limit
        # (resource, scope, bytes a request spends on their group) by the objects' ids
        self._overheads: dict[tuple[int, int], tuple[Any, Any, int]] = {}

    @property
    def inner(self) -> SpanExporter:
        return self._inner

    def _encoded(self, spans: Sequence[Any]) -> Iterator[tuple[Any, Any, bytes]]:
        redact = redaction.redact_span  # looked up per batch: tests replace it
        # The common path's checks inline only while redaction is the one they mirror.
        inline = redact is _redact_span.redact_span
        for item in spans:
            try:
                if isinstance(item, tuple):
                    half = (len(item) + _FIELDS) // 2
                    known = _encoded_known(item, half) if inline else None
                    if known is not None:
                        encoded = known
                    elif inline:
                        clean = redaction._clean_texts  # before the checks read the secrets
                        if _unchanged_by_redaction(item, half):
                            encoded = _encoded_unchanged(item, half)
                            _learn_layout(item, half, clean)
                        else:
                            encoded = _encoded(item, redact)
                    else:
                        encoded = _encoded(item, redact)
                else:
                    span = redact(item)
                    encoded = (span.resource, span.instrumentation_scope or None,
                               encode_span(span))
            except Exception as exc:  # never export what we could not check
                report_internal_error("redaction", exc)
                continue
            yield encoded

    def _overhead(self, resource: Any, scope: Any) -> int:
        """What a request spends on the resource and scope wrapping a group of spans
        (their fields, and room for the length prefixes of the group's messages to
        grow to their longest); measured once per pair of objects."""
        key = (id(resource), id(scope))
        known = self._overheads.get(key)
        if known is None:
            if len(self._overheads) >= 64:  # new resources or scopes: forget the old
                self._overheads.clear()
            # the objects are kept with their size, so their ids cannot be reused
            known = (resource, scope, len(encode_request([(resource, scope, b"")])) + 8)
            self._overheads[key] = known
        return known[2]

    def _requests(self, spans: Sequence[Any]) -> Iterator[list[tuple[Any, Any, bytes]]]:
        """The batch's encoded spans, a list per request (within the byte bound: the
        spans' own bytes and, once per group in the request, its resource and scope)."""
        limit = self._max_bytes
        request: list[tuple[Any, Any, bytes]] = []
        groups: set[tuple[int, int]] = set()
        size = 0
        first = True
        for encoded in self._encoded(spans):
            resource, scope, data = encoded
            key = (id(resource), id(scope))
            overhead = 0 if key in groups else self._overhead(resource, scope)
            if request and size + len(data) + overhead > limit:
                yield request
                request, groups, size, first = [], set(), 0, False
                overhead = self._overhead(resource, scope)  # the new request's group
            groups.add(key)
            request.append(encoded)
            size += len(data) + overhead
        if request or first:  # an empty batch is an empty request, as the SDK's
            yield request

    def _encode(self, request: list[tuple[Any, Any, bytes]]) -> Iterator[EncodedSpans]:
        """``request`` encoded; halved until each part is within the bound (its resource
        and scope count too), unless a part holds one span."""
        data = encode_request(request)
        if len(data) <= self._max_bytes or len(request) < 2:
            yield EncodedSpans(data, len(request))
            return
        half = len(request) // 2
        yield from self._encode(request[:half])
        yield from self._encode(request[half:])

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        outcome = SpanExportResult.SUCCESS
        requests = (part for request in self._requests(spans) for part in self._encode(request))
        while True:
            try:
                encoded = next(requests, None)
            except Exception as error:  # as the SDK exporter: the rest of the batch fails
                logger.error("Failed to encode span batch: %s", error)
                return SpanExportResult.FAILURE
            if encoded is None:
                return outcome
            if self._inner.export(encoded) is not SpanExportResult.SUCCESS:  # type: ignore[arg-type]
                outcome = SpanExportResult.FAILURE

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._inner.force_flush(timeout_millis)

    def shutdown(self) -> None:
        self._inner.shutdown()
