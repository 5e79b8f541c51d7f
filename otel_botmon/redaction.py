"""Keep secrets out of everything otel_botmon emits: URLs, headers, text and span data.

Exchange APIs authenticate with query parameters (``signature=``), headers
(``X-MBX-APIKEY``, ``OK-ACCESS-SIGN`` ...) and shared secrets that end up in error
messages. This module decides what is sensitive and replaces it with ``"REDACTED"``:

- :func:`is_sensitive_key` tells whether a parameter, header or attribute name names a
  secret (case-insensitive, ``-``/``_``/``.`` ignored, so ``api_key``, ``API-KEY`` and
  ``apiKey`` are one name; a name that *ends* with a sensitive name, such as
  ``access_token`` or ``http.request.header.x_mbx_apikey``, is sensitive too).
- :func:`add_sensitive_keys` extends that list; :func:`register_secret` adds literal
  values (an API secret, an SMTP password, a webhook URL) that are scrubbed from any text.
- :func:`redact_url`, :func:`redact_headers`, :func:`redact_text` and
  :func:`redact_attributes` apply it; none of them raises on odd input.
- :class:`RedactingSpanProcessor` applies it to finished spans (name, attributes, events,
  status) before they reach an exporter.

Every function here is safe to call from any thread.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any, Final
from urllib.parse import quote, quote_plus, unquote_plus

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.trace import Status
from opentelemetry.util.types import AttributeValue

from otel_botmon._internal import report_internal_error
from otel_botmon._span_processing import DelegatingSpanProcessor
from otel_botmon.exchanges import all_exact_secret_names, all_secret_names

__all__ = [
    "MIN_SECRET_LENGTH",
    "REDACTED",
    "RedactingSpanProcessor",
    "add_sensitive_keys",
    "attributes_are_clean",
    "forget_secrets",
    "is_sensitive_key",
    "redact_attributes",
    "redact_headers",
    "redact_span",
    "redact_text",
    "redact_url",
    "redacted_changes",
    "register_secret",
]

REDACTED: Final = "REDACTED"

# Secrets shorter than this would redact ordinary words and numbers out of every text.
MIN_SECRET_LENGTH: Final = 4

# Normalized names (see _normalize). A name is sensitive when it equals or ends with one.
_DEFAULT_SENSITIVE_KEYS: Final[frozenset[str]] = frozenset(
    {
        # generic query/JSON/config names
        "signature", "apikey", "apisecret", "secret", "secretkey", "privatekey",
        "token", "passphrase", "password", "passwd", "pwd", "credential", "credentials",
        "authorization", "cookie", "sessionid",
        # exchange key headers: Binance, OKX, KuCoin, Bybit, Coinbase, Kraken
        "xmbxapikey", "okaccesskey", "okaccesssign", "okaccesspassphrase",
        "kcapikey", "kcapisign", "kcapipassphrase",
        "accesskey", "accesssign", "apisign", "sign",
    }
) | frozenset(  # every exchange's key/signature names (otel_botmon.exchanges)
    n.lower().replace("-", "").replace("_", "").replace(".", "")
    for n in all_secret_names() | all_exact_secret_names()
)
# "sign" alone would match "design"; it is only sensitive as a whole name.
_EXACT_ONLY: Final[frozenset[str]] = frozenset({"sign", "pwd"}) | frozenset(
    n.lower() for n in all_exact_secret_names()
)

_lock = threading.Lock()
# Span attributes repeat the same few keys; caching the answer keeps redaction cheap.
_KEY_CACHE_SIZE: Final = 4096
_key_cache: dict[str, bool] = {}
# Keys known to be neither sensitive nor URL-valued: their plain values need no parsing.
_plain_keys: set[str] = set()
_extra_keys: frozenset[str] = frozenset()
_secrets: tuple[str, ...] = ()  # longest first, so a secret containing another goes first
_secret_pattern: re.Pattern[str] | None = None

# key=value in query strings and free text; the value stops at a separator or quote.
_QUERY_PAIR: Final = re.compile(r"(?P<key>[A-Za-z0-9_.\-%]+)=(?P<value>[^&\s#\"'<>,;]*)")
# "key": "value", key: value (headers, JSON, dict reprs); an auth scheme word is kept.
_COLON_PAIR: Final = re.compile(
    r"(?P<q1>[\"']?)(?P<key>[A-Za-z0-9_.\-]+)(?P=q1)(?P<sep>\s*:\s*)(?P<q2>[\"']?)"
    r"(?P<scheme>(?:Bearer|Basic|Token|Digest)\s+)?(?P<value>[^\s\"',;}\]]+)"
)
_URL_CREDENTIALS: Final = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*)://[^\s/@:]+:[^\s/@]+@")
_URL_KEYS: Final[frozenset[str]] = frozenset(
    {"url.full", "http.url", "url.query", "http.target", "url.original", "server.url"}
)


def _normalize(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "").replace(".", "")


def _matches(normalized: str, keys: Iterable[str]) -> bool:
    for key in keys:
        if normalized == key:
            return True
        if key not in _EXACT_ONLY and normalized.endswith(key):
            return True
    return False


def _sensitive(normalized: str) -> bool:
    return _matches(normalized, _DEFAULT_SENSITIVE_KEYS) or _matches(normalized, _extra_keys)


def is_sensitive_key(name: str) -> bool:
    """Whether a query parameter, header, config or attribute name names a secret.

    Case and the separators ``-``, ``_`` and ``.`` are ignored; a name ending with a
    sensitive name counts (``access_token``, ``smtp_password``). Never raises: a
    non-string is not sensitive.
    """
    if not isinstance(name, str) or not name:
        return False
    cached = _key_cache.get(name)
    if cached is not None:
        return cached
    found = _sensitive(_normalize(name))
    if not found and "." in name:  # attribute keys: http.request.header.<name>
        found = _sensitive(_normalize(name.rsplit(".", 1)[1]))
    if len(_key_cache) >= _KEY_CACHE_SIZE:  # bounded: attribute keys are few, URLs are not
        _key_cache.clear()
        _plain_keys.clear()
    _key_cache[name] = found
    if not found and name not in _URL_KEYS:
        _plain_keys.add(name)
    return found


def add_sensitive_keys(*names: str) -> None:
    """Treat these parameter/header names as secrets from now on, process-wide.

    Raises:
        TypeError: a name is not a string.
        ValueError: a name is empty once ``-``, ``_`` and ``.`` are removed.
    """
    normalized = []
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"add_sensitive_keys: expected str names, got {type(name).__name__}")
        key = _normalize(name)
        if not key:
            raise ValueError(f"add_sensitive_keys: name {name!r} is empty after normalization")
        normalized.append(key)
    global _extra_keys
    with _lock:
        _extra_keys = _extra_keys | frozenset(normalized)
        _key_cache.clear()
        _plain_keys.clear()


def register_secret(value: str) -> None:
    """Scrub this literal value (and its URL-encoded forms) from every redacted text.

    Use it for values that have no telltale name around them: an exchange API secret,
    an SMTP password, a Slack webhook URL, a Telegram bot token.

    Raises:
        TypeError: ``value`` is not a string.
        ValueError: ``value`` is shorter than 4 characters (it would redact ordinary text).
    """
    if not isinstance(value, str):
        raise TypeError(f"register_secret: expected a str secret, got {type(value).__name__}")
    if len(value) < MIN_SECRET_LENGTH:
        raise ValueError(
            f"register_secret: a secret shorter than {MIN_SECRET_LENGTH} characters "
            "would redact ordinary text; refusing it"
        )
    global _secrets, _secret_pattern
    forms = {value, quote(value, safe=""), quote_plus(value, safe="")}
    with _lock:
        merged = sorted(set(_secrets) | forms, key=len, reverse=True)
        _secrets = tuple(merged)
        _secret_pattern = re.compile("|".join(re.escape(s) for s in merged))


def forget_secrets() -> None:
    """Drop every registered literal secret and extra key (tests use this to isolate)."""
    global _secrets, _secret_pattern, _extra_keys
    with _lock:
        _secrets = ()
        _secret_pattern = None
        _extra_keys = frozenset()
        _key_cache.clear()
        _plain_keys.clear()


def _scrub_literals(text: str) -> str:
    pattern = _secret_pattern
    if pattern is None:
        return text
    return pattern.sub(REDACTED, text)


def _redact_query(query: str) -> str:
    """Replace the values of sensitive parameters, keeping everything else byte for byte."""
    if not query:
        return query
    parts = query.split("&")
    for i, part in enumerate(parts):
        key, sep, _value = part.partition("=")
        if not sep:
            continue
        plain = unquote_plus(key) if "%" in key or "+" in key else key
        if is_sensitive_key(plain):
            parts[i] = f"{key}={REDACTED}"
    return "&".join(parts)


def redact_url(url: object) -> str:
    """The URL as a string with credentials, sensitive query values and secrets replaced.

    ``https://user:pw@host/p?symbol=X&signature=abc`` becomes
    ``https://REDACTED:REDACTED@host/p?symbol=X&signature=REDACTED``. Parameters in the
    fragment are treated like the query (OAuth puts tokens there). Accepts ``str``,
    ``bytes`` or anything with a ``__str__`` such as ``httpx.URL``; text that does not
    parse as a URL is redacted as free text. Never raises.
    """
    text = url.decode("latin-1") if isinstance(url, bytes) else str(url)
    if "?" not in text and "#" not in text and "@" not in text:
        return _scrub_literals(text)
    # Plain string surgery rather than urlsplit/urlunsplit: it is several times faster
    # (this runs for every instrumented request) and keeps the URL byte for byte.
    head, hash_sep, fragment = text.partition("#")
    before_query, query_sep, query = head.partition("?")
    scheme_end = before_query.find("://")
    if scheme_end >= 0:
        start = scheme_end + 3
        end = before_query.find("/", start)
        end = len(before_query) if end < 0 else end
        authority = before_query[start:end]
        if "@" in authority:
            host = authority.rpartition("@")[2]
            before_query = (
                f"{before_query[:start]}{REDACTED}:{REDACTED}@{host}{before_query[end:]}"
            )
    if query_sep:
        query = _redact_query(query)
    if hash_sep and "=" in fragment:
        fragment = _redact_query(fragment)
    return _scrub_literals(before_query + query_sep + query + hash_sep + fragment)


def _header_items(headers: object) -> Iterable[tuple[Any, Any]]:
    if hasattr(headers, "multi_items"):  # httpx.Headers keeps repeated headers apart
        items: Iterable[tuple[Any, Any]] = headers.multi_items()
        return items
    if isinstance(headers, Mapping):
        return headers.items()
    if isinstance(headers, Iterable):
        return headers
    return ()


def _as_str(value: object) -> str:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("latin-1")
    return str(value)


def redact_headers(headers: object) -> dict[str, str]:
    """A new dict of the headers with sensitive values replaced by ``"REDACTED"``.

    Accepts a mapping, ``httpx.Headers`` or an iterable of ``(name, value)`` pairs with
    ``str`` or ``bytes`` items. Header names keep their spelling; repeated headers are
    joined with ``", "``. Values of other headers are scrubbed of registered secrets.
    Never raises: unusable input gives ``{}``.
    """
    result: dict[str, str] = {}
    try:
        for raw_name, raw_value in _header_items(headers):
            name = _as_str(raw_name)
            value = REDACTED if is_sensitive_key(name) else redact_text(_as_str(raw_value))
            result[name] = f"{result[name]}, {value}" if name in result else value
    except (TypeError, ValueError):
        return result
    return result


def _redact_query_pair(match: re.Match[str]) -> str:
    key = match.group("key")
    try:
        plain_key = unquote_plus(key)
    except ValueError:  # pragma: no cover - unquote_plus is lenient
        plain_key = key
    if is_sensitive_key(plain_key) and match.group("value"):
        return f"{key}={REDACTED}"
    return match.group(0)


def _redact_colon_pair(match: re.Match[str]) -> str:
    if not is_sensitive_key(match.group("key")):
        return match.group(0)
    start, _end = match.span("value")
    whole_start = match.start()
    return match.group(0)[: start - whole_start] + REDACTED


def redact_text(text: object) -> str:
    """Free text (an error message, a log line, a repr) with secrets replaced.

    Redacts values of sensitive ``key=value`` and ``key: value`` / ``"key": "value"``
    pairs (keeping an auth scheme such as ``Bearer``), URL credentials, and every literal
    registered with :func:`register_secret`. Never raises; non-strings are ``str()``-ed.
    """
    s = text if isinstance(text, str) else _as_str(text)
    if not s:
        return s
    s = _scrub_literals(s)
    if "=" in s:
        s = _QUERY_PAIR.sub(_redact_query_pair, s)
    if ":" in s:
        s = _COLON_PAIR.sub(_redact_colon_pair, s)
    if "@" in s and "://" in s:
        s = _URL_CREDENTIALS.sub(rf"\g<scheme>://{REDACTED}:{REDACTED}@", s)
    return s



def _redact_value(key: str, value: AttributeValue) -> AttributeValue:
    if is_sensitive_key(key):
        if isinstance(value, (list, tuple)):
            return tuple(REDACTED for _ in value)
        return REDACTED
    if isinstance(value, str):
        return redact_url(value) if key in _URL_KEYS else redact_text(value)
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], str):
        return tuple(redact_text(v) for v in value)
    return value


def redact_attributes(attributes: Mapping[str, AttributeValue] | None) -> dict[str, AttributeValue]:
    """A new attribute dict: sensitive keys get ``"REDACTED"``, URL attributes
    (``url.full``, ``http.url`` ...) go through :func:`redact_url`, every other string
    through :func:`redact_text`. Non-string values pass unchanged. Never raises."""
    if not attributes:
        return {}
    return {key: _redact_value(key, value) for key, value in attributes.items()}


def _text_is_clean(text: str) -> bool:
    # Cheap checks first: most span strings have no '=' or ':' and no registered secret.
    pattern = _secret_pattern
    if pattern is not None and pattern.search(text) is not None:
        return False
    if "=" not in text and ":" not in text:
        return True
    return redact_text(text) == text


def _url_is_clean(url: str) -> bool:
    pattern = _secret_pattern
    if pattern is not None and pattern.search(url) is not None:
        return False
    if "?" not in url and "#" not in url and "@" not in url:
        return True
    return redact_url(url) == url


def _value_is_clean(key: str, value: object) -> bool:
    if is_sensitive_key(key):
        if isinstance(value, (list, tuple)):
            return all(v == REDACTED for v in value)
        return value == REDACTED
    if isinstance(value, str):
        return _url_is_clean(value) if key in _URL_KEYS else _text_is_clean(value)
    if isinstance(value, (list, tuple)):
        return all(_text_is_clean(v) for v in value if isinstance(v, str))
    return True


def _plainly_clean(key: str, value: object, no_literals: bool) -> bool:
    """The common case decided without calls: a known harmless key with a number or a
    short string that has nothing a secret could hide in."""
    if not no_literals or key not in _plain_keys:
        return False
    kind = type(value)
    if kind is str:
        return "=" not in value and ":" not in value  # type: ignore[operator]
    return kind is int or kind is float or kind is bool


def attributes_are_clean(attributes: Mapping[str, object] | None) -> bool:
    """Whether :func:`redact_attributes` would leave these attributes as they are
    (a fast check: no copy is made). Never raises."""
    if not attributes:
        return True
    # Runs for every exported span, so the common case (a known harmless key with a
    # number or a plain short string, no registered secrets) is decided inline.
    no_literals = _secret_pattern is None
    plain = _plain_keys
    for key, value in attributes.items():
        if no_literals and key in plain:
            kind = type(value)
            if kind is str:
                if "=" not in value and ":" not in value:  # type: ignore[operator]
                    continue
            elif kind is int or kind is float or kind is bool:
                continue
        if not _value_is_clean(key, value):
            return False
    return True


def redacted_changes(attributes: Mapping[str, AttributeValue] | None) -> dict[str, AttributeValue]:
    """Only the attributes that redaction changes, with their redacted values (``{}``
    when there is nothing to redact): what to ``span.set_attributes()`` to scrub a live
    span. Never raises."""
    changes: dict[str, AttributeValue] = {}
    if not attributes:
        return changes
    no_literals = _secret_pattern is None
    for key, value in attributes.items():
        if _plainly_clean(key, value, no_literals):
            continue
        redacted = _redact_value(key, value)
        if redacted != value:
            changes[key] = redacted
    return changes


def _span_attributes(span: ReadableSpan) -> Mapping[str, object] | None:
    # ``span.attributes`` is a read-only proxy of the SDK's BoundedAttributes, whose items()
    # goes through the MutableMapping machinery one key at a time; its plain dict is
    # several times faster to scan, and this runs for every span. Fallback: the public API.
    raw = getattr(span, "_attributes", None)
    inner = getattr(raw, "_dict", None)
    if type(inner) is dict:
        return inner
    return span.attributes


def _needs_redaction(span: ReadableSpan) -> bool:
    name = span.name
    if (_secret_pattern is not None or "=" in name or ":" in name) \
            and not _text_is_clean(name):
        return True
    if not attributes_are_clean(_span_attributes(span)):
        return True
    events = span.events
    if not events and span.status.description is None:
        return False
    for event in events:
        if not _text_is_clean(event.name) or not attributes_are_clean(event.attributes):
            return True
    description = span.status.description
    return description is not None and not _text_is_clean(description)


def redact_span(span: ReadableSpan) -> ReadableSpan:
    """The span itself when it carries no secret, else a redacted copy.

    Covers the span name, attributes, event names and attributes (an exception's message
    and stack trace) and the status description. Links and resource pass unchanged.
    """
    if not _needs_redaction(span):
        return span
    events = tuple(
        Event(
            name=redact_text(event.name),
            attributes=redact_attributes(event.attributes),
            timestamp=event.timestamp,
        )
        for event in span.events
    )
    status = span.status
    if status.description:
        status = Status(status.status_code, redact_text(status.description))
    return ReadableSpan(
        name=redact_text(span.name),
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=redact_attributes(span.attributes),
        events=events,
        links=span.links,
        kind=span.kind,
        status=status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


class RedactingSpanProcessor(DelegatingSpanProcessor):
    """Wraps the processor that exports spans so that it only ever sees redacted spans.

    ``RedactingSpanProcessor(BatchSpanProcessor(exporter))``: ``on_end`` hands the
    delegate :func:`redact_span`'s result; everything else is forwarded unchanged. If
    redaction itself fails the span is dropped rather than exported unredacted.
    """

    def on_end(self, span: ReadableSpan) -> None:
        try:
            if _needs_redaction(span):
                span = redact_span(span)
        except Exception as exc:  # never export what we could not check
            report_internal_error("redaction", exc)
            return
        self._delegate.on_end(span)
