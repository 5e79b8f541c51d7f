"""URL redaction: credentials, sensitive query and fragment parameters, nested URLs.

Part of :mod:`otel_botmon.redaction` (which re-exports :func:`redact_url`); the names,
registered secrets and caches are that module's.

This runs for every instrumented request, so the common URL (``scheme://host/path?query``,
no credentials, no fragment, nothing percent-encoded) takes a short path: only its
query can hold a secret, and a bot sends the same few parameter lists again and again
with new values (a signed request has a fresh timestamp and signature each time). The
query's *shape* (names and ``=`` kept, values removed, by one C-level substitution) is
looked up in a bounded cache of plans saying which parameters to replace; names are
examined once per shape. A URL without a secret (market data polled) is remembered as
clean; a signed one is unique, so only its redacted form is remembered, for when the
same text is redacted again (an instrumentation hook, then the span processor).

A URL that is not this common kind takes the general path (:func:`_odd_query` says
which): pairs after a ``;`` (``?a=1;signature=S``), a nested URL that is not
percent-encoded (``?redirect=https://o/cb?token=S``, its own fragment, path pairs or
credentials), pairs in the path (``/p;token=S``) or a query alone (``url.query``).
"""

from __future__ import annotations

import re
from typing import Any, Final
from urllib.parse import unquote_plus

from otel_botmon import redaction
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

__all__ = ["redact_url"]

# Plans for query shapes: a bot's requests have a few dozen shapes. A plan says which
# parameters to replace (see _query_plan) and how far from the end the first of them is,
# so that a signed query (its signature last) is cut once from the right, not split whole.
_SHAPE_CACHE_SIZE: Final = 512
_SHAPE_MAX_CHARS: Final = 1024
Plan = tuple[int, tuple[tuple[int, str], ...]]  # (rsplit maxsplit, ((item, replacement)...))
_NOTHING: Final[Plan] = (0, ())
_shape_cache: dict[str, Plan] = {}
_QUERY_VALUES: Final = re.compile(r"=[^&]*")


# A shape seen twice also gets a matcher: one regular expression for every such shape,
# matching a whole common URL (scheme://host/path?query: no credentials, fragment or
# percent-encoding) whose query has one of those shapes: names literally, each value as
# [^&]*+, the secret ones captured, and an empty group closing each shape, whose number
# says which shape matched and so which groups hold secrets. One C-level pass checks the
# URL and finds its secrets: cheaper than computing the query's shape, and cheaper than
# checking the URL in Python first. The shapes are one tree of alternations (shapes
# sharing their first parameters share those), so nothing picks a shape first (counting
# the URL's '&' cost more than the whole match) and no parameter is read twice: at each
# branch at most one alternative can match, each other one failing within its name.
# '#', '@', '%' and ';' are ruled out by substring tests before it (each a memchr; a
# second '?' and a '=' before the first one after it): then a value is a run of one
# excluded character, which the regex engine skips in a tight loop, where a class costs
# a set test per character (a third of the matcher's time on a signed URL). The part
# before the '?' is [^?]*+ for the same reason; an '&' in it is kept as the general path
# keeps it. Possessive values and literal names: no backtracking within a parameter; at
# most _MAX_MATCHED_SHAPES shapes are in the tree.
_MATCHED_SHAPES_SIZE: Final = 256
_MAX_MATCHED_SHAPES: Final = 64  # more: those queries take the plan path (still linear)
_URL_HEAD: Final = r"[^?]*+\?"
_VALUE: Final = r"=[^&]*+"
_SECRET_VALUE: Final = r"=([^&]*+)"
Parameter = tuple[str, bool]  # (its expression, whether its value is a secret)
# (expression, marker -> (its shape's secret groups, the group of its one secret when that
# is the last value, else 0))
Matcher = tuple[re.Pattern[str], dict[int, tuple[tuple[int, ...], int]]]
# The matcher, in a one-item holder (None until a shape repeats) replaced, never changed,
# when the names change (see forget_cached); its one item is read and set in one step.
_matcher: list[Matcher | None] = [None]
_matcher_shapes: list[tuple[Parameter, ...]] = []
_matched_shapes: set[str] = set()
_next_compile: list[int] = [1]  # how many shapes the next compile waits for


def forget_cached() -> None:
    """Replace the caches (the names changed): never cleared in place, so that a
    redaction racing the change writes into caches nobody reads (see
    ``redaction._clean_texts``)."""
    global _shape_cache, _matcher, _matcher_shapes, _matched_shapes, _next_compile
    _shape_cache, _matcher, _matcher_shapes, _matched_shapes = {}, [None], [], set()
    _next_compile = [1]


def _sensitive_name(key: str) -> bool:
    return redaction.is_sensitive_key(unquote_plus(key) if "%" in key or "+" in key else key)


def _query_plan(shape: str) -> Plan:
    """For a query's shape (its values removed): which parameters' values are secrets,
    as the items of ``query.rsplit("&", maxsplit)`` to replace. A bare flag (no ``=``)
    has no value to redact."""
    found = []
    parts = shape.split("&")
    for i, part in enumerate(parts):
        key, eq, _ = part.partition("=")
        if eq and _sensitive_name(key):
            found.append((i, key + "=" + REDACTED))
    if not found:
        return _NOTHING
    first = found[0][0]
    if first == 0:  # every part apart
        return -1, tuple(found)
    # rsplit(maxsplit=n-first) gives [parts 0..first-1 joined, part first, ..., last]
    return len(parts) - first, tuple((i - first + 1, text) for i, text in found)


def _apply(query: str, plan: Plan) -> str:
    maxsplit, replacements = plan
    items = query.rsplit("&", maxsplit)
    for i, replacement in replacements:
        items[i] = replacement
    return "&".join(items)


def redact_query_full(query: str) -> str:
    """The reference: every parameter's name looked at (what the fast path must equal)."""
    if not query:
        return query
    parts = query.split("&")
    for i, part in enumerate(parts):
        key, eq, _ = part.partition("=")
        if eq and redaction.is_sensitive_key(
                unquote_plus(key) if "%" in key or "+" in key else key):
            parts[i] = key + "=" + REDACTED
    return "&".join(parts)


_NESTED_MARKS: Final = re.compile(r"[;?#]")  # ('#': a second one, in a fragment)


def redact_nested(text: str) -> str:
    """``text`` (a query or a fragment, its sensitive ``&`` parameters already
    replaced) with the pairs after a ``;``, a ``?`` or a ``#`` inside a part looked at
    too: ``a=1;sig=S``, ``redirect=https://o/cb?token=S``, a fragment's
    ``#a=1#token=S``. From the first such pair with a sensitive name, the rest of its
    ``&`` part is replaced (a secret may hold a ``;`` itself: nothing after its name is
    kept). Linear: each part's marks are found in one pass, each name read once."""
    if ";" not in text and "?" not in text and "#" not in text:
        return text
    parts = text.split("&")
    changed = False
    for i, part in enumerate(parts):
        marks = [mark.start() for mark in _NESTED_MARKS.finditer(part)]
        for j, mark in enumerate(marks):
            end = marks[j + 1] if j + 1 < len(marks) else len(part)
            eq = part.find("=", mark + 1, end)
            if eq >= 0 and _sensitive_name(part[mark + 1:eq]):
                parts[i] = part[:eq + 1] + REDACTED
                changed = True
                break
    return "&".join(parts) if changed else text


def redact_query(query: str) -> str:
    """Replace the values of sensitive parameters, keeping everything else byte for byte
    (the query's shape looked up in the plan cache, see the module docstring)."""
    if not query:
        return query
    plan = _plan_for(query)
    return _apply(query, plan) if plan[1] else query


def _plan_for(query: str) -> Plan:
    shapes = _shape_cache  # before the names are read
    shape = _QUERY_VALUES.sub("=", query) if "=" in query else query
    plan = shapes.get(shape)
    if plan is None:
        plan = _query_plan(shape)
        if len(shape) <= _SHAPE_MAX_CHARS:
            if len(shapes) >= _SHAPE_CACHE_SIZE:
                shapes.clear()
            shapes[shape] = plan
    elif shape not in _matched_shapes:  # seen before: it repeats, worth a matcher
        _add_matcher(shape)
    return plan


def _add_matcher(shape: str) -> None:
    # before the names are read
    holder, alternatives, matched, grow = (
        _matcher, _matcher_shapes, _matched_shapes, _next_compile)
    if len(matched) >= _MATCHED_SHAPES_SIZE:
        holder[0] = None
        alternatives.clear()
        matched.clear()
        grow[0] = 1
    matched.add(shape)
    if len(alternatives) >= _MAX_MATCHED_SHAPES:
        return
    parameters = []
    for part in shape.split("&"):
        key, eq, _ = part.partition("=")
        secret = bool(eq) and _sensitive_name(key)
        parameters.append((re.escape(key) + (_SECRET_VALUE if secret else _VALUE if eq else ""),
                           secret))
    alternatives.append(tuple(parameters))
    count = len(alternatives)
    # Compiled again only when the shapes have grown by half (1, 2, 3, 4, 6, 9, ..., 63,
    # and at the cap): the tree is compiled on the bot's thread, and compiling it for
    # every new shape made learning k shapes cost k*k/2 shape compiles. The shapes
    # waiting for the next compile take the plan path (same output).
    if count == _MAX_MATCHED_SHAPES or count >= grow[0]:
        grow[0] = max(count + 1, count * 3 // 2)
        holder[0] = _compile_matcher(alternatives)


# In a tree of shapes: a shape ends here (no parameter is a secret without a value).
_END: Final[Parameter] = ("", True)


def _compile_matcher(shapes: list[tuple[Parameter, ...]]) -> Matcher:
    """One expression for these shapes, as a tree: shapes with the same first parameters
    share them (see the comment above the names)."""
    tree: dict[Parameter, Any] = {}
    for parameters in shapes:
        node = tree
        for parameter in parameters:
            node = node.setdefault(parameter, {})
        node[_END] = {}
    markers: dict[int, tuple[tuple[int, ...], int]] = {}
    group = 0

    def after(node: dict[Parameter, Any], secrets: tuple[int, ...], last: int) -> str:
        # What may follow the parameters that led to node. Groups are numbered in the
        # order their '(' appear: depth first, in order. Each alternative starts with its
        # own name: the engine skips those whose first character differs.
        nonlocal group
        alternatives = []
        for parameter, child in node.items():
            if parameter == _END:
                continue
            expression, secret = parameter
            if secret:
                group += 1
                alternatives.append(expression + after(child, (*secrets, group), group))
            else:
                alternatives.append(expression + after(child, secrets, 0))
        more = "" if not alternatives else "&" + alternatives[0] if len(alternatives) == 1 \
            else "&(?:" + "|".join(alternatives) + ")"
        if _END not in node:
            return more
        group += 1  # an empty group closes the shape: its number names the shape
        markers[group] = (secrets, last if len(secrets) == 1 else 0)
        return f"(?:{more}|())" if more else "()"

    expression = _URL_HEAD + after(tree, (), 0)[1:]  # no '&' before the first parameter
    return re.compile(expression), markers


def _replace_groups(text: str, found: re.Match[str], groups: tuple[int, ...]) -> str:
    """``text`` with the groups ``found`` captured replaced by REDACTED."""
    pieces: list[str] = []
    last = 0
    for group in groups:
        start, end = found.span(group)
        pieces += (text[last:start], REDACTED)
        last = end
    pieces.append(text[last:])
    return "".join(pieces)


def _odd_query(head: str, query: str) -> bool:
    """Whether a URL split at its first ``?`` into ``head`` and ``query`` needs the
    general path although its shape could be matched: a second ``?`` or a ``://`` in
    the query (a nested URL), or a ``=`` before the ``?`` (pairs in the path, or a query
    alone). Substring tests on the parts: each a memchr, where ``str.find`` with bounds
    costs a method call each (three of them were a quarter of a signed URL's check)."""
    return "?" in query or "://" in query or "=" in head


def _query_start(text: str) -> int:
    """Where the query of the common URL (``scheme://host/path?query``: no credentials,
    fragment, percent-encoding, ``;``, ``&`` or ``=`` in the path, ``?`` or a nested URL
    in the query, or registered secret) starts; -1 for any other text."""
    head, mark, query = text.partition("?")
    if (not mark or redaction._secrets or len(text) > MAX_TEXT_CHARS or "#" in text
            or "@" in text or "%" in text or ";" in text or "&" in head
            or _odd_query(head, query)):
        return -1
    return len(head) + 1


def matched_url(text: str) -> str | None:
    """The redacted URL when it is the common kind and its query has a shape seen
    before (one matcher pass, see above), else None."""
    # (';' may separate pairs: the general path looks into those)
    if len(text) > MAX_TEXT_CHARS or "%" in text or "@" in text or "#" in text \
            or ";" in text:
        return None
    heads = redaction._secret_heads
    matcher = _matcher[0]
    if matcher is None:
        return None
    pattern, markers = matcher
    found = pattern.fullmatch(text)  # (raises TypeError for what is not a str)
    if found is None:
        return None
    head, _, query = text.partition("?")  # (the match holds a '?')
    if _odd_query(head, query):
        return None
    groups, last = markers[found.lastindex]  # type: ignore[index]  # a marker closes each
    if last:  # the usual signed request: one secret, the signature, last
        out = text[:found.start(last)] + REDACTED
    else:
        out = _replace_groups(text, found, groups) if groups else text
    # A registered secret (ccxt registers the exchange's) left in it: the general path
    # scrubs it. Searched in what is kept, as that path does after the query, by its
    # first characters (a secret's head is absent where the secret is; a short needle
    # is several times cheaper to search for than a 64-character one).
    for head in heads:  # a loop, not any(): no generator per URL
        if head in out:
            return None
    return out


def redact_url_str(text: str, budget: Budget) -> str:
    """The one place a URL is redacted (see :func:`redact_url`); returns ``text`` itself
    when nothing changed."""
    clean_urls = redaction._clean_urls  # before the secrets (see redaction._clean_texts)
    if text in clean_urls:
        return text
    found = matched_url(text)
    if found is not None:
        budget.chars -= len(text)
        return found
    start = _query_start(text)
    if start < 0:
        if "?" in text or "#" in text or "@" in text:
            cached = redaction._text_cache.get(text)
            return cached if cached is not None \
                else _redact_url_slow(text, budget, clean_urls)
        # No '?': a query alone (the url.query attribute), or pairs in a path (/p;token=S)
        # when it holds a '=': the general text redaction looks at every name=value.
        if "=" in text and not redaction._secrets and "%" not in text:
            # scanned whole, as any URL, whatever the span's other strings used
            budget.chars -= min(len(text), MAX_TEXT_CHARS)
            out = redaction._redact_str(text, Budget(MAX_TEXT_CHARS, MAX_SEPARATORS))
        else:
            out = redaction._redact_str(text, budget) if redaction._secrets or "%" in text \
                else text
        redaction._remember(clean_urls, out)
        return out
    # The common URL, scheme://host/path?query: only its query can hold a secret.
    budget.chars -= len(text)
    query = text[start:]
    plan = _plan_for(query)
    maxsplit, replacements = plan
    if not replacements:
        out = text
    elif maxsplit > 0:  # the path has no '&': cut the whole URL from the right
        out = _apply(text, plan)
    else:
        out = text[:start] + _apply(query, plan)
    if out is text:  # a URL without secret repeats (market data polled)
        redaction._remember(clean_urls, out)
    return out


def _redact_url_slow(text: str, budget: Budget, clean_urls: set[str]) -> str:
    """Credentials, fragments, percent-encoding, registered secrets, over-long URLs;
    a URL without any is remembered in ``clean_urls``."""
    cut = 0
    original = text
    budget.chars -= min(len(text), MAX_TEXT_CHARS)
    if len(text) > MAX_TEXT_CHARS:
        cut = len(text) - MAX_TEXT_CHARS
        text = text[:MAX_TEXT_CHARS]
    # Plain string surgery rather than urlsplit/urlunsplit: it is several times faster
    # and keeps the URL byte for byte.
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
    if "=" in before_query:  # pairs in the path (/p;token=S), or a query alone
        # (url.query) whose first '?' is in a value. A URL is scanned whole whatever the
        # span's other strings used of its budget (its characters are counted above).
        before_query = redact_pairs(before_query, redaction.is_sensitive_key,
                                    Budget(MAX_TEXT_CHARS, MAX_SEPARATORS))
    if query_sep:
        query = redact_nested(redact_query(query))
    if hash_sep and "=" in fragment:
        fragment = redact_nested(redact_query(fragment))
    out = before_query + query_sep + query + hash_sep + fragment
    secrets = redaction._secrets
    if secrets:
        out = scrub_literals(out, secrets)
        if cut:
            out = cut_partial_secret(out, secrets)
    nested = "://" in query or "://" in fragment
    if "%" in out or nested:
        # a URL inside a parameter, encoded (redirect=https%3A...%3Fsignature%3D...) or
        # not (its own fragment, pairs in its path, credentials): every pair is looked at
        out = redact_pairs(out, redaction.is_sensitive_key, budget)
        if nested and "@" in out:
            out = redact_url_credentials(out)
    if cut:
        budget.truncated += cut
        return out + truncation_note(cut)
    if out == original:
        out = original
    redaction._remember(clean_urls, out)
    return out


def redact_url(url: object) -> str:
    """The URL as a string with credentials, sensitive query values and secrets replaced.

    ``https://user:pw@host/p?symbol=X&signature=abc`` becomes
    ``https://REDACTED:REDACTED@host/p?symbol=X&signature=REDACTED``. Parameters in the
    fragment are treated like the query (OAuth puts tokens there), and so are
    URL-encoded parameters nested in a parameter's value. Accepts ``str``, ``bytes`` or
    anything with a ``__str__`` such as ``httpx.URL``. Never raises.
    """
    clean_urls = redaction._clean_urls  # before the secrets (see redaction._clean_texts)
    out = redact_url_str(redaction._as_text(url), Budget(MAX_TEXT_CHARS, MAX_SEPARATORS))
    # A signed URL is unique, but its redacted form is what the span processor sees after
    # an instrumentation hook (ccxt, requests) redacted it: remembered, not scanned again.
    redaction._remember(clean_urls, out)
    return out
