"""Errors inside otel_botmon: logged once, counted, never raised into bot code."""

from __future__ import annotations

import logging
import threading

from otel_botmon import conventions as conv

logger = logging.getLogger("otel_botmon")

_seen: set[tuple[str, str]] = set()
_seen_lock = threading.Lock()


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
        from otel_botmon import telemetry

        telemetry.instrument(conv.INTERNAL_ERRORS).add(
            1, {conv.INTERNAL_COMPONENT: component, conv.ERROR_TYPE: error_type}
        )
    except Exception:  # pragma: no cover - the last line of defence
        pass


def reset_internal_errors() -> None:
    """Forget which errors were logged (tests)."""
    with _seen_lock:
        _seen.clear()
