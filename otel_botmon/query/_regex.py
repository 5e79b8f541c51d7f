"""Regular expressions of label matchers, with Prometheus' (RE2) semantics.

Prometheus compiles a matcher's regex with Go's ``regexp`` (RE2 syntax), anchored at
both ends. RE2 runs in time linear in the input and cannot backtrack, so ``(a+)+$``
answers at once; Python's ``re`` would take exponential time on such a pattern and its
syntax differs (look-ahead, back-references, ``\\d`` matching non-ASCII digits, no POSIX
classes such as ``[[:alpha:]]``). Every matcher of the condition language and every
silence matcher is compiled here, with the ``google-re2`` binding.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Protocol

__all__ = ["AnchoredRegex", "RegexError", "compile_anchored"]

MAX_PATTERN_LENGTH = 4096


class RegexError(ValueError):
    """A pattern RE2 does not accept; the message says why."""


class AnchoredRegex(Protocol):
    def fullmatch(self, text: str) -> object | None: ...


@lru_cache(maxsize=1)
def _re2() -> tuple[Any, Any]:
    """The ``re2`` module and its options, imported on first use (it is a C extension
    that takes tens of milliseconds to load; most processes never compile a regex)."""
    import re2

    options = re2.Options()
    options.log_errors = False  # RE2 would write its own message to stderr
    return re2, options


@lru_cache(maxsize=1024)
def compile_anchored(pattern: str) -> AnchoredRegex:
    """The compiled ``pattern`` for whole-string matching (``fullmatch``), as
    Prometheus anchors a matcher's regex (``^(?:pattern)$``). Raises :class:`RegexError`
    for a pattern RE2 refuses or one longer than ``MAX_PATTERN_LENGTH``."""
    if not isinstance(pattern, str):
        raise RegexError(f"a regular expression must be a string, got {type(pattern).__name__}")
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise RegexError(f"regular expression longer than {MAX_PATTERN_LENGTH} characters")
    if "\\C" in pattern.replace("\\\\", ""):
        # C++ RE2 reads \C as "any byte"; Go's regexp (Prometheus) refuses it
        raise RegexError("invalid escape sequence: \\C")
    re2, options = _re2()
    try:
        compiled: AnchoredRegex = re2.compile(pattern, options=options)
    except re2.error as exc:
        raise RegexError(_message(exc)) from None
    except (TypeError, ValueError, OverflowError) as exc:  # pragma: no cover - defensive
        raise RegexError(str(exc)) from None
    return compiled


def _message(exc: BaseException) -> str:
    parts = []
    for arg in exc.args:
        parts.append(arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg))
    return "; ".join(parts) or "invalid regular expression"
