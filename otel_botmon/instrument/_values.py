"""Turning bot-supplied values (symbols, sides, quantities, prices) into attribute values.

Bots pass whatever their exchange client uses: floats, ints, ``Decimal``, numeric strings
(Binance's REST API speaks strings), enums for sides and order types. Values that cannot
be used are dropped with one warning per call site and field, never raised: telemetry
must not break the trade it observes.
"""

from __future__ import annotations

import logging
import math
import threading
from decimal import Decimal
from enum import Enum
from numbers import Real

logger = logging.getLogger("otel_botmon.instrument")

_MAX_WARNED = 1024
_warned: set[tuple[str, str]] = set()
_warned_lock = threading.Lock()


def warn_once(site: str, field: str, message: str) -> None:
    """Log ``message`` as a warning the first time (site, field) has a problem."""
    key = (site, field)
    with _warned_lock:
        if key in _warned:
            return
        # Bounded memory: past the cap, new (site, field) pairs are warned but not kept.
        if len(_warned) < _MAX_WARNED:
            _warned.add(key)
    logger.warning(message)


def reset_warnings() -> None:
    """Forget which call sites were warned about (tests)."""
    with _warned_lock:
        _warned.clear()


def as_number(value: object, field: str, site: str) -> float | None:
    """``value`` as a finite float, or None (with one warning per site and field).

    Accepts int, float, Decimal, other ``numbers.Real`` and numeric strings; rejects
    bools, NaN, infinities and anything else.
    """
    kind = type(value)
    if kind is float:
        number = value
    elif kind is int:
        number = float(value)  # type: ignore[arg-type]
    elif kind is bool:
        number = None
    elif isinstance(value, (Real, Decimal)):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            number = None
    else:
        number = None
    if number is not None and math.isfinite(number):  # type: ignore[arg-type]
        return number  # type: ignore[return-value]
    warn_once(
        site, field,
        f"otel_botmon: {field}={value!r:.40} in {site} is not a finite number; "
        f"the trade is recorded without its {field} (warned once per call site)",
    )
    return None


def as_label(value: object, *, upper: bool = False) -> str:
    """A string attribute for a symbol, side or order type (enums give their value)."""
    if type(value) is str:
        return value.upper() if upper else value
    if isinstance(value, Enum):
        value = value.value
    text = str(value)
    return text.upper() if upper else text
