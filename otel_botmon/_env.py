"""The environment variables otel_botmon reads, and how a bad value is reported.

A value that cannot be used is never ignored silently: the reader logs one warning per
variable and value naming the variable, the value (unless the variable can hold a
secret) and what is used instead. Booleans follow the OpenTelemetry specification: only
``true`` (any case) is true; ``false`` and unset are false; anything else is false with a
warning. Settings that would break exporting (``OTEL_EXPORTER_OTLP_ENDPOINT``,
``_PROTOCOL``, ``_HEADERS``) are refused by :func:`otel_botmon.configure` instead.

Imports nothing of otel_botmon.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Collection
from typing import Final

__all__ = [
    "BOTMON_DEMO_API_KEY", "BOTMON_DEMO_API_SECRET", "BOTMON_DEMO_TIME_SCALE",
    "BOTMON_TOKEN", "BOTMON_TRADE_METRICS", "BOTMON_URL", "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_METRIC_EXPORT_INTERVAL",
    "OTEL_RESOURCE_ATTRIBUTES", "OTEL_SDK_DISABLED", "OTEL_SERVICE_NAME", "SECRET_VARIABLES",
    "read_bool", "read_choice", "read_positive_float", "reset_warnings", "warn_bad_value",
]

OTEL_SDK_DISABLED: Final = "OTEL_SDK_DISABLED"
OTEL_SERVICE_NAME: Final = "OTEL_SERVICE_NAME"
OTEL_RESOURCE_ATTRIBUTES: Final = "OTEL_RESOURCE_ATTRIBUTES"
OTEL_EXPORTER_OTLP_ENDPOINT: Final = "OTEL_EXPORTER_OTLP_ENDPOINT"
OTEL_EXPORTER_OTLP_PROTOCOL: Final = "OTEL_EXPORTER_OTLP_PROTOCOL"
OTEL_EXPORTER_OTLP_HEADERS: Final = "OTEL_EXPORTER_OTLP_HEADERS"
OTEL_METRIC_EXPORT_INTERVAL: Final = "OTEL_METRIC_EXPORT_INTERVAL"
BOTMON_TRADE_METRICS: Final = "BOTMON_TRADE_METRICS"
"""``sdk`` records trade metrics through the SDK's instruments (the reference the lean
aggregation is tested against); ``lean`` (the default) through the lean aggregation."""
BOTMON_DEMO_TIME_SCALE: Final = "BOTMON_DEMO_TIME_SCALE"
BOTMON_DEMO_API_KEY: Final = "BOTMON_DEMO_API_KEY"
BOTMON_DEMO_API_SECRET: Final = "BOTMON_DEMO_API_SECRET"
BOTMON_URL: Final = "BOTMON_URL"
BOTMON_TOKEN: Final = "BOTMON_TOKEN"

SECRET_VARIABLES: Final = frozenset({
    OTEL_EXPORTER_OTLP_HEADERS, BOTMON_TOKEN, BOTMON_DEMO_API_KEY, BOTMON_DEMO_API_SECRET,
})
"""Variables whose value is never shown in a message."""

logger = logging.getLogger("otel_botmon")

_warned: set[tuple[str, str]] = set()
_warned_lock = threading.Lock()


def warn_bad_value(name: str, raw: str, expected: str, used: str) -> None:
    """Log once per ``(name, raw)``: ``name`` has value ``raw``, not ``expected``, so
    ``used`` applies. The value is left out for :data:`SECRET_VARIABLES`."""
    with _warned_lock:
        if (name, raw) in _warned:
            return
        _warned.add((name, raw))
    shown = "(value not shown: it may hold a secret)" if name in SECRET_VARIABLES else repr(raw)
    logger.warning("otel_botmon: %s=%s is not %s; using %s", name, shown, expected, used)


def read_bool(name: str) -> bool:
    """The boolean ``name`` as the OpenTelemetry specification reads it (see module)."""
    raw = os.environ.get(name, "")
    value = raw.strip().lower()
    if value == "true":
        return True
    if value not in ("", "false"):
        warn_bad_value(name, raw, "'true' or 'false'", "false")
    return False


def read_choice(name: str, choices: Collection[str], default: str) -> str:
    """``name`` lower-cased when it is one of ``choices``, else ``default`` (unset and
    empty silently, anything else with a warning)."""
    raw = os.environ.get(name, "")
    value = raw.strip().lower()
    if value in choices:
        return value
    if value:
        known = " or ".join(repr(c) for c in choices)
        warn_bad_value(name, raw, known, repr(default))
    return default


def read_positive_float(
    name: str, default: float, *, scale: float = 1.0, maximum: float = math.inf,
    unit: str = "",
) -> float:
    """``name`` as a number times ``scale`` when that is positive, finite and at most
    ``maximum``; else ``default`` (unset and empty silently, anything else with a
    warning). ``unit`` names what the variable counts, for the message."""
    raw = os.environ.get(name, "")
    if not raw.strip():
        return default
    try:
        value = float(raw) * scale
    except ValueError:
        value = math.nan
    if math.isfinite(value) and 0 < value <= maximum:
        return value
    bound = "" if math.isinf(maximum) else f" (at most {maximum / scale:.0f})"
    warn_bad_value(name, raw, f"a positive, finite number{unit}{bound}", repr(default / scale))
    return default


def reset_warnings() -> None:
    """Warn again about values already reported (for tests)."""
    with _warned_lock:
        _warned.clear()
