"""Exchange rate-limit headers into ``botmon.exchange.ratelimit.used``.

Exchanges report how much of their request budget a client has used in response headers:
Binance sends ``X-MBX-USED-WEIGHT-<interval>`` and ``X-MBX-ORDER-COUNT-<interval>`` on
every response and ``Retry-After`` when it throttles (429) or bans (418) an IP.
:func:`record_ratelimit_headers` turns them into gauge readings by ``exchange.name``,
``ratelimit.kind`` (``weight``, ``orders``, ``retry_after``) and ``ratelimit.interval``
(``1m``, ``10s``, ``1d`` ...). Works with any HTTP client's headers; ``instrument_httpx``
calls it for every response. A header that does not hold a number is skipped with one
warning; nothing here raises.
"""

from __future__ import annotations

import email.utils
import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Final

from otel_botmon import conventions as conv
from otel_botmon._internal import report_internal_error
from otel_botmon.instrument._values import warn_once
from otel_botmon.instrument.exchange import _instruments, default_exchange

__all__ = ["parse_ratelimit_headers", "record_ratelimit_headers"]

RATELIMIT_WEIGHT: Final = "weight"
RATELIMIT_ORDERS: Final = "orders"
RATELIMIT_RETRY_AFTER: Final = "retry_after"

# Binance: X-MBX-USED-WEIGHT-1M, X-MBX-ORDER-COUNT-10S, X-SAPI-USED-IP-WEIGHT-1M ...
_RATELIMIT_HEADER: Final = re.compile(
    r"^x-(?:mbx-used-weight|sapi-used-(?:ip|uid)-weight|mbx-order-count)-(\d+)([smhd])$",
    re.IGNORECASE,
)
# Statuses after which Retry-After says how long the exchange wants us to back off
# (418: Binance's IP ban after ignoring 429s).
_RETRY_AFTER_STATUSES: Final = frozenset({418, 429, 503})


def _header_pairs(headers: object) -> Iterable[tuple[object, object]]:
    multi = getattr(headers, "multi_items", None)
    if callable(multi):
        pairs: Iterable[tuple[object, object]] = multi()
        return pairs
    if isinstance(headers, Mapping):
        return headers.items()
    if isinstance(headers, Iterable) and not isinstance(headers, (str, bytes)):
        return headers  # a list of (name, value) pairs, as httpcore gives them
    return ()


def _text(value: object) -> str:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("latin-1")
    return str(value)


def _retry_after_seconds(value: str) -> float | None:
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - datetime.now(timezone.utc)).total_seconds()
        return max(seconds, 0.0)
    return seconds if seconds >= 0 and seconds == seconds else None


def parse_ratelimit_headers(
    headers: object, status_code: int | None = None, *, site: str = "ratelimit"
) -> list[tuple[str, str | None, float]]:
    """The rate-limit readings in ``headers`` as ``(kind, interval, value)`` tuples.

    ``X-MBX-USED-WEIGHT-1M: 1200`` gives ``("weight", "1m", 1200.0)``,
    ``X-MBX-ORDER-COUNT-10S`` kind ``"orders"``; ``Retry-After`` on a 418/429/503 gives
    ``("retry_after", None, seconds)``. Accepts a mapping, ``httpx.Headers`` or
    ``(name, value)`` pairs (str or bytes). Unparseable values are skipped with one
    warning per header name; never raises.
    """
    readings: list[tuple[str, str | None, float]] = []
    try:
        for raw_name, raw_value in _header_pairs(headers):
            name = _text(raw_name)
            match = _RATELIMIT_HEADER.match(name)
            if match is not None:
                kind = RATELIMIT_ORDERS if "order" in name.lower() else RATELIMIT_WEIGHT
                interval = f"{int(match.group(1))}{match.group(2).lower()}"
                value = _parse_count(_text(raw_value))
                if value is None:
                    _warn_bad_header(site, name, raw_value)
                    continue
                readings.append((kind, interval, value))
            elif name.lower() == "retry-after" and status_code in _RETRY_AFTER_STATUSES:
                seconds = _retry_after_seconds(_text(raw_value))
                if seconds is None:
                    _warn_bad_header(site, name, raw_value)
                    continue
                readings.append((RATELIMIT_RETRY_AFTER, None, seconds))
    except (TypeError, ValueError) as exc:  # headers of an unexpected shape
        warn_once(site, "headers", f"otel_botmon: unreadable response headers in {site}: "
                                   f"{type(exc).__name__}; rate limits not recorded")
    return readings


def _parse_count(value: str) -> float | None:
    value = value.strip()
    if not value.isdigit():
        return None
    return float(int(value))


def _warn_bad_header(site: str, name: str, value: object) -> None:
    warn_once(
        site, name.lower(),
        f"otel_botmon: response header {name}: {_text(value)!r:.40} is not a number; "
        "skipped (warned once per header)",
    )


def record_ratelimit_headers(
    headers: object, *, exchange: str | None = None, status_code: int | None = None
) -> list[tuple[str, str | None, float]]:
    """Record the rate-limit headers of one response on ``botmon.exchange.ratelimit.used``.

    Works with any HTTP client's headers (see :func:`parse_ratelimit_headers`); returns
    the readings it recorded. ``exchange`` defaults to ``configure(exchange=...)``.
    Never raises.
    """
    try:
        readings = parse_ratelimit_headers(headers, status_code, site="ratelimit headers")
        if not readings:
            return readings
        gauge = _instruments().ratelimit
        name = exchange or default_exchange()
        for kind, interval, value in readings:
            attrs = {conv.EXCHANGE_NAME: name, conv.RATELIMIT_KIND: kind}
            if interval is not None:
                attrs[conv.RATELIMIT_INTERVAL] = interval
            gauge.set(value, attrs)
        return readings
    except Exception as exc:
        report_internal_error("ratelimit", exc)
        return []
