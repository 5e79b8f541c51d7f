"""Bad input from the bot or the exchange: one clear log line, every occurrence counted."""

from __future__ import annotations

from otel_botmon import conventions as conv
from otel_botmon import telemetry
from otel_botmon.instrument._values import warn_once


def report_bad_input(component: str, site: str, field: str, message: str) -> None:
    """Log ``message`` once per (site, field) and count ``botmon.internal.errors``
    (``error.type=BadInput``) every time. Never raises."""
    try:
        warn_once(site, field, message)
        telemetry.instrument(conv.INTERNAL_ERRORS).add(
            1, {conv.INTERNAL_COMPONENT: component, conv.ERROR_TYPE: "BadInput"}
        )
    except Exception:  # pragma: no cover - counting must never fail the bot
        pass
