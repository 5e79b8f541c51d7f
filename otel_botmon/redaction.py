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
  status) before they reach an exporter, in place, on the thread that ends the span;
  :class:`RedactingSpanExporter` does the same on the exporting thread (what
  ``configure()`` uses in front of OTLP, so the bot's thread does not pay for it).
  Strings, bytes, and sequences and mappings of them are redacted; numbers pass.

Cost is linear in the text and bounded: a text is cut to 16 KiB before it is scanned, a
span's strings share one budget (64 KiB, 2,048 separators), and what lies past a budget
is cut, never emitted unscanned (see :mod:`otel_botmon._redact_scan`). Most of a span
costs a lookup: what an attribute key says about its value is decided once per key, and
short texts known to redact to themselves (symbols, public URLs, every redacted result)
are remembered, so the same text is not scanned twice. A URL whose query has a shape
seen before (a bot's signed requests) is matched in one pass of an expression built for
that shape (see :mod:`otel_botmon._redact_url`).

Every function here is safe to call from any thread.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any, Final
from urllib.parse import quote, quote_plus

from opentelemetry.util.types import AttributeValue

from otel_botmon._redact_scan import (
    MAX_SEPARATORS,
    MAX_TEXT_CHARS,
    REDACTED,
    Budget,
    cut_partial_secret,
    may_hold_pair,
    redact_pairs,
    redact_url_credentials,
    scrub_literals,
    truncation_note,
)
from otel_botmon._unicode import valid_text
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
    "is_registered_secret",
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

# Characters yarl (aiohttp's URLs) leaves unencoded in a query value and in a path.
_YARL_QUERY_SAFE: Final = "!$'()*,/:?@"
_YARL_PATH_SAFE: Final = "!$&'()*+,/:;=@"
# Secrets shorter than this would redact ordinary words and numbers out of every text.
MIN_SECRET_LENGTH: Final = 4
# A line of a multi-line secret scrubbed on its own: base64 (a PEM body's), this long at
# least; not its "-----BEGIN ...-----" lines or headers (Proc-Type: ...), which are
# ordinary words.
_MIN_SECRET_LINE: Final = 16
_BASE64_LINE: Final = re.compile(r"[A-Za-z0-9+/]+=*")

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
        # WebSocket logins: Bitfinex authSig, Coinbase jwt, Kraken Futures signed_challenge
        "authsig", "jwt", "signedchallenge",
    }
) | frozenset(  # every exchange's key/signature names (otel_botmon.exchanges)
    n.lower().replace("-", "").replace("_", "").replace(".", "")
    for n in all_secret_names() | all_exact_secret_names()
)
# Too short to match as a suffix ("sign" in "design", "key" in "monkey"): whole names only.
_EXACT_ONLY: Final[frozenset[str]] = frozenset({"sign", "pwd", "key"}) | frozenset(
    n.lower() for n in all_exact_secret_names()
)

# A name whose last word (after "-", "_", "." or a space) is one of these names a key or
# a signature, whatever comes before it: X-AGGR-KEY, request-sign, TAPI-MAC, x_sig. Only
# as a whole word ("monkey", "design" and "imac" are not), so it is safe for any name.
_SECRET_WORDS: Final[frozenset[str]] = frozenset({"key", "sign", "sig", "mac", "hmac"})
_WORD_SEPARATORS: Final = "-_. "

_lock = threading.Lock()
# Span attributes repeat the same few keys; caching the answer keeps redaction cheap.
_KEY_CACHE_SIZE: Final = 4096
_key_cache: dict[str, bool] = {}
_extra_keys: frozenset[str] = frozenset()
_secrets: tuple[str, ...] = ()  # longest first, so a secret containing another goes first
# The first characters of each secret, distinct: where none is found, no secret is
# (what the one-pass URL matcher searches for, see _redact_url.matched_url).
_SECRET_HEAD_CHARS: Final = 8
_secret_heads: tuple[str, ...] = ()
# What an attribute's key says about its value, decided once per key (_key_kind).
_PLAIN: Final = 0  # any text: scanned for name=value pairs (unless known clean)
_URL: Final = 1  # a URL: its query parameters and credentials
_SECRET: Final = 2  # the whole value is a secret
_key_kinds: dict[str, int] = {}
_plain_keys: set[str] = set()  # the keys of kind _PLAIN: one set lookup per attribute
_URL_KEYS: Final[frozenset[str]] = frozenset(
    {"url.full", "http.url", "url.query", "http.target", "url.original", "server.url"}
)
# Redacted short texts that changed: a message seen again is a lookup.
_TEXT_CACHE_SIZE: Final = 2048
_TEXT_CACHE_MAX_CHARS: Final = 2048
_text_cache: dict[str, str] = {}
# Short texts known to redact to themselves, as free text and as URLs: a span's repeated
# values (symbols, sides, public URLs) and every redacted result (so that a value
# redacted by an instrumentation hook is not scanned again by the span processor) are
# one set lookup. Cleared when full; replaced whenever a secret or a name is added.
#
# Registration races redaction on other threads: a redaction that read the old secrets
# must not leave what it concluded in a cache readers use afterwards. So registration
# sets the new secrets or names first and then *replaces* every cache object (never
# clears it); a redaction takes the cache objects it may write to before it reads the
# secrets or names. A redaction that raced a registration writes into caches nobody
# reads any more; one that started after it writes into the new ones with the new
# secrets. The hot path pays nothing for this: it reads the same globals as before.
_clean_texts: set[str] = set()
_clean_urls: set[str] = set()
_NO_TEXT: Final[frozenset[type]] = frozenset({int, float, bool, type(None)})
_MAX_DEPTH: Final = 8  # nesting of sequence and mapping attribute values


def _remember(clean: set[str], text: str) -> None:
    if len(text) <= _TEXT_CACHE_MAX_CHARS:
        if len(clean) >= _TEXT_CACHE_SIZE:
            clean.clear()
        clean.add(text)




def _normalize(name: str) -> str:
    # a space too: "api key", and "api+key" or "api%20key" in a query once unquoted
    return name.lower().replace("-", "").replace("_", "").replace(".", "").replace(" ", "")


def _matches(normalized: str, keys: Iterable[str]) -> bool:
    for key in keys:
        if normalized == key:
            return True
        if key not in _EXACT_ONLY and normalized.endswith(key):
            return True
    return False


def _sensitive(normalized: str) -> bool:
    return _matches(normalized, _DEFAULT_SENSITIVE_KEYS) or _matches(normalized, _extra_keys)


def _last_word_secret(name: str) -> bool:
    """Whether the last word of ``name`` (split at a separator, not at a case change)
    is a key or signature word, with some word before it (a lone ``key`` or ``sign``
    is in the names already)."""
    cut = max(name.rfind(c) for c in _WORD_SEPARATORS)
    return cut > 0 and name[cut + 1:].lower() in _SECRET_WORDS


def is_sensitive_key(name: str) -> bool:
    """Whether a query parameter, header, config or attribute name names a secret.

    Case, spaces and the separators ``-``, ``_`` and ``.`` are ignored; a name ending
    with a sensitive name counts (``access_token``, ``smtp_password``). Never raises: a
    non-string is not sensitive.
    """
    if not isinstance(name, str) or not name:
        return False
    cache = _key_cache  # before the names are read (see _clean_texts)
    cached = cache.get(name)
    if cached is not None:
        return cached
    found = _sensitive(_normalize(name)) or _last_word_secret(name)
    if not found and "." in name:  # attribute keys: http.request.header.<name>
        found = _sensitive(_normalize(name.rsplit(".", 1)[1]))
    if len(cache) >= _KEY_CACHE_SIZE:  # bounded: attribute keys are few, URLs are not
        cache.clear()
    cache[name] = found
    return found


def _key_kind(key: str) -> int:
    """What the attribute key ``key`` says about its value (cached per key)."""
    kinds, plain = _key_kinds, _plain_keys  # before the names are read (see _clean_texts)
    kind = kinds.get(key)
    if kind is None:
        kind = _SECRET if is_sensitive_key(key) else _URL if key in _URL_KEYS else _PLAIN
        if len(kinds) >= _KEY_CACHE_SIZE:
            kinds.clear()
            plain.clear()
        kinds[key] = kind
        if kind == _PLAIN:
            plain.add(key)
    return kind


def _forget_cached() -> None:
    """Replace every cache (called after the secrets or names changed; see _clean_texts)."""
    global _key_cache, _key_kinds, _plain_keys, _text_cache, _clean_texts, _clean_urls
    _key_cache, _key_kinds, _plain_keys = {}, {}, set()
    _text_cache, _clean_texts, _clean_urls = {}, set(), set()
    _redact_url.forget_cached()


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


_LOWER_HEX_ESCAPE: Final = re.compile(r"%[0-9A-F]{2}")


def _lower(escape: re.Match[str]) -> str:
    return escape.group().lower()


def register_secret(value: str) -> None:
    """Scrub this literal value (and its URL-encoded forms: urllib's, httpx's, yarl's in
    a query and in a path) from every redacted text.

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
    global _secrets, _secret_heads
    forms = {
        value, quote(value, safe=""), quote_plus(value, safe=""),
        quote(value),  # urllib's default: '/' kept
        # yarl (aiohttp) keeps these in a query value and in a path: the secret in a URL
        # the bot passed as params= or joined into a path
        quote_plus(value, safe=_YARL_QUERY_SAFE), quote(value, safe=_YARL_PATH_SAFE),
    }
    # the same with lower-case hex digits (%2b): what some clients and servers write
    forms |= {_LOWER_HEX_ESCAPE.sub(_lower, form) for form in forms if "%" in form}
    # A secret of several lines (a PEM private key) is quoted in other line endings, with
    # its newlines escaped (repr, JSON) or without its last one: each line of its body is
    # a secret of its own (not the "-----BEGIN ...-----" lines, which are public words)
    if "\n" in value or "\r" in value:
        forms |= {line for line in map(str.strip, value.splitlines())
                  if len(line) >= _MIN_SECRET_LINE and _BASE64_LINE.fullmatch(line)}
    with _lock:
        _secrets = tuple(sorted(set(_secrets) | forms, key=len, reverse=True))
        _secret_heads = tuple(sorted({s[:_SECRET_HEAD_CHARS] for s in _secrets}))
        _forget_cached()


def is_registered_secret(value: str) -> bool:
    """Whether :func:`register_secret` has this value (until :func:`forget_secrets`)."""
    return value in _secrets


def forget_secrets() -> None:
    """Drop every registered literal secret and extra key (tests use this to isolate)."""
    global _secrets, _secret_heads, _extra_keys
    with _lock:
        _secrets = ()
        _secret_heads = ()
        _extra_keys = frozenset()
        _forget_cached()


def _redact_str(text: str, budget: Budget) -> str:
    """The one place text is redacted: cut to the budget, literals, pairs, credentials.

    Returns ``text`` itself when nothing changed. Short results are cached.
    """
    clean, changed = _clean_texts, _text_cache  # before the secrets (see _clean_texts)
    if text in clean:
        return text
    cached = changed.get(text)
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
    if "=" in out or ":" in out or "%" in out or may_hold_pair(out):
        out = redact_pairs(out, is_sensitive_key, budget)
    if "@" in out:
        out = redact_url_credentials(out)
    if cut:
        budget.truncated += cut
        out += truncation_note(cut)
    if budget.truncated == truncated_before:
        if out is not text and len(text) <= _TEXT_CACHE_MAX_CHARS:
            if len(changed) >= _TEXT_CACHE_SIZE:
                changed.clear()
            changed[text] = out
        _remember(clean, out)
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
    how much was left out). The result is valid Unicode: a lone surrogate (bytes decoded
    with ``surrogateescape``) reads as U+FFFD. Never raises; non-strings are ``str()``-ed.
    """
    s = valid_text(_as_text(text))
    if not s:
        return s
    return _redact_str(s, Budget(MAX_TEXT_CHARS, MAX_SEPARATORS))


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


def _redact_value(kind: int, value: Any, budget: Budget, depth: int = 0) -> Any:
    """The redacted attribute value (the same object when nothing changed): a string,
    bytes, or a sequence or mapping of them (the SDK keeps nested ones)."""
    if kind == _SECRET:
        return (REDACTED,) * len(value) if isinstance(value, (list, tuple)) else REDACTED
    if isinstance(value, str):
        return redact_url_str(value, budget) if kind == _URL else _redact_str(value, budget)
    if type(value) in _NO_TEXT:
        return value
    if depth >= _MAX_DEPTH:  # deeper than any real attribute: never emitted unscanned
        return REDACTED
    if isinstance(value, (bytes, bytearray)):
        text = bytes(value).decode("latin-1")
        redacted = _redact_str(text, budget)
        return value if redacted is text else redacted.encode("latin-1")
    if isinstance(value, (list, tuple)):
        items = tuple(_redact_value(kind, item, budget, depth + 1) for item in value)
        return value if all(a is b for a, b in zip(items, value, strict=True)) else items
    if isinstance(value, Mapping):
        found = {key: _redact_value(_key_kind(key) if isinstance(key, str) else _PLAIN,
                                    item, budget, depth + 1) for key, item in value.items()}
        return value if all(found[key] is item for key, item in value.items()) else found
    return value


def _changes(attributes: Mapping[str, Any], budget: Budget | None) -> dict[str, Any] | None:
    """The attributes redaction changes, with their new values (None when none does).
    With ``budget`` None, one is made if some value has to be scanned.

    This runs for every span the bot ends, so what most attributes are is decided
    inline: a number, a value already known clean, or (no secret registered) a string
    without any separator a secret could follow.
    """
    out: dict[str, Any] | None = None
    plain = _plain_keys
    clean = _clean_texts  # before the secrets (see _clean_texts)
    clean_urls = _clean_urls
    literals = _secrets
    no_text = _NO_TEXT
    for key, value in attributes.items():
        vtype = type(value)
        if key in plain:
            if vtype is str:
                if value in clean:
                    continue
                if not literals and "=" not in value and ":" not in value \
                        and "%" not in value and not may_hold_pair(value):
                    _remember(clean, value)
                    continue
            elif vtype in no_text:
                continue
            kind = _PLAIN
        else:
            known = _key_kinds.get(key)
            kind = _key_kind(key) if known is None else known
            if kind == _SECRET:  # a captured API-key header: a tuple of one value
                secret: Any = (REDACTED,) * len(value) if vtype is tuple or vtype is list \
                    else REDACTED
                if secret != value:
                    if out is None:
                        out = {}
                    out[key] = secret
                continue
            if kind == _URL and vtype is str:
                if value in clean_urls:
                    continue
                url = matched_url(value)  # a signed request of a known shape
                if url is None:
                    if budget is None:
                        budget = Budget()
                    url = redact_url_str(value, budget)
                if url is not value:
                    if out is None:
                        out = {}
                    out[key] = url
                continue
        if budget is None:
            budget = Budget()
        redacted = _redact_value(kind, value, budget)
        if redacted is not value:
            if out is None:
                out = {}
            out[key] = redacted
    return out


def redact_attributes(attributes: Mapping[str, AttributeValue] | None) -> dict[str, AttributeValue]:
    """A new attribute dict: sensitive keys get ``"REDACTED"``, URL attributes
    (``url.full``, ``http.url`` ...) go through :func:`redact_url`, every other string
    through :func:`redact_text`. Non-string values pass unchanged. Never raises."""
    if not attributes:
        return {}
    found = _changes(attributes, None)
    return dict(attributes) if found is None else {**attributes, **found}


def attributes_are_clean(attributes: Mapping[str, object] | None) -> bool:
    """Whether :func:`redact_attributes` would leave these attributes as they are
    (no copy is made when they are). Never raises."""
    return not attributes or _changes(attributes, None) is None


def redacted_changes(attributes: Mapping[str, AttributeValue] | None) -> dict[str, AttributeValue]:
    """Only the attributes that redaction changes, with their redacted values (``{}``
    when there is nothing to redact): what to ``span.set_attributes()`` to scrub a live
    span. Never raises."""
    if not attributes:
        return {}
    found = _changes(attributes, None)
    return found or {}


# URL and span redaction live next door (same budget and caches) and are re-exported;
# they import this module.
from otel_botmon import _redact_url  # noqa: E402
from otel_botmon._redact_span import (  # noqa: E402
    RedactingSpanExporter,
    RedactingSpanProcessor,
    redact_span,
)
from otel_botmon._redact_url import matched_url, redact_url, redact_url_str  # noqa: E402
