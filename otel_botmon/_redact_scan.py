"""The scanner behind :func:`otel_botmon.redaction.redact_text`: linear time, hard budget.

The text runs in the bot's thread (``span.end()``), so its cost must not depend on what
an exchange put in an error message. The previous regular expressions rescanned every
long run of name characters once per start position (quadratic: 8 s for 20 KB of hex).
Here nothing is ever rescanned:

- separators (``=``, ``:``, URL-encoded ``%3D``/``%253D``) are found with ``str.find``
  (C speed), each once, left to right;
- the name before a separator is read from a window of at most :data:`MAX_KEY_CHARS`
  characters with ``str.rstrip`` (a name is sensitive when it *ends* with a sensitive
  name, so its tail is all that matters);
- a value is scanned forward only when its name is sensitive, and scanning resumes after
  it, so every character is read a bounded number of times;
- a text longer than :data:`MAX_TEXT_CHARS` is cut first, and a :class:`Budget` caps
  characters and separators per call (or per span): past it the rest of the text is cut,
  never emitted unscanned.

This module knows nothing of which names are sensitive: the caller passes that test.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final
from urllib.parse import unquote

REDACTED: Final = "REDACTED"

MAX_TEXT_CHARS: Final = 16_384
"""A longer text is cut to this many characters before it is scanned."""
MAX_SEPARATORS: Final = 2_048
"""At most this many ``=``/``:`` separators are examined per text (or per span)."""
MAX_SPAN_CHARS: Final = 65_536
"""At most this many characters are scanned for one span, all its strings together."""
MAX_KEY_CHARS: Final = 64

_KEY_CHARS: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-%"
_PLAIN_KEY_CHARS: Final = _KEY_CHARS[:-1]  # without '%'
_NAME_END: Final = frozenset(_KEY_CHARS + "\"' \t")  # what can precede a separator
_LONG_KEY: Final = "\x00"  # marks a name longer than the window: it cannot equal a name
# A value ends at a separator or bracket; ';' and ',' only when followed by a space,
# a quote or the end ("a;b" inside a secret is kept together, "k=v; x=y" is split).
_VALUE_END: Final = re.compile(r"[&\s#\"'<>()\[\]{}]|[;,](?=[\s\"']|\Z)")
_ENCODED_VALUE_END: Final = re.compile(r"[&\s#\"'<>()\[\]{}]|[;,](?=[\s\"']|\Z)|%(?:25)?26")
_ENCODED_SEPARATOR: Final = re.compile(r"%(?:25)?3[Dd]")
# Encoded characters that cannot be part of a name (& = ? / : space and %25 prefixes):
# what precedes the last of them in a percent-encoded name belongs to something else.
_ENCODED_BREAK: Final = re.compile(
    r"%(?:25)*(?:[01][0-9A-Fa-f]|2[0-9A-Ca-cFf]|3[A-Fa-f]|40|60|7[B-Fb-f])"
)
_AUTHORITY_END: Final = re.compile(r"[/\s?#\"'<>]")
_AUTH_SCHEMES: Final = ("bearer ", "basic ", "token ", "digest ")
# Between a separator and its value: white space on the same line (a no-break space
# too); then, at the end of the line, the line breaks and indentation before a value on
# the next line ("api_key:\n  <key>" as YAML or a pretty printer writes it), unless that
# line starts with a sensitive name and a separator of its own ("password:\n  secret:
# <key>": an empty value, then a pair the scan comes to next). A value that merely looks
# like a pair (a Telegram token "123:AAH...", base64 padded with "=") stays the value.
_BLANKS: Final = re.compile(r"[^\S\r\n]*")
_NEXT_LINE: Final = re.compile(r"\s*")
_PAIR_AHEAD: Final = re.compile(r"""\\?["']?([A-Za-z0-9_.-]{1,64})\\?["']?[ \t]*[:=]""")
_PAIR_BLANKS: Final = re.compile(r"[ \t]*")  # after a (name, value) pair's comma
# A name read backwards: blanks, an optional closing quote (escaped, as in JSON inside a
# JSON string: \"sign\": \"...\"), then name characters.
_REVERSED_KEY: Final = re.compile(r"[ \t]*(?:[\"']\\?)?([A-Za-z0-9_.%-]*)")
# A (name, value) pair as Python prints a header list (('X-MBX-APIKEY', '...'),
# (b'KEY', b'...')) or JSON writes one (["OK-ACCESS-SIGN", "..."]): a bracket, a quoted
# name, a comma, then a quoted value. Only texts holding a quote and a comma together
# (', or ",: see may_hold_pair) are searched for it; the name is bounded, the match linear.
# The quotes may be escaped (a list inside a JSON string: [[\"KEY\", \"...\"]]).
_TUPLE_PAIR: Final = re.compile(
    r"""[(\[][ \t]*b?(\\?["'])([A-Za-z0-9_.-]{1,64})\1,[ \t]*(?=(?:b|\\)?["'])""")
# Brackets of a structured value ("signature": {"r": ..., "s": ...}, "sig": [...]), and
# quoted strings, whose brackets are text: a string runs to its closing quote or to the
# end of the text, possessively, so that no start is scanned twice (linear).
_BRACKETS: Final = re.compile(
    r"""[\[\]{}]|"(?:[^"\\]++|\\.?)*+(?:"|\Z)|'(?:[^'\\]++|\\.?)*+(?:'|\Z)""")
_MAX_AUTHORITY_CHARS: Final = 256
# WebSocket logins that send the key and the signature positionally, in a list with no
# name for each: Bybit and BitMEX {"op": "auth" / "authKeyExpires", "args": [key,
# expires, signature]}, Phemex {"method": "user.auth", "params": ["API", key, signature,
# expiry]}. In a text holding such a login (a frame the websockets library logs at
# DEBUG), the values of "args" and "params" are secrets.
_POSITIONAL_LOGIN: Final = re.compile(  # (quotes may be escaped: a frame in a JSON string)
    r"""["'](?:op\\?["']\s*:\s*\\?["'](?:auth|authKey|authKeyExpires)"""
    r"""|method\\?["']\s*:\s*\\?["']user\.auth)\\?["']""")
_POSITIONAL_NAMES: Final = frozenset({"args", "params"})


class Budget:
    """What one call (or one span, across all its strings) may still scan."""

    __slots__ = ("chars", "separators", "truncated")

    def __init__(self, chars: int = MAX_SPAN_CHARS, separators: int = MAX_SEPARATORS) -> None:
        self.chars = chars
        self.separators = separators
        self.truncated = 0
        """Characters cut so far (past :data:`MAX_TEXT_CHARS` or past the budget)."""


def truncation_note(count: int) -> str:
    return f"...[{count} chars not shown]"


def _key_before(text: str, sep: int, floor: int) -> str:
    """The name ending just before ``sep`` (a closing quote and blanks skipped), or ''."""
    lo = max(floor, sep - MAX_KEY_CHARS - 8)
    # Read backwards: the reversed window matched from its start, in C.
    window = text[lo:sep][::-1]
    found = _REVERSED_KEY.match(window)
    key = found.group(1)[::-1] if found is not None else ""
    if not key:
        return ""
    if found is not None and found.end() == len(window) and lo > floor \
            and text[lo - 1] in _KEY_CHARS:
        key = _LONG_KEY + key
    if "%" in key:  # percent-encoded name (api%5Fkey) or a nested query (x%26token)
        key = _ENCODED_BREAK.split(key)[-1]
        if "%" in key:
            decoded = unquote(unquote(key))
            key = decoded[len(decoded.rstrip(_PLAIN_KEY_CHARS)):]
    return key


def _value_span(text: str, start: int, encoded: bool,
                sensitive: Callable[[str], bool]) -> tuple[int, int]:
    """(start, end) of the value after a separator; start == end when there is none."""
    n = len(text)
    pos = _BLANKS.match(text, start).end()  # type: ignore[union-attr]
    if pos < n and text[pos] in "\r\n":  # the value on the next line, or none
        ahead = _NEXT_LINE.match(text, pos).end()  # type: ignore[union-attr]
        pair = _PAIR_AHEAD.match(text, ahead)
        if pair is not None and sensitive(pair.group(1)):
            return pos, pos
        pos = ahead
    if pos + 1 < n and text[pos] in "\\bB" and text[pos + 1] in "\"'":
        # an escaped quote (\"value\" in a JSON string) or a bytes literal (b'value')
        quote = text[pos:pos + 2] if text[pos] == "\\" else text[pos + 1]
        close = text.find(quote, pos + 2)
        if close >= 0:
            return pos + 2, close
        pos += 2
    if pos < n and text[pos] in "\"'":
        close = text.find(text[pos], pos + 1)
        if close >= 0:
            return pos + 1, close
        pos += 1
    if pos < n and text[pos] in "[{":  # a list or object: all of it, to its closing bracket
        return pos, _closing_bracket(text, pos)
    low = text[pos:pos + 7].lower()
    for scheme in _AUTH_SCHEMES:
        if low.startswith(scheme):  # "Bearer <token>": the scheme word stays readable
            pos = _BLANKS.match(text, pos + len(scheme)).end()  # type: ignore[union-attr]
            break
    found = (_ENCODED_VALUE_END if encoded else _VALUE_END).search(text, pos)
    return pos, (found.start() if found is not None else n)


def _closing_bracket(text: str, pos: int) -> int:
    """Where the bracketed value opening at ``pos`` ends (past its closing bracket; the
    end of the text when it is not closed). Brackets are counted, not matched by kind:
    one pass, brackets inside quoted strings left out."""
    depth = 0
    for found in _BRACKETS.finditer(text, pos):
        token = found.group()
        if token == "[" or token == "{":
            depth += 1
        elif token == "]" or token == "}":
            depth -= 1
            if depth == 0:
                return found.end()
    return len(text)


def _next_encoded(text: str, pos: int) -> tuple[int, int]:
    found = _ENCODED_SEPARATOR.search(text, pos)
    return (found.start(), found.end()) if found is not None else (-1, -1)


def may_hold_pair(text: str) -> bool:
    """Whether ``text`` may hold a (name, value) pair of a header list: ``',`` or ``",``.
    One search for the comma first: a two-character search costs ~80 times a
    one-character one (24 us over 20 KB), and most long texts hold no comma."""
    return "," in text and ("'," in text or '",' in text)


def _next_tuple(text: str, pos: int) -> tuple[int, int, str]:
    """(where the comma is, where the value starts, the name) of the next (name, value)
    pair at or after ``pos``; (-1, -1, '') when there is none."""
    # A pair holds exactly one comma, right after a quote, and starts after the comma
    # before it: the expression is only tried between the previous comma and a comma
    # after a quote (a search from pos tried every position of a 20 KB message: 150 us).
    # The windows do not overlap: linear, and the leftmost pair as a search finds it.
    find = text.find
    comma = find(",", pos)
    while comma >= 0:
        if comma and text[comma - 1] in "\"'":
            start = max(pos, text.rfind(",", pos, comma) + 1)
            stop = _PAIR_BLANKS.match(text, comma + 1).end() + 2  # type: ignore[union-attr]
            found = _TUPLE_PAIR.search(text, start, stop)
            if found is not None:
                return found.end(2) + len(found.group(1)), found.end(), found.group(2)
        comma = find(",", comma + 1)
    return -1, -1, ""


def redact_pairs(text: str, sensitive: Callable[[str], bool], budget: Budget) -> str:
    """``text`` with the values of sensitive ``name=value`` / ``name: value`` /
    ``"name": "value"`` / ``name%3Dvalue`` pairs replaced. Returns ``text`` itself when
    nothing changed. Stops at the budget: the unexamined rest is cut (counted in
    ``budget.truncated``)."""
    n = len(text)
    eq = text.find("=")
    colon = text.find(":")
    enc, enc_end = _next_encoded(text, 0) if "%" in text else (-1, -1)
    tup, tup_end, tup_key = _next_tuple(text, 0) if may_hold_pair(text) else (-1, -1, "")
    pieces: list[str] = []
    last = 0  # text[last:] is not yet in pieces
    floor = 0  # names never reach back before a redacted value
    left = budget.separators
    login: bool | None = None  # whether text holds a positional login (searched once)
    try:
        while True:
            # the nearest of the three kinds of separator
            sep = eq if eq >= 0 and (colon < 0 or eq < colon) else colon
            if enc >= 0 and (sep < 0 or enc < sep):
                sep = enc
            if tup >= 0 and (sep < 0 or tup < sep):
                sep = tup
            if sep < 0:
                break
            if left <= 0:
                pieces.append(text[last:sep])
                budget.truncated += n - sep
                pieces.append(truncation_note(n - sep))
                return "".join(pieces)
            left -= 1
            encoded = sep == enc
            resume = after = enc_end if encoded else tup_end if sep == tup else sep + 1
            # a name ends right before the separator (or before a quote or blank): a
            # separator after another one ("===", "a::") has none, decided at once
            if sep > floor and text[sep - 1] in _NAME_END:
                key = tup_key if sep == tup else _key_before(text, sep, floor)
                secret = bool(key) and sensitive(key)
                if not secret and key in _POSITIONAL_NAMES:
                    if login is None:
                        login = _POSITIONAL_LOGIN.search(text) is not None
                    secret = login
                if secret:
                    start, end = _value_span(text, after, encoded, sensitive)
                    if end > start:
                        pieces.append(text[last:start])
                        pieces.append(REDACTED)
                        last = end
                        floor = end
                    resume = max(end, after)
            if eq >= 0 and eq < resume:
                eq = text.find("=", resume)
            if colon >= 0 and colon < resume:
                colon = text.find(":", resume)
            if enc >= 0 and enc < resume:
                enc, enc_end = _next_encoded(text, resume)
            if tup >= 0 and tup < resume:
                tup, tup_end, tup_key = _next_tuple(text, resume)
    finally:
        budget.separators = left
    if not pieces:
        return text
    pieces.append(text[last:])
    return "".join(pieces)


def redact_url_credentials(text: str) -> str:
    """``scheme://user:password@host`` with the user information replaced."""
    pos = text.find("://")
    if pos < 0 or "@" not in text:
        return text
    pieces: list[str] = []
    last = 0
    while pos >= 0:
        start = pos + 3
        limit = min(len(text), start + _MAX_AUTHORITY_CHARS)
        found = _AUTHORITY_END.search(text, start, limit)
        end = found.start() if found is not None else limit
        at = text.rfind("@", start, end)
        if at > start:
            userinfo = REDACTED + ":" + REDACTED if ":" in text[start:at] else REDACTED
            pieces += [text[last:start], userinfo]
            last = at
        pos = text.find("://", max(end, start))
    if not pieces:
        return text
    pieces.append(text[last:])
    return "".join(pieces)


def scrub_literals(text: str, secrets: tuple[str, ...]) -> str:
    """Every registered literal (longest first) replaced; linear per secret."""
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def cut_partial_secret(text: str, secrets: tuple[str, ...]) -> str:
    """Drop a tail of a cut text that is the start of a secret (the cut split it)."""
    for secret in secrets:
        for length in range(min(len(secret) - 1, len(text)), 0, -1):
            if text.endswith(secret[:length]):
                return text[:-length]
    return text
