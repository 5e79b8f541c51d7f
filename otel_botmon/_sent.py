"""The credentials a request sent, scrubbed by value from what its failure says.

Redaction finds most secrets by the name beside them (``signature=``, ``"sign": ``,
``OK-ACCESS-SIGN: ``). An error page that echoes the request in another layout (an
HTML table of the headers, a PHP ``print_r`` dump, ``name => value``) puts a
signature, a passphrase's HMAC or a bearer token where no name is next to it, and
those values change with every request, so they cannot be registered ahead. While an
instrumented exchange request is under way, the values of its sensitive headers are
known: they are held here (in a context variable, so only that request's own logs see
them) and replaced by value in the exception it raises and in the log records written
meanwhile, whatever the layout.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from typing import Final

from otel_botmon._redact_scan import scrub_literals
from otel_botmon.redaction import is_sensitive_key

__all__ = ["SENT", "scrub_exception", "scrub_sent", "sent_credentials"]

MIN_SENT_LENGTH: Final = 8  # shorter values (a key version, "2") are ordinary text
_MAX_HEADERS: Final = 64  # a request's headers looked at, at most
_MAX_CHAIN: Final = 8  # exceptions of a cause/context chain scrubbed, at most
_MAX_ARGS: Final = 16  # arguments of one exception scrubbed, at most

SENT: ContextVar[tuple[str, ...]] = ContextVar("otel_botmon_sent_credentials", default=())
"""The sensitive header values of the request under way in this context (longest first)."""


def sent_credentials(headers: object) -> tuple[str, ...]:
    """The values of the sensitive headers in ``headers`` (a mapping of ``str``), and the
    token of an ``Authorization``-style value (``Bearer <jwt>``), longest first; values
    shorter than 8 characters are left out. Never raises."""
    if not isinstance(headers, Mapping) or not headers:
        return ()
    found: set[str] = set()
    try:
        for count, (name, value) in enumerate(headers.items()):
            if count >= _MAX_HEADERS:
                break
            if not isinstance(name, str) or not isinstance(value, str):
                continue
            if len(value) < MIN_SENT_LENGTH or not is_sensitive_key(name):
                continue
            found.add(value)
            _, space, token = value.partition(" ")
            token = token.strip()
            if space and len(token) >= MIN_SENT_LENGTH:
                found.add(token)
    except Exception:  # an odd mapping: nothing found, nothing raised
        return ()
    return tuple(sorted(found, key=len, reverse=True))


def scrub_sent(text: str, sent: tuple[str, ...] | None = None) -> str:
    """``text`` with every value of ``sent`` (default: the request under way) replaced."""
    values = SENT.get() if sent is None else sent
    return scrub_literals(text, values) if values else text


def scrub_exception(exc: BaseException, sent: tuple[str, ...]) -> None:
    """Replace the values of ``sent`` in the string arguments and notes of ``exc`` and of
    the exceptions it was raised from (``__cause__``, ``__context__``), in place: its
    text and traceback (``str()``, logging, the spans' exception events) no longer hold
    them. Other attributes are left as they are (an ``aiohttp`` error's request object,
    a ``JSONDecodeError``'s document), and so is their ``repr()``. Never raises."""
    if not sent:
        return
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending and len(seen) < _MAX_CHAIN:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        try:
            args = current.args
            if len(args) <= _MAX_ARGS and any(isinstance(a, str) for a in args):
                scrubbed = tuple(scrub_literals(a, sent) if isinstance(a, str) else a
                                 for a in args)
                if scrubbed != args:
                    current.args = scrubbed
        except Exception:  # an exception class whose args cannot be set
            pass
        notes = getattr(current, "__notes__", None)
        if isinstance(notes, list) and len(notes) <= _MAX_ARGS:
            try:
                notes[:] = [scrub_literals(n, sent) if isinstance(n, str) else n
                            for n in notes]
            except Exception:  # pragma: no cover - notes of an odd kind
                pass
        pending += (current.__cause__, current.__context__)

