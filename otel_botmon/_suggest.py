"""Near misses of known names: a typo in a rule file's key or in a settings keyword.

Imports nothing of otel_botmon, so the settings classes (``MonitoringConfig``,
``NotificationConfig``) and the rule-file reader share it without importing each other.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Callable, Iterable
from dataclasses import fields
from typing import Any, TypeVar

__all__ = ["did_you_mean", "reject_unknown_keywords"]

_Class = TypeVar("_Class", bound=type)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``"did you mean 'severity'? "`` for a near miss of one of ``choices`` (a typo in a
    key or a value), else ``""``; put it before the list of known names."""
    names = list(choices)
    close = difflib.get_close_matches(word, names, n=1, cutoff=0.75)
    if not close:
        close = [c for c in names if c.lower() == word.lower()]
    return f"did you mean {close[0]!r}? " if close else ""


def reject_unknown_keywords(cls: _Class) -> _Class:
    """Make the dataclass ``cls`` refuse an unknown keyword with a ``TypeError`` that
    names it, suggests the closest field and lists the known ones (Python's own message
    names the keyword but suggests nothing). Apply it above ``@dataclass``.

    The message never shows the value given, which may be a secret (``smtp_pasword=``).
    """
    known = tuple(f.name for f in fields(cls) if f.init)
    accepted = frozenset(known)
    init: Callable[..., None] = cls.__init__  # type: ignore[misc]

    @functools.wraps(init)
    def checked_init(self: Any, *args: Any, **kwargs: Any) -> None:
        unknown = [name for name in kwargs if name not in accepted]
        if unknown:
            raise TypeError(_unknown_message(cls.__name__, unknown, known))
        init(self, *args, **kwargs)

    cls.__init__ = checked_init  # type: ignore[misc]
    return cls


def _unknown_message(owner: str, unknown: list[str], known: tuple[str, ...]) -> str:
    parts = []
    for name in unknown:
        hint = did_you_mean(name, known).strip()
        parts.append(f"{name!r} ({hint})" if hint else repr(name))
    word = "an unknown keyword" if len(unknown) == 1 else "unknown keywords"
    return f"{owner}() got {word} {', '.join(parts)}; known: {', '.join(known)}"
