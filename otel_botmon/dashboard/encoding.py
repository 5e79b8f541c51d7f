"""JSON as the dashboard sends it: text that every browser's ``JSON.parse`` accepts.

Python's ``json`` writes ``NaN`` and ``Infinity`` for non-finite floats, which is not
JSON: one such number (a counter whose sum overflowed, a health check's metric) made
the page unable to read any update, and Starlette's own response refused it with a 500.
Here a non-finite number is ``null`` (shown as a dash), a value JSON has no type for is its
text (redacted: it may be an object that prints a key), and a mapping key that is not a
string becomes its text.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from starlette.responses import JSONResponse

from otel_botmon.redaction import redact_text

_MAX_DEPTH = 64
"""Deeper than any view the monitor builds; past it a value is written as its text."""


def _text(value: object) -> str:
    return redact_text(str(value))


def _safe(value: Any, depth: int) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (str, int)):
        return value
    if depth >= _MAX_DEPTH:
        return _text(value)
    if isinstance(value, Mapping):
        return {
            key if isinstance(key, str) else _text(key): _safe(item, depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [_safe(item, depth + 1) for item in value]
    return _text(value)


def json_safe(value: Any) -> Any:
    """``value`` with non-finite floats as None, string keys, and what JSON cannot hold
    as (redacted) text. Never raises."""
    return _safe(value, 0)


def dumps(value: Any) -> str:
    """Compact JSON text of ``value`` that any JSON parser accepts (see the module)."""
    try:  # the common case: already clean, one pass in C
        return json.dumps(value, allow_nan=False, default=_text, separators=(",", ":"))
    except (ValueError, TypeError, RecursionError):
        return json.dumps(json_safe(value), allow_nan=False, separators=(",", ":"))


class SafeJSONResponse(JSONResponse):
    """A ``JSONResponse`` written with :func:`dumps` (never a 500 for a NaN)."""

    def render(self, content: Any) -> bytes:
        return dumps(content).encode("utf-8")
