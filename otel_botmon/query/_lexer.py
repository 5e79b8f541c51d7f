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
_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'"}


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
        elif ch.isascii() and (ch.isdigit() or (ch == "." and _digit_at(text, i + 1))):
            tok, i = _number(text, i)
            tokens.append(tok)
        elif _ident_start(ch):
            j = i + 1
            while j < n and _ident_char(text[j]):
                j += 1
            tokens.append(Token(TokenKind.IDENT, text[i:j], i))
            i = j
        elif ch in "\"'":
            tok, i = _string(text, i)
            tokens.append(tok)
        elif ch in _PUNCTUATION:
            tokens.append(Token(TokenKind.PUNCT, ch, i))
            i += 1
        else:
            op = next((o for o in _OPERATORS if text.startswith(o, i)), None)
            if op is None:
                what = ("the @ modifier is not supported" if ch == "@"
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
    i = _plain_number_end(text, start)
    value = float(text[start:i])  # float() of a digit string never raises; huge -> inf
    if i < len(text) and text[i].isascii() and text[i].isalpha():
        return _duration(text, start, i, value)
    if i < len(text) and _ident_char(text[i]):
        raise RuleSyntaxError("a number must not run into a name", text, i)
    return Token(TokenKind.NUMBER, text[start:i], start, value), i


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


def _string(text: str, start: int) -> tuple[Token, int]:
    quote = text[start]
    out: list[str] = []
    i = start + 1
    while i < len(text):
        ch = text[i]
        if ch == quote:
            return Token(TokenKind.STRING, "".join(out), start), i + 1
        if ch == "\n":
            break
        if ch == "\\":
            if i + 1 >= len(text):
                break
            esc = text[i + 1]
            if esc not in _ESCAPES:
                raise RuleSyntaxError(f"unknown escape \\{esc} in string", text, i)
            out.append(_ESCAPES[esc])
            i += 2
            continue
        out.append(ch)
        i += 1
    raise RuleSyntaxError("unterminated string", text, start)
