"""Regular expressions of label matchers, with Prometheus' (RE2) semantics.

Prometheus 2.42 (and Alertmanager 0.25, for silences) compile a matcher's regex with Go's
``regexp`` (RE2 syntax) as ``^(?:pattern)$``. RE2 runs in time linear in the input and
cannot backtrack, so ``(a+)+$`` answers at once; Python's ``re`` would take exponential
time on such a pattern and its syntax differs (look-ahead, back-references, ``\\Z``,
``\\d`` matching non-ASCII digits, possessive ``a*+``, no POSIX classes such as
``[[:alpha:]]``). Every matcher of the condition language and every silence matcher is
compiled here, with the ``google-re2`` binding (the C++ RE2: it has no fallback to
Python's ``re``; a pattern it cannot run in linear time is an error).

C++ RE2 is a little newer than the Go 1.19 ``regexp`` Prometheus 2.42 is built with; what
Go refuses is refused here too: ``\\C``, ``(?<name>...)``, group names that are not ASCII
word characters, scripts added in Unicode 14 and 15 (``\\p{Kawi}`` ...), and an
unterminated ``\\Q`` (it swallows the ``)$`` of the anchoring).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Final, Protocol

__all__ = ["AnchoredRegex", "RegexError", "compile_anchored"]

MAX_PATTERN_LENGTH = 4096

# Scripts C++ RE2 knows (Unicode 15) that Go 1.19's tables (Unicode 13) do not.
_NEWER_SCRIPTS: Final = frozenset({
    "Cypro_Minoan", "Old_Uyghur", "Tangsa", "Toto", "Vithkuqi",  # Unicode 14
    "Kawi", "Nag_Mundari",  # Unicode 15
})
_CAPTURE_NAME: Final = re.compile(r"[A-Za-z0-9_]+")
_LONE_SURROGATE: Final = re.compile("[\ud800-\udfff]")


class RegexError(ValueError):
    """A pattern Prometheus' regexp does not accept; the message says why."""


class AnchoredRegex(Protocol):
    def fullmatch(self, text: str) -> object | None: ...


class _LabelRegex:
    """A compiled matcher regex. A label value that is not valid Unicode text (a lone
    surrogate, e.g. from bytes decoded with ``surrogateescape``) is matched with each such
    code point read as U+FFFD, as Go reads a byte that is not UTF-8, instead of failing."""

    __slots__ = ("_compiled",)

    def __init__(self, compiled: Any) -> None:
        self._compiled = compiled

    def fullmatch(self, text: str) -> object | None:
        try:
            found: object | None = self._compiled.fullmatch(text)
        except UnicodeEncodeError:
            found = self._compiled.fullmatch(_LONE_SURROGATE.sub("\ufffd", text))
        return found


@lru_cache(maxsize=1)
def _re2() -> tuple[Any, Any]:
    """The ``re2`` module and its options, imported on first use (it is a C extension
    that takes tens of milliseconds to load; most processes never compile a regex)."""
    import re2

    options = re2.Options()
    options.log_errors = False  # RE2 would write its own message to stderr
    # Only "does it match" is asked: with no capturing groups RE2 answers with its DFA.
    # With them it must track submatches, in its NFA once the text is a few KB long
    # (tens of times slower per character: 36 ms on 64 KB where the DFA takes 0.4 ms).
    options.never_capture = True
    return re2, options


@lru_cache(maxsize=1024)
def compile_anchored(pattern: str) -> AnchoredRegex:
    """The compiled ``pattern`` for whole-string matching (``fullmatch``), as
    Prometheus anchors a matcher's regex (``^(?:pattern)$``). Raises :class:`RegexError`
    for a pattern Prometheus refuses, or one longer than ``MAX_PATTERN_LENGTH`` or too
    large for RE2's memory budget (both limits of botmon's: the time to match grows with
    the size of the pattern)."""
    if not isinstance(pattern, str):
        raise RegexError(f"a regular expression must be a string, got {type(pattern).__name__}")
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise RegexError(f"regular expression longer than {MAX_PATTERN_LENGTH} characters")
    re2, options = _re2()
    try:
        compiled = re2.compile(pattern, options=options)
    except re2.error as exc:
        raise RegexError(_message(exc)) from None
    except (TypeError, ValueError, OverflowError) as exc:  # e.g. a lone surrogate
        raise RegexError(str(exc)) from None
    try:  # Prometheus compiles the anchored text: a \Q left open swallows its ")$"
        re2.compile(f"^(?:{pattern})$", options=options)
    except re2.error:
        raise RegexError("\\Q without \\E: Prometheus anchors the regex as "
                         "^(?:regex)$ and the quoted text would take in its ')$'") from None
    refusal = _go_refusal(pattern)
    if refusal:
        raise RegexError(refusal)
    return _LabelRegex(compiled)


def _message(exc: BaseException) -> str:
    parts = []
    for arg in exc.args:
        parts.append(arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg))
    message = "; ".join(parts) or "invalid regular expression"
    if message.startswith("pattern too large"):
        message += " (RE2's 8 MiB budget; Prometheus may accept it: make it smaller)"
    return message


def _go_refusal(pattern: str) -> str | None:
    """Why Go 1.19's ``regexp`` refuses ``pattern``, which C++ RE2 accepted (so it is
    well formed), or None. Walks the pattern once, outside ``\\Q...\\E`` quotes."""
    i, n, in_class = 0, len(pattern), False
    while i < n:
        ch = pattern[i]
        if ch == "\\":
            nxt = pattern[i + 1] if i + 1 < n else ""
            if nxt == "C":
                return "invalid escape sequence: \\C"
            if nxt == "Q" and not in_class:
                end = pattern.find("\\E", i + 2)
                i = n if end < 0 else end + 2
                continue
            if nxt in "pP":
                name, i = _class_name(pattern, i + 2)
                if name.lstrip("^") in _NEWER_SCRIPTS:
                    return f"invalid character class range: \\{nxt}{{{name}}}"
                continue
            i += 2
            continue
        if in_class:
            if ch == "[" and pattern.startswith(":", i + 1):  # [:alpha:]
                end = pattern.find(":]", i + 2)
                i = end + 2 if end >= 0 else i + 1
                continue
            in_class = ch != "]"
            i += 1
            continue
        if ch == "[":
            in_class = True
            i += 1
            if pattern.startswith("^", i):
                i += 1
            if pattern.startswith("]", i):  # a leading ] is a literal
                i += 1
            continue
        if ch == "(":
            if pattern.startswith("(?<", i):
                return "invalid or unsupported Perl syntax: (?<"
            if pattern.startswith("(?P<", i):
                end = pattern.find(">", i + 4)
                name = pattern[i + 4:end]
                if not _CAPTURE_NAME.fullmatch(name):
                    return f"invalid named capture: (?P<{name}>"
        i += 1
    return None


def _class_name(pattern: str, i: int) -> tuple[str, int]:
    """The name after ``\\p`` at ``i`` (``L`` or ``{Greek}``) and where it ends."""
    if pattern.startswith("{", i):
        end = pattern.find("}", i)
        return pattern[i + 1:end], end + 1
    return pattern[i:i + 1], i + 1
