"""Finished spans straight to OTLP protobuf bytes, with few Python operations per span.

The OTLP exporters build a protobuf message object per span, per attribute and per value
(``encode_spans``) and then serialize them: about 60 µs a span of a trade, on an export
thread that holds the GIL while the bot's thread waits for it. :func:`encode_spans` here
writes the same ``ExportTraceServiceRequest`` wire bytes directly: the resource and scope
are encoded once per batch, an attribute whose value is a string, bool or int is encoded
once and then looked up, a float attribute is a cached key prefix plus eight bytes.

The bytes parse to a message equal to the SDK encoder's for every span (the tests compare
them); fields are written in field-number order, as protobuf serializers do.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import chain
from operator import itemgetter
from typing import Any, Final

from opentelemetry.trace import SpanKind

logger = logging.getLogger("otel_botmon")

__all__ = [
    "SpanLayout", "encode_request", "encode_span", "encode_spans", "span_attributes",
    "span_field", "span_field_encoded", "status_field",
]

_DOUBLE: Final = struct.Struct("<d").pack
_FIXED64: Final = struct.Struct("<Q").pack
_FIXED32: Final = struct.Struct("<I").pack
_TIMES: Final = struct.Struct("<BQBQ").pack  # start and end time, each with its tag
_IDS: Final = struct.Struct(">BBQQBBQ").pack  # trace and span id, each with tag and length
_LOW64: Final = (1 << 64) - 1
# SpanFlags: the context-has-is-remote bit always, is-remote when the parent is remote.
_FLAGS_LOCAL: Final = b"\x85\x01" + _FIXED32(0x100)
_FLAGS_REMOTE: Final = b"\x85\x01" + _FIXED32(0x300)
_CACHE_LIMIT: Final = 4096


def _varint(value: int) -> bytes:
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_VARINTS: Final = [_varint(i) for i in range(256)]


def _len(value: int) -> bytes:
    if value < 256:
        return _VARINTS[value]
    if value < 0x4000:  # a span's length, mostly
        return bytes(((value & 0x7F) | 0x80, value >> 7))
    return _varint(value)


def _field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: ``tag``, the length, ``payload``."""
    return tag + _len(len(payload)) + payload


def _string(tag: bytes, text: str | None) -> bytes:
    """A string field, omitted when empty (proto3)."""
    if not text:
        return b""
    return _field(tag, text.encode("utf-8"))


def _uint(tag: bytes, value: int) -> bytes:
    return tag + _varint(value) if value else b""


# --- AnyValue ---------------------------------------------------------------------------


def _int64(value: int) -> bytes:
    if not -(1 << 63) <= value < (1 << 63):
        raise ValueError(f"Value out of range: {value}")
    return _varint(value & 0xFFFFFFFFFFFFFFFF)


def _any_value(value: Any) -> bytes:
    """AnyValue bytes for an attribute value, the SDK encoder's type order."""
    if value is None:
        return b""
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, str):
        return b"\x0a" + _len_str(value)
    if isinstance(value, int):
        return b"\x18" + _int64(value)
    if isinstance(value, float):
        return b"\x21" + _DOUBLE(value)
    if isinstance(value, bytes):
        return _field(b"\x3a", value) if value else b"\x3a\x00"
    if isinstance(value, Sequence):
        return _field(b"\x2a", b"".join(_field(b"\x0a", _any_value(v)) for v in value))
    if isinstance(value, Mapping):
        return _field(b"\x32", b"".join(
            _field(b"\x0a", _key_value(str(k), v)) for k, v in value.items()))
    raise TypeError(f"Invalid type {type(value)} of value {value}")


def _len_str(text: str) -> bytes:
    raw = text.encode("utf-8")
    return _len(len(raw)) + raw


def _key_value(key: str, value: Any) -> bytes:
    return _string(b"\x0a", key) + _field(b"\x12", _any_value(value))


class _Key:
    """One attribute key's encodings: the prefix of a double value, and each string,
    bool or int value seen with it (bounded)."""

    __slots__ = ("double_prefix", "others", "strings")

    def __init__(self, tag: bytes, key: str) -> None:
        key_value = _string(b"\x0a", key) + b"\x12\x09\x21"
        self.double_prefix = tag + _len(len(key_value) + 8) + key_value
        self.strings: dict[str, bytes] = {}
        self.others: dict[tuple[type, object], bytes] = {}


class _Attributes:
    """Encodes attribute maps as repeated KeyValue fields under one tag."""

    def __init__(self, tag: bytes) -> None:
        self._tag = tag
        self._keys: dict[str, _Key] = {}

    def encode(self, attributes: Mapping[str, Any] | None) -> bytes:
        if not attributes:
            return b""
        # BoundedAttributes iterates through the Mapping mixin: read its dict instead.
        return self.encode_items(getattr(attributes, "_dict", attributes).items())

    def encode_items(self, items: Iterable[tuple[str, Any]]) -> bytes:
        """The fields for (key, value) pairs, in their order."""
        keys = self._keys
        parts = []
        for key, value in items:
            slot = keys.get(key)
            if slot is None:
                slot = self._key(key)
            cls = value.__class__
            if cls is float:
                parts.append(slot.double_prefix + _DOUBLE(value))
                continue
            if cls is str:
                found = slot.strings.get(value)
                cache: dict[Any, bytes] | None = slot.strings
                cache_key: Any = value
            elif cls is bool or cls is int:
                cache_key = (cls, value)
                found = slot.others.get(cache_key)
                cache = slot.others
            else:
                found = cache = None
            if found is None:
                found = self._one(key, value)
                if found is None:
                    continue
                if cache is not None:
                    if len(cache) >= _CACHE_LIMIT:
                        cache.clear()
                    cache[cache_key] = found
            parts.append(found)
        return b"".join(parts)

    def double_prefix(self, key: str) -> bytes:
        """The bytes before the eight of a double value of ``key``."""
        slot = self._keys.get(key)
        return (slot if slot is not None else self._key(key)).double_prefix

    def _key(self, key: str) -> _Key:
        if len(self._keys) >= _CACHE_LIMIT:
            self._keys.clear()
        slot = self._keys[key] = _Key(self._tag, key)
        return slot

    def _one(self, key: str, value: Any) -> bytes | None:
        try:
            return _field(self._tag, _key_value(key, value))
        except Exception as error:  # the SDK encoder logs and skips such an attribute
            logger.exception("Failed to encode key %s: %s", key, error)
            return None


_SPAN_ATTRIBUTES: Final = _Attributes(b"\x4a")  # Span.attributes = 9
_NESTED_ATTRIBUTES: Final = {tag: _Attributes(tag) for tag in (b"\x0a", b"\x1a", b"\x22")}


def _picker(positions: Sequence[int]) -> Callable[[Sequence[Any]], tuple[Any, ...]]:
    """A function returning the items of a sequence at ``positions``, as a tuple."""
    if not positions:
        return lambda values: ()
    if len(positions) == 1:
        (only,) = positions
        return lambda values: (values[only],)
    return itemgetter(*positions)


_LAYOUT_TYPES: Final = frozenset({str, int, bool, float})


class SpanLayout:
    """The ``ScopeSpans.spans`` field of spans alike in all but their ids, times and float
    attributes: the same name, kind and status (without a description), no trace state,
    events, links or dropped counts, attributes with the same keys in the same order,
    the same value types and the same values except the floats (a trade's symbol, side,
    order type and outcome repeat; its prices and quantities do not). The fixed bytes are
    encoded once; :meth:`encode` packs ids, times and floats between them with two
    ``struct`` calls. The bytes are :func:`span_field_encoded`'s.
    """

    __slots__ = ("_consts", "_floats", "_heads", "_lasts", "_pack", "_pick_consts",
                 "_segments", "_types", "code", "kind")

    def __init__(self, name: str, kind: Any, code: Any, keys: Sequence[str],
                 values: Sequence[Any]) -> None:
        """Raises ValueError when the layout cannot hold such spans (another value
        type, or a value the encoder skips)."""
        types = tuple(map(type, values))
        if len(keys) != len(values) or not _LAYOUT_TYPES.issuperset(types):
            raise ValueError("only str, int, bool and float attributes have a layout")
        self.kind, self.code = kind, code
        kind_field = _KIND_FIELDS.get(id(kind))
        # name, kind and the start time's tag, then the start; the end's tag, then the end
        segments = [_name(name) + (kind_field if kind_field is not None
                                   else _KINDS[kind.value]) + b"\x39", b"\x41"]
        pending: list[bytes] = []
        for key, value, cls in zip(keys, values, types, strict=True):
            if cls is float:
                pending.append(_SPAN_ATTRIBUTES.double_prefix(key))
                segments.append(b"".join(pending))
                pending = []
                continue
            encoded = _SPAN_ATTRIBUTES.encode_items(((key, value),))
            if not encoded:
                raise ValueError(f"attribute {key!r} is not encoded")
            pending.append(encoded)
        status = status_field(code.value, None)
        fixed = b"".join(pending) + status
        self._types = types
        self._pick_consts = _picker([i for i, cls in enumerate(types) if cls is not float])
        self._consts = self._pick_consts(values)
        self._floats = _picker([i for i, cls in enumerate(types) if cls is float])
        self._segments = tuple(segments)
        # by the parent: none, local, remote (the flags differ, and a parent adds its id)
        self._lasts = (fixed + _FLAGS_LOCAL, fixed + _FLAGS_LOCAL, fixed + _FLAGS_REMOTE)
        self._pack = struct.Struct(
            "<" + f"{len(segments[0])}sQ{len(segments[1])}sQ"
            + "".join(f"{len(segment)}sd" for segment in segments[2:])
            + f"{len(fixed) + len(_FLAGS_LOCAL)}s").pack
        size = (28 + sum(map(len, segments)) + 16 + 8 * (len(segments) - 2)
                + len(fixed) + len(_FLAGS_LOCAL))
        self._heads = (b"\x12" + _len(size), b"\x12" + _len(size + 10))

    def encode(self, trace_id: int, span_id: int, parent: Any, start: int, end: int,
               values: Sequence[Any]) -> bytes | None:
        """The span's field, or None when ``values`` do not fit the layout (another
        type, or another fixed value)."""
        if tuple(map(type, values)) != self._types or self._pick_consts(values) != self._consts:
            return None
        segments = self._segments
        ids = _IDS(0x0A, 0x10, trace_id >> 64, trace_id & _LOW64, 0x12, 0x08, span_id)
        floats = self._floats(values)  # as many as the float segments: the types matched
        if parent is None:
            head, last = self._heads[0], self._lasts[0]
        else:
            ids += b"\x22\x08" + parent.span_id.to_bytes(8, "big")
            head, last = self._heads[1], self._lasts[2 if parent.is_remote else 1]
        return head + ids + self._pack(
            segments[0], start, segments[1], end,
            *chain.from_iterable(zip(segments[2:], floats, strict=True)), last)


# --- spans ------------------------------------------------------------------------------


_statuses: dict[tuple[int, str | None], bytes] = {}


def status_field(code: int, description: str | None) -> bytes:
    """The Span.status field for a status code's value and description."""
    key = (code, description)
    found = _statuses.get(key)
    if found is None:
        found = _field(b"\x7a", _string(b"\x12", description) + _uint(b"\x18", code))
        if len(_statuses) >= _CACHE_LIMIT:
            _statuses.clear()
        _statuses[key] = found
    return found


def _status(status: Any) -> bytes:
    if status is None:
        return b""
    return status_field(status.status_code.value, status.description)


def _event(event: Any) -> bytes:
    timestamp = event.timestamp
    body = b"".join((
        b"\x09" + _FIXED64(timestamp) if timestamp else b"",
        _string(b"\x12", event.name),
        _NESTED_ATTRIBUTES[b"\x1a"].encode(event.attributes),
        _uint(b"\x20", event.dropped_attributes),
    ))
    return _field(b"\x5a", body)


def _link(link: Any) -> bytes:
    context = link.context
    body = b"".join((
        b"\x0a\x10" + context.trace_id.to_bytes(16, "big"),
        b"\x12\x08" + context.span_id.to_bytes(8, "big"),
        _NESTED_ATTRIBUTES[b"\x22"].encode(link.attributes),
        _uint(b"\x28", link.dropped_attributes),
        b"\x35" + _FIXED32(0x300 if context.is_remote else 0x100),
    ))
    return _field(b"\x6a", body)


def _trace_state(trace_state: Any) -> bytes:
    if trace_state is None:
        return b""
    return _string(b"\x1a", ",".join([f"{key}={value}" for key, value in trace_state.items()]))


_names: dict[str, bytes] = {}


def _name(name: str) -> bytes:
    found = _names.get(name)
    if found is None:
        found = _string(b"\x2a", name)
        if len(_names) >= _CACHE_LIMIT:
            _names.clear()
        _names[name] = found
    return found


_KINDS: Final = [b"\x30" + bytes((kind + 1,)) for kind in range(5)]  # API value + 1
_KIND_FIELDS: Final = {id(kind): _KINDS[kind.value] for kind in SpanKind}  # members live on


def _fields(span: Any) -> tuple[Any, ...]:
    """What a Span message needs, read from the SDK's fields (its properties copy)."""
    try:
        return (span._context, span._parent, span._name, span._kind, span._start_time,
                span._end_time, span._attributes, span._events, span._links, span._status)
    except AttributeError:  # another ReadableSpan layout: the public properties
        return (span.context, span.parent, span.name, span.kind, span.start_time,
                span.end_time, span.attributes, span.events, span.links, span.status)


def encode_span(span: Any) -> bytes:
    """The ``ScopeSpans.spans`` field (tag, length, Span) for one finished span."""
    (context, parent, name, kind, start, end, attributes, events, links,
     status) = _fields(span)
    return span_field(
        context.trace_id, context.span_id, context.trace_state, parent, name, kind, start,
        end, attributes, getattr(attributes, "dropped", 0), events,
        getattr(events, "dropped", 0), links, getattr(links, "dropped", 0), _status(status))


def span_field(
    trace_id: int, span_id: int, trace_state: Any, parent: Any, name: str, kind: Any,
    start: int | None, end: int | None, attributes: Mapping[str, Any] | None,
    dropped_attributes: int, events: Sequence[Any], dropped_events: int,
    links: Sequence[Any], dropped_links: int, status: bytes,
) -> bytes:
    """The ``ScopeSpans.spans`` field (tag, length, Span) from a span's parts."""
    return span_field_encoded(
        trace_id, span_id, trace_state, parent, name, kind, start, end,
        _SPAN_ATTRIBUTES.encode(attributes) if attributes else b"", dropped_attributes,
        events, dropped_events, links, dropped_links, status)


def span_attributes(items: Iterable[tuple[str, Any]]) -> bytes:
    """The ``Span.attributes`` fields for (key, value) pairs (for :func:`span_field_encoded`)."""
    return _SPAN_ATTRIBUTES.encode_items(items)


def span_field_encoded(
    trace_id: int, span_id: int, trace_state: Any, parent: Any, name: str, kind: Any,
    start: int | None, end: int | None, attributes: bytes, dropped_attributes: int,
    events: Sequence[Any], dropped_events: int, links: Sequence[Any], dropped_links: int,
    status: bytes,
) -> bytes:
    """:func:`span_field` with the attributes already encoded (:func:`span_attributes`)."""
    parts = [_IDS(0x0A, 0x10, trace_id >> 64, trace_id & _LOW64, 0x12, 0x08, span_id)]
    if trace_state:
        parts.append(_trace_state(trace_state))
    if parent is not None:
        parts += (b"\x22\x08", parent.span_id.to_bytes(8, "big"))
    kind_field = _KIND_FIELDS.get(id(kind))  # an enum's .value is a Python-level lookup
    parts += (_name(name), kind_field if kind_field is not None else _KINDS[kind.value])
    if start and end:
        parts.append(_TIMES(0x39, start, 0x41, end))
    else:
        if start:
            parts.append(b"\x39" + _FIXED64(start))
        if end:
            parts.append(b"\x41" + _FIXED64(end))
    if attributes:
        parts.append(attributes)
    if dropped_attributes:
        parts.append(_uint(b"\x50", dropped_attributes))
    if events:
        parts.extend(_event(event) for event in events)
    if dropped_events:
        parts.append(_uint(b"\x60", dropped_events))
    if links:
        parts.extend(_link(link) for link in links)
    if dropped_links:
        parts.append(_uint(b"\x70", dropped_links))
    parts += (status,
              _FLAGS_REMOTE if parent is not None and parent.is_remote else _FLAGS_LOCAL)
    body = b"".join(parts)
    return b"\x12" + _len(len(body)) + body


# --- resource and scope (once per batch) ------------------------------------------------


def _resource(resource: Any) -> bytes:
    return _field(b"\x0a", _NESTED_ATTRIBUTES[b"\x0a"].encode(resource.attributes))


def _scope(scope: Any) -> bytes:
    if scope is None:
        return b"\x0a\x00"
    body = b"".join((
        _string(b"\x0a", scope.name),
        _string(b"\x12", scope.version),
        _NESTED_ATTRIBUTES[b"\x1a"].encode(scope.attributes),
    ))
    return _field(b"\x0a", body)


def _group(
    spans: Iterable[tuple[Any, Any, bytes]],
) -> list[tuple[Any, list[tuple[Any, list[bytes]]]]]:
    """Encoded spans by resource, then by scope, each group in order of first appearance
    and keyed by equality like the SDK's (hashing a Resource serializes it: done once
    per distinct object here, not once per span)."""
    groups: dict[int, tuple[Any, dict[int, tuple[Any, list[bytes]]]]] = {}
    canonical: dict[int, Any] = {}
    by_value: dict[Any, Any] = {}
    for resource, scope, span in spans:
        resource_key = canonical.get(id(resource))
        if resource_key is None:
            resource_key = canonical[id(resource)] = id(by_value.setdefault(resource, resource))
        scope_key = canonical.get(id(scope))
        if scope_key is None:
            scope_key = canonical[id(scope)] = id(by_value.setdefault(("scope", scope), scope))
        group = groups.get(resource_key)
        if group is None:
            group = groups[resource_key] = (by_value[resource], {})
        encoded = group[1].get(scope_key)
        if encoded is None:
            encoded = group[1][scope_key] = (by_value[("scope", scope)], [])
        encoded[1].append(span)
    return [(resource, list(scopes.values())) for resource, scopes in groups.values()]


def encode_spans(spans: Iterable[Any]) -> bytes:
    """The serialized ``ExportTraceServiceRequest`` for ``spans`` (finished spans).

    Grouped by resource, then by instrumentation scope, in order of first appearance,
    exactly like the SDK's ``encode_spans``.
    """
    return encode_request(
        (span.resource, span.instrumentation_scope or None, encode_span(span)) for span in spans)


def encode_request(spans: Iterable[tuple[Any, Any, bytes]]) -> bytes:
    """The serialized ``ExportTraceServiceRequest`` for (resource, scope or None, the
    :func:`span_field` bytes) triples."""
    out = []
    for resource, scopes in _group(spans):
        scope_spans = []
        for scope, encoded in scopes:
            body = b"".join((
                _scope(scope), *encoded,
                _string(b"\x1a", scope.schema_url if scope is not None else None),
            ))
            scope_spans.append(_field(b"\x12", body))
        body = b"".join((_resource(resource), *scope_spans,
                         _string(b"\x1a", resource.schema_url)))
        out.append(_field(b"\x0a", body))
    return b"".join(out)

