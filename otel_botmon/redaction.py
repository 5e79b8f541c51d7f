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
- :func:`redact_url`, :func:`redact_headers`, :func:`redact_text`,
  :func:`redact_attributes` and :func:`redact_labels` apply it; none of them raises on
  odd input.
- :class:`RedactingSpanProcessor` applies it to finished spans (name, attributes, events,
  status) before they reach an exporter, on the thread that ends the span;
  :class:`RedactingSpanExporter` does the same on the exporting thread (what
  ``configure()`` uses in front of OTLP, so the bot's thread does not pay for it).

Cost is linear in the text and bounded: a text is cut to 16 KiB before it is scanned, a
span's strings share one budget (64 KiB, 2,048 separators), and what lies past a budget
is cut, never emitted unscanned (see :mod:`otel_botmon._redact_scan`). A short text is
redacted once and remembered, so the same message is not scanned again.

Every function here is safe to call from any thread.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any, Final
from urllib.parse import quote, quote_plus, unquote_plus

from opentelemetry.util.types import AttributeValue

from otel_botmon._redact_scan import (
    MAX_SEPARATORS,
    MAX_TEXT_CHARS,
    REDACTED,
    Budget,
    cut_partial_secret,
    redact_pairs,
    redact_url_credentials,
    scrub_literals,
    truncation_note,
)
from otel_botmon.exchanges import all_exact_secret_names, all_secret_names

__all__ = [
    "MAX_TEXT_CHARS",
    "MIN_SECRET_LENGTH",
    "REDACTED",
    "RedactingSpanExporter",
    "RedactingSpanProcessor",
    "add_sensitive_keys",
    "attributes_are_clean",
    "forget_secrets",
    "is_sensitive_key",
    "redact_attributes",
    "redact_headers",
    "redact_labels",
    "redact_span",
    "redact_text",
    "redact_url",
    "redacted_changes",
    "register_secret",
]

# Secrets shorter than this would redact ordinary words and numbers out of every text.
MIN_SECRET_LENGTH: Final = 4

# Normalized names (see _normalize). A name is sensitive when it equals or ends with one.
_DEFAULT_SENSITIVE_KEYS: Final[frozenset[str]] = frozenset(
    {
        # generic query/JSON/config names
        "signature", "apikey", "apisecret", "secret", "secretkey", "privatekey",
        "token", "passphrase", "password", "passwd", "pwd", "credential", "credentials",
        "authorization", "cookie", "sessionid", "mnemonic", "seedphrase",
        # exchange key headers: Binance, OKX, KuCoin, Bybit, Coinbase, Kraken, Gate.io
        "xmbxapikey", "okaccesskey", "okaccesssign", "okaccesspassphrase",
        "kcapikey", "kcapisign", "kcapipassphrase",
        "accesskey", "accesssign", "apisign", "sign", "key",
        # Binance user-data stream key; HTX (Huobi) signed-query key id
        "listenkey", "accesskeyid",
    }
) | frozenset(  # every exchange's key/signature names (otel_botmon.exchanges)
    n.lower().replace("-", "").replace("_", "").replace(".", "")
    for n in all_secret_names() | all_exact_secret_names()
)
# Too short to match as a suffix ("sign" in "design", "key" in "monkey"): whole names only.
_EXACT_ONLY: Final[frozenset[str]] = frozenset({"sign", "pwd", "key"}) | frozenset(
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
# Redacted short texts (and their redacted forms, mapped to themselves): a message seen
# again, or a value redacted once by a hook and again by the span processor, is a lookup.
_TEXT_CACHE_SIZE: Final = 2048
_TEXT_CACHE_MAX_CHARS: Final = 2048
_text_cache: dict[str, str] = {}
# Plans for query shapes (see _redact_query): a bot's requests have a few dozen shapes.
_SHAPE_CACHE_SIZE: Final = 512
_SHAPE_MAX_CHARS: Final = 1024
_shape_cache: dict[str, tuple[tuple[int, str], ...]] = {}
_QUERY_VALUES: Final = re.compile(r"=[^&]*")
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


def _forget_cached() -> None:
    _key_cache.clear()
    _plain_keys.clear()
    _text_cache.clear()
    _shape_cache.clear()


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
        _forget_cached()


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
    global _secrets
    forms = {value, quote(value, safe=""), quote_plus(value, safe="")}
    with _lock:
        _secrets = tuple(sorted(set(_secrets) | forms, key=len, reverse=True))
        _forget_cached()


def forget_secrets() -> None:
    """Drop every registered literal secret and extra key (tests use this to isolate)."""
    global _secrets, _extra_keys
    with _lock:
        _secrets = ()
        _extra_keys = frozenset()
        _forget_cached()


def _redact_str(text: str, budget: Budget) -> str:
    """The one place text is redacted: cut to the budget, literals, pairs, credentials.

    Returns ``text`` itself when nothing changed. Short results are cached.
    """
    cached = _text_cache.get(text)
    if cached is not None:
        return cached
    limit = min(MAX_TEXT_CHARS, budget.chars)
    out = text
    cut = 0
    if len(text) > limit:
        cut = len(text) - max(limit, 0)
        out = text[:max(limit, 0)]
    budget.chars -= len(out)
    truncated_before = budget.truncated
    secrets = _secrets
    if secrets:
        out = scrub_literals(out, secrets)
        if cut:
            out = cut_partial_secret(out, secrets)
    if "=" in out or ":" in out or "%" in out:
        out = redact_pairs(out, is_sensitive_key, budget)
    if "@" in out:
        out = redact_url_credentials(out)
    if cut:
        budget.truncated += cut
        out += truncation_note(cut)
    if len(text) <= _TEXT_CACHE_MAX_CHARS and budget.truncated == truncated_before:
        if len(_text_cache) >= _TEXT_CACHE_SIZE:
            _text_cache.clear()
        _text_cache[text] = out
        _text_cache[out] = out
    return out


def _as_text(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("latin-1")
    try:
        return str(value)
    except Exception:  # a broken __str__ must not break redaction
        return f"<unprintable {type(value).__name__}>"


def redact_text(text: object) -> str:
    """Free text (an error message, a log line, a repr) with secrets replaced.

    Redacts values of sensitive ``key=value``, ``key: value`` / ``"key": "value"`` and
    URL-encoded ``key%3Dvalue`` pairs (keeping an auth scheme such as ``Bearer``), URL
    credentials, and every literal registered with :func:`register_secret`. A text
    longer than :data:`MAX_TEXT_CHARS` is cut to that length first (with a note saying
    how much was left out). Never raises; non-strings are ``str()``-ed.
    """
    s = _as_text(text)
    if not s:
        return s
    return _redact_str(s, Budget(MAX_TEXT_CHARS, MAX_SEPARATORS))


def _query_plan(shape: str) -> tuple[tuple[int, str], ...]:
    """For a query's shape (its values removed): (index, replacement) of every parameter
    whose value is a secret. A bare flag (no ``=``) has no value to redact."""
    plan = []
    for i, part in enumerate(shape.split("&")):
        key, eq, _ = part.partition("=")
        if eq and is_sensitive_key(unquote_plus(key) if "%" in key or "+" in key else key):
            plan.append((i, key + "=" + REDACTED))
    return tuple(plan)


def _redact_query_full(query: str) -> str:
    """The reference: every parameter's name looked at (what the fast path must equal)."""
    if not query:
        return query
    parts = query.split("&")
    plan = _query_plan("&".join(part.partition("=")[0] + ("=" if "=" in part else "")
                                for part in parts))
    for i, replacement in plan:
        parts[i] = replacement
    return "&".join(parts) if plan else query


def _redact_query(query: str) -> str:
    """Replace the values of sensitive parameters, keeping everything else byte for byte.

    This runs for every parameter of every instrumented request, and a bot sends the
    same few parameter lists again and again with new values (a signed request has a
    fresh timestamp and signature each time). So the query's shape (names and ``=``
    kept, values removed, by one C-level substitution) is looked up in a bounded cache
    of plans saying which parameters to replace; names are examined once per shape.
    """
    if not query:
        return query
    shape = _QUERY_VALUES.sub("=", query) if "=" in query else query
    plan = _shape_cache.get(shape)
    if plan is None:
        plan = _query_plan(shape)
        if len(shape) <= _SHAPE_MAX_CHARS:
            if len(_shape_cache) >= _SHAPE_CACHE_SIZE:
                _shape_cache.clear()
            _shape_cache[shape] = plan
    if not plan:
        return query
    parts = query.split("&")
    for i, replacement in plan:
        parts[i] = replacement
    return "&".join(parts)


def _redact_url_str(text: str, budget: Budget) -> str:
    if "?" not in text and "#" not in text and "@" not in text:
        return _redact_str(text, budget) if _secrets or "%" in text else text
    cached = _text_cache.get(text)
    if cached is not None:
        return cached
    if (len(text) <= MAX_TEXT_CHARS and not _secrets and "@" not in text
            and "#" not in text and "%" not in text):
        # The common URL, scheme://host/path?query: only its query can hold a secret.
        budget.chars -= len(text)
        head, _, query = text.partition("?")
        redacted = _redact_query(query)
        # A URL without secret repeats (market data polled): remembered as it is. A
        # signed one is unique: only its redacted form is, for a second pass (see below).
        out = text if redacted is query else head + "?" + redacted
        if len(out) <= _TEXT_CACHE_MAX_CHARS:
            if len(_text_cache) >= _TEXT_CACHE_SIZE:
                _text_cache.clear()
            _text_cache[out] = out
        return out
    cut = 0
    original = text
    budget.chars -= min(len(text), MAX_TEXT_CHARS)
    if len(text) > MAX_TEXT_CHARS:
        cut = len(text) - MAX_TEXT_CHARS
        text = text[:MAX_TEXT_CHARS]
    # Plain string surgery rather than urlsplit/urlunsplit: it is several times faster
    # (this runs for every instrumented request) and keeps the URL byte for byte.
    head, hash_sep, fragment = text.partition("#")
    before_query, query_sep, query = head.partition("?")
    scheme_end = before_query.find("://") if "@" in before_query else -1
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
    out = before_query + query_sep + query + hash_sep + fragment
    secrets = _secrets
    if secrets:
        out = scrub_literals(out, secrets)
        if cut:
            out = cut_partial_secret(out, secrets)
    if "%" in out:  # a URL inside a parameter: redirect=https%3A...%3Fsignature%3D...
        out = redact_pairs(out, is_sensitive_key, budget)
    if cut:
        budget.truncated += cut
        return out + truncation_note(cut)
    if out == original:
        out = original
    # Signed URLs are unique: only the redacted form is remembered, so that a URL already
    # redacted by an instrumentation hook is not scanned again by the span processor.
    if len(out) <= _TEXT_CACHE_MAX_CHARS:
        if len(_text_cache) >= _TEXT_CACHE_SIZE:
            _text_cache.clear()
        _text_cache[out] = out
    return out


def redact_url(url: object) -> str:
    """The URL as a string with credentials, sensitive query values and secrets replaced.

    ``https://user:pw@host/p?symbol=X&signature=abc`` becomes
    ``https://REDACTED:REDACTED@host/p?symbol=X&signature=REDACTED``. Parameters in the
    fragment are treated like the query (OAuth puts tokens there), and so are
    URL-encoded parameters nested in a parameter's value. Accepts ``str``, ``bytes`` or
    anything with a ``__str__`` such as ``httpx.URL``. Never raises.
    """
    return _redact_url_str(_as_text(url), Budget(MAX_TEXT_CHARS, MAX_SEPARATORS))


def _header_items(headers: object) -> Iterable[tuple[Any, Any]]:
    if hasattr(headers, "multi_items"):  # httpx.Headers keeps repeated headers apart
        items: Iterable[tuple[Any, Any]] = headers.multi_items()
        return items
    if isinstance(headers, Mapping):
        return headers.items()
    if isinstance(headers, Iterable):
        return headers
    return ()


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
            name = _as_text(raw_name)
            value = REDACTED if is_sensitive_key(name) else redact_text(raw_value)
            result[name] = f"{result[name]}, {value}" if name in result else value
    except (TypeError, ValueError):
        return result
    return result


def redact_labels(labels: Mapping[Any, Any] | None) -> dict[str, str]:
    """Alert or notification labels as strings: the value of a sensitive name
    (``api_key``) becomes ``"REDACTED"``, every other value is redacted as text, and so
    is every name. Never raises."""
    if not labels:
        return {}
    result: dict[str, str] = {}
    for raw_key, raw_value in labels.items():
        key = redact_text(raw_key)
        result[key] = REDACTED if is_sensitive_key(key) else redact_text(raw_value)
    return result


def _redact_value(key: str, value: AttributeValue, budget: Budget) -> AttributeValue:
    """The redacted value (the same object when nothing changed)."""
    if is_sensitive_key(key):
        if isinstance(value, (list, tuple)):
            return tuple(REDACTED for _ in value)
        return REDACTED
    if isinstance(value, str):
        return _redact_url_str(value, budget) if key in _URL_KEYS else _redact_str(value, budget)
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], str):
        redacted = tuple(_redact_str(v, budget) if isinstance(v, str) else v for v in value)
        return value if redacted == tuple(value) else redacted
    return value


def _redact_map(
    attributes: Mapping[str, Any], budget: Budget
) -> dict[str, AttributeValue] | None:
    """A redacted copy of the attributes, or None when redaction changes nothing."""
    out: dict[str, AttributeValue] | None = None
    # Runs for every exported span, so the common case (a known harmless key with a
    # number or a plain string, no registered secrets) is decided inline.
    no_literals = not _secrets
    plain = _plain_keys
    for key, value in attributes.items():
        kind = type(value)
        if no_literals and key in plain:
            if kind is str:
                if "=" not in value and ":" not in value and "%" not in value:
                    continue
            elif kind is int or kind is float or kind is bool:
                continue
        if kind is str and key in _URL_KEYS and _key_cache.get(key) is False:
            redacted: AttributeValue = _redact_url_str(value, budget)
        else:
            redacted = _redact_value(key, value, budget)
        if redacted is not value and redacted != value:
            if out is None:
                out = dict(attributes)
            out[key] = redacted
    return out


def redact_attributes(attributes: Mapping[str, AttributeValue] | None) -> dict[str, AttributeValue]:
    """A new attribute dict: sensitive keys get ``"REDACTED"``, URL attributes
    (``url.full``, ``http.url`` ...) go through :func:`redact_url`, every other string
    through :func:`redact_text`. Non-string values pass unchanged. Never raises."""
    if not attributes:
        return {}
    found = _redact_map(attributes, Budget())
    return dict(attributes) if found is None else found


def attributes_are_clean(attributes: Mapping[str, object] | None) -> bool:
    """Whether :func:`redact_attributes` would leave these attributes as they are
    (no copy is made when they are). Never raises."""
    return not attributes or _redact_map(attributes, Budget()) is None


def redacted_changes(attributes: Mapping[str, AttributeValue] | None) -> dict[str, AttributeValue]:
    """Only the attributes that redaction changes, with their redacted values (``{}``
    when there is nothing to redact): what to ``span.set_attributes()`` to scrub a live
    span. Never raises."""
    if not attributes:
        return {}
    found = _redact_map(attributes, Budget())
    if found is None:
        return {}
    return {key: value for key, value in found.items() if value is not attributes.get(key)}


# Span redaction lives next door (same budget and caches) and is re-exported here.
from otel_botmon._redact_span import (  # noqa: E402  (it imports this module)
    RedactingSpanExporter,
    RedactingSpanProcessor,
    redact_span,
)
