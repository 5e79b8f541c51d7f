"""Errors inside otel_botmon: logged once, counted, never raised into bot code.

The error sink at the bottom of the package: it imports nothing above ``conventions``.
``otel_botmon.telemetry`` plugs the counter in (:func:`set_error_counter`) when it loads;
before that, errors are only logged.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

logger = logging.getLogger("otel_botmon")

_seen: set[tuple[str, str]] = set()
_seen_lock = threading.Lock()
# (component, error type) -> count one ``botmon.internal.errors``; set by telemetry.
_count_error: Callable[[str, str], None] | None = None


def set_error_counter(counter: Callable[[str, str], None] | None) -> None:
    """Where each reported error is counted (``otel_botmon.telemetry`` sets it)."""
    global _count_error
    _count_error = counter


def report_internal_error(component: str, exc: BaseException) -> None:
    """Record an error that otel_botmon caught so the bot could go on.

    The first occurrence of each (component, exception type) is logged with its
    traceback; every occurrence increments ``botmon.internal.errors``. This function
    itself never raises.
    """
    error_type = type(exc).__qualname__
    try:
        key = (component, error_type)
        with _seen_lock:
            first = key not in _seen
            _seen.add(key)
        if first:
            # Secrets can hide in exception text (URLs with signatures): scrub it.
            from otel_botmon.redaction import redact_text

            logger.error(
                "otel_botmon internal error in %s (%s): %s; the bot continues, "
                "further %s errors here are only counted",
                component, error_type, redact_text(str(exc)), error_type,
            )
        count = _count_error
        if count is not None:
            count(component, error_type)
    except Exception:  # pragma: no cover - the last line of defence
        pass


def reset_internal_errors() -> None:
    """Forget which errors were logged (tests)."""
    with _seen_lock:
        _seen.clear()
