"""Tokens of the condition language, and the error every stage of it raises.

The lexer is hand-written (no ``eval``, no regex over the whole input) and reports the
0-based column of anything it cannot read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

__all__ = ["DURATION_UNITS", "RuleSyntaxError", "Token", "TokenKind", "tokenize"]

MAX_EXPRESSION_LENGTH = 10_000

# Unit suffixes of number literals and windows, in seconds. ``m`` is minutes, not metres.
DURATION_UNITS: dict[str, float] = {
    "ms": 0.001,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 7 * 86400.0,
}

_OPERATORS = ("==", "!=", ">=", "<=", "=~", "!~", ">", "<", "=", "+", "-", "*", "/", "%")
_PUNCTUATION = {"(": "(", ")": ")", "{": "{", "}": "}", "[": "[", "]": "]", ",": ","}
# Go's single-character escapes (PromQL strings are Go strings); the string's own quote
# may be escaped too, the other quote not
_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
            "\\": "\\"}
# escapes of a code given in digits: (digits, base, largest value, a byte or a code point)
_CODE_ESCAPES = {"x": (2, 16, 0xFF, True), "u": (4, 16, 0x10FFFF, False),
                 "U": (8, 16, 0x10FFFF, False)}
_INT64_MAX = 2**63 - 1


class RuleSyntaxError(ValueError):
    """A condition that cannot be compiled: bad syntax, unknown name or wrong type.

    ``position`` is the 0-based column in ``expression`` where the problem is; ``str()``
    shows the expression with a caret under that column.
    """

    def __init__(self, message: str, expression: str, position: int) -> None:
        self.message = message
        self.expression = expression
        self.position = max(0, min(position, len(expression)))
        super().__init__(message)

    def __str__(self) -> str:
        shown = self.expression.replace("\n", " ").replace("\t", " ")
        if len(shown) > 200:  # keep the caret readable for huge inputs
            start = max(0, self.position - 100)
            shown = shown[start : start + 200]
            caret = self.position - start
        else:
            caret = self.position
        return f"{self.message} (column {self.position + 1})\n  {shown}\n  {' ' * caret}^"


class TokenKind(str, Enum):
    NUMBER = "number"
    DURATION = "duration"  # a number with a time unit; value in seconds
    IDENT = "identifier"
    STRING = "string"
    OP = "operator"
    PUNCT = "punctuation"
    EOF = "end of expression"


@dataclass(frozen=True)
class Token:
    kind: TokenKind
    text: str  # source text (for strings: the decoded value)
    pos: int
    value: float = 0.0


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens ending with an EOF token.

    Raises ``RuleSyntaxError`` for characters, strings or numbers it cannot read.
    """
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise RuleSyntaxError(
            f"expression longer than {MAX_EXPRESSION_LENGTH} characters", text, 0
        )
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch == "#":  # a comment, to the end of the line (as PromQL)
            while i < n and text[i] != "\n":
                i += 1
        elif ch.isascii() and (ch.isdigit() or (ch == "." and _digit_at(text, i + 1))):
            tok, i = _number(text, i)
            tokens.append(tok)
        elif _ident_start(ch):
            j = i + 1
            while j < n and _ident_char(text[j]):
                j += 1
            tokens.append(Token(TokenKind.IDENT, text[i:j], i))
            i = j
        elif ch in "\"'`":
            tok, i = _string(text, i)
            tokens.append(tok)
        elif ch in _PUNCTUATION:
            tokens.append(Token(TokenKind.PUNCT, ch, i))
            i += 1
        else:
            op = next((o for o in _OPERATORS if text.startswith(o, i)), None)
            if op is None:
                what = ("the @ modifier is not supported" if ch == "@"
                        else "the PromQL operator '^' (power) is not supported" if ch == "^"
                        else f"unexpected character {ch!r}")
                raise RuleSyntaxError(what, text, i)
            tokens.append(Token(TokenKind.OP, op, i))
            i += len(op)
    tokens.append(Token(TokenKind.EOF, "", n))
    return tokens


def _ident_start(ch: str) -> bool:
    return ch.isascii() and (ch.isalpha() or ch in "_:")


def _ident_char(ch: str) -> bool:
    return ch.isascii() and (ch.isalnum() or ch in "_.:")


def _digit_at(text: str, i: int) -> bool:
    return i < len(text) and text[i].isascii() and text[i].isdigit()


def _digits(text: str, i: int) -> int:
    while _digit_at(text, i):
        i += 1
    return i


def _number(text: str, start: int) -> tuple[Token, int]:
    """A number, optionally with a unit (``500ms``) or compound duration (``1m30s``)."""
    if text.startswith(("0x", "0X"), start):
        return _hex_number(text, start)
    i = _plain_number_end(text, start)
    value = float(text[start:i])  # float() of a digit string never raises; huge -> inf
    if i < len(text) and text[i].isascii() and text[i].isalpha():
        return _duration(text, start, i, value)
    if i < len(text) and _ident_char(text[i]):
        raise RuleSyntaxError("a number must not run into a name", text, i)
    literal = text[start:i]
    if len(literal) > 1 and literal[0] == "0" and literal.isdigit() and max(literal) < "8":
        # PromQL reads an integer as Go's ParseInt(text, 0, 64) does: a leading zero
        # makes it octal (010 is 8); 08 or 010.5 are decimal, as ParseFloat reads them
        octal = int(literal, 8)
        if octal <= _INT64_MAX:
            value = float(octal)
    if math.isinf(value):
        raise RuleSyntaxError(f"number {literal} is out of range", text, start)
    return Token(TokenKind.NUMBER, literal, start, value), i


def _hex_number(text: str, start: int) -> tuple[Token, int]:
    """A hexadecimal integer (``0x1F``), as PromQL reads one (Go's ParseInt)."""
    i = start + 2
    while i < len(text) and text[i] in "0123456789abcdefABCDEF":
        i += 1
    if i == start + 2 or (i < len(text) and (_ident_char(text[i]) or text[i] == ".")):
        raise RuleSyntaxError("invalid hexadecimal number", text, start)
    value = int(text[start + 2 : i], 16)
    if value > _INT64_MAX:
        raise RuleSyntaxError(f"number {text[start:i]} is out of range", text, start)
    return Token(TokenKind.NUMBER, text[start:i], start, float(value)), i


def _plain_number_end(text: str, start: int) -> int:
    i = _digits(text, start)
    if i < len(text) and text[i] == ".":
        i = _digits(text, i + 1)
    if i < len(text) and text[i] in "eE":
        j = i + 1
        if j < len(text) and text[j] in "+-":
            j += 1
        if _digit_at(text, j):
            i = _digits(text, j)
    return i


def _duration(text: str, start: int, i: int, value: float) -> tuple[Token, int]:
    total = 0.0
    while True:
        j = i
        while j < len(text) and text[j].isascii() and text[j].isalpha():
            j += 1
        unit = text[i:j]
        if unit not in DURATION_UNITS:
            raise RuleSyntaxError(
                f"unknown unit {unit!r} (known: {', '.join(DURATION_UNITS)})", text, i
            )
        total += value * DURATION_UNITS[unit]
        i = j
        if not _digit_at(text, i):
            break
        k = _plain_number_end(text, i)  # compound duration such as 1h30m
        value = float(text[i:k])
        if not (k < len(text) and text[k].isascii() and text[k].isalpha()):
            raise RuleSyntaxError("a duration part needs a unit", text, k)
        i = k
    if i < len(text) and text[i] == ":":
        raise RuleSyntaxError("subqueries ([5m:1m]) are not supported", text, i)
    if i < len(text) and _ident_char(text[i]):
        raise RuleSyntaxError("a duration must not run into a name", text, i)
    if math.isnan(total):
        raise RuleSyntaxError("invalid duration", text, start)
    return Token(TokenKind.DURATION, text[start:i], start, total), i


def read_string(text: str, start: int) -> tuple[str, int]:
    """The quoted string at ``text[start]`` as PromQL (and promtool's series notation)
    reads it, and the index after it; :class:`RuleSyntaxError` when it is not one."""
    token, end = _string(text, start)
    return token.text, end


def _string(text: str, start: int) -> tuple[Token, int]:
    """A quoted string as PromQL reads it: a Go string in double or single quotes (with
    Go's escapes; ``\\x``/octal escapes are bytes of its UTF-8 text) or a raw string in
    backquotes (no escapes, may span lines)."""
    quote = text[start]
    if quote == "`":
        end = text.find("`", start + 1)
        if end < 0:
            raise RuleSyntaxError("unterminated string", text, start)
        return Token(TokenKind.STRING, text[start + 1 : end], start), end + 1
    out = bytearray()
    i = start + 1
    while i < len(text):
        ch = text[i]
        if ch == quote:
            try:
                value = out.decode("utf-8")
            except UnicodeDecodeError:
                raise RuleSyntaxError("string is not valid UTF-8", text, start) from None
            return Token(TokenKind.STRING, value, start), i + 1
        if ch == "\n":
            break
        if ch == "\\":
            if i + 1 >= len(text):
                break
            i = _escape(text, i, quote, out)
            continue
        out += ch.encode("utf-8", "surrogatepass")
        i += 1
    raise RuleSyntaxError("unterminated string", text, start)


def _escape(text: str, i: int, quote: str, out: bytearray) -> int:
    """Append the escape at ``text[i]`` (a backslash) to ``out``; the index after it."""
    esc = text[i + 1]
    if esc in _ESCAPES or esc == quote:
        out += _ESCAPES.get(esc, esc).encode("utf-8")
        return i + 2
    if esc in "01234567":
        digits, base, largest, byte = 3, 8, 0xFF, True
        start = i + 1
    elif esc in _CODE_ESCAPES:
        digits, base, largest, byte = _CODE_ESCAPES[esc]
        start = i + 2
    else:
        raise RuleSyntaxError(f"unknown escape \\{esc} in string", text, i)
    code_text = text[start : start + digits]
    allowed = "01234567" if base == 8 else "0123456789abcdefABCDEF"
    if len(code_text) < digits or any(c not in allowed for c in code_text):
        raise RuleSyntaxError(f"escape \\{esc} needs {digits} digits", text, i)
    code = int(code_text, base)
    if code > largest or (0xD800 <= code <= 0xDFFF and not byte):
        raise RuleSyntaxError(f"escape {text[i : start + digits]} is not a valid character",
                              text, i)
    out += bytes((code,)) if byte else chr(code).encode("utf-8")
    return start + digits
