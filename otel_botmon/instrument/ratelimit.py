"""Exchange rate-limit headers into the ``botmon.exchange.ratelimit.*`` gauges.

Which headers an exchange sends, which request budget a path counts against and how big
a budget is are data, in :mod:`otel_botmon.exchanges`. This module reads one response's
headers with that table and sets, by ``exchange.name``, ``ratelimit.budget`` and
``ratelimit.interval``:

* ``botmon.exchange.ratelimit.used`` ({weight}): weight or requests used in the interval
  (Binance ``X-MBX-USED-WEIGHT-1M``; Bybit/KuCoin/Gate.io limit minus remaining);
* ``botmon.exchange.ratelimit.orders`` ({order}): orders placed in the interval;
* ``botmon.exchange.ratelimit.utilization`` (1): used / limit, 0..1, where the limit is
  known (sent by the exchange, or documented in the table), the highest of weight and
  orders for one budget and interval;
* ``botmon.exchange.ratelimit.remaining`` ({request}): what is left in the interval, where
  the exchange says (HTX and BingX say nothing else: no limit, no window);
* ``botmon.exchange.ratelimit.retry_after`` (s, by exchange and budget): ``Retry-After``
  on a 418/429/503 (any exchange), delay-seconds (ASCII digits) or an HTTP date, at most
  a year away; back to 0 on the next response without it.

The IETF ``RateLimit``/``RateLimit-Policy`` fields (quota ``q`` per ``w`` seconds, ``r``
remaining) are read for any exchange that is known, into the same gauges by window.

The exchange is the one named (``configure(exchange=...)``, ``instrument_*(exchange=)``)
or, failing that, the one whose API host or headers the response has (a generic name
such as ``X-RateLimit-Limit`` names no exchange); :func:`exchange_label` decides it once
per response, for the request's other metrics too. The request's HTTP method picks the
budget where an exchange's differ by method on one path (Gate.io's ``POST`` and ``GET``
``/api/v4/spot/orders``). A header repeated on one response is one list (RFC 9110;
requests joins it as ``"12, 13"``): its reading is the most cautious of its items, the
most used, orders and window, the least remaining, the smallest limit, the longest
Retry-After. An item that is not a non-negative number is skipped with one warning per
header name and counted in ``botmon.internal.errors``; nothing here raises.
"""

from __future__ import annotations

import email.utils
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

from opentelemetry.metrics import Observation

from otel_botmon import conventions as conv
from otel_botmon._internal import report_internal_error
from otel_botmon._observable import create_observable
from otel_botmon._state import STATE, ObservableRegistration
from otel_botmon.exchanges import EXCHANGES, Budget, Exchange, RateLimitHeader, find_exchange
from otel_botmon.instrument._badinput import report_bad_input
from otel_botmon.instrument._ratelimit_fields import parse_policies
from otel_botmon.instrument._values import warn_once
from otel_botmon.instrument.exchange import UNKNOWN, default_exchange, endpoint_from_path

__all__ = ["exchange_label", "parse_ratelimit_headers", "record_ratelimit_headers",
           "record_response_headers"]

USED: Final = "used"
ORDERS: Final = "orders"
RETRY_AFTER: Final = "retry_after"
UTILIZATION: Final = "utilization"
REMAINING: Final = "remaining"
DEFAULT_BUDGET: Final = "default"

# Statuses after which Retry-After says how long the exchange wants us to back off
# (418: Binance's IP ban after ignoring 429s).
_RETRY_AFTER_STATUSES: Final = frozenset({418, 429, 503})
_INTERVAL: Final = r"(\d{1,6})([smhd])"
# Retry-After (RFC 9110): delay-seconds is ASCII digits (a fraction is tolerated), else an
# HTTP date. float() would also take "1e308", "1_000", "-0" and Arabic-Indic digits.
_DELAY_SECONDS: Final = re.compile(r"[0-9]{1,15}(?:\.[0-9]{1,9})?")
_MAX_HTTP_DATE_CHARS: Final = 64
# A longer wait is not a ban a bot can sit out (Binance's IP bans last up to 3 days):
# nonsense, skipped as bad input rather than recorded.
MAX_RETRY_AFTER_S: Final = 366 * 86400.0

Reading = tuple[str, str, str | None, float]
"""``(instrument, budget, interval, value)``; instrument is used/orders/retry_after/
utilization; interval is None for retry_after."""


class _Entry:
    """One table header row compiled: which exchange and budget it belongs to."""

    __slots__ = ("budget", "exchange", "regex", "spec")

    def __init__(self, exchange: Exchange, budget: str, spec: RateLimitHeader) -> None:
        self.exchange = exchange
        self.budget = budget
        self.spec = spec
        self.regex = re.compile(
            "^" + re.escape(spec.pattern.lower()).replace(re.escape("{interval}"), _INTERVAL)
            + "$"
        )


_ENTRIES: Final[tuple[_Entry, ...]] = tuple(
    _Entry(row, budget.name, spec)
    for row in EXCHANGES for budget in row.budgets for spec in budget.headers
)
# Header names repeat on every response: remember which table rows each one matches.
_NAME_CACHE_SIZE: Final = 512
# No table name is longer (the longest pattern is 33 characters, an interval adds up to
# 7); a longer one is neither matched nor remembered, so the cache stays small.
_MAX_NAME_CHARS: Final = 64
_by_name: dict[str, tuple[tuple[_Entry, str | None], ...]] = {}


def _entries_for(lname: str) -> tuple[tuple[_Entry, str | None], ...]:
    if len(lname) > _MAX_NAME_CHARS:
        return ()
    found = _by_name.get(lname)
    if found is None:
        hits: list[tuple[_Entry, str | None]] = []
        if lname.startswith(("x-", "gw-", "ratelimit-")):
            for entry in _ENTRIES:
                match = entry.regex.match(lname)
                if match is not None:
                    interval = entry.spec.interval
                    if match.groups():
                        interval = f"{int(match.group(1))}{match.group(2)}"
                    hits.append((entry, interval))
        found = tuple(hits)
        if len(_by_name) >= _NAME_CACHE_SIZE:
            _by_name.clear()
        _by_name[lname] = found
    return found


def _split_paths(paths: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A budget's plain path prefixes, and its ``"METHOD /path"`` ones."""
    return (tuple(p for p in paths if p.startswith("/")),
            tuple(p for p in paths if not p.startswith("/")))


# Each budget's paths split once (the table is fixed): plain, and method-qualified.
_PATHS: Final[dict[int, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    id(budget): _split_paths(budget.paths) for row in EXCHANGES for budget in row.budgets}


def _path_matches(budget: Budget, path: str | None, method: str | None) -> bool:
    if not budget.paths:
        return True
    if path is None:
        return False
    plain, qualified = _PATHS.get(id(budget)) or _split_paths(budget.paths)
    if plain and path.startswith(plain):
        return True
    return bool(qualified) and method is not None and \
        f"{method.upper()} {path}".startswith(qualified)


def _path_budget(row: Exchange | None, path: str | None, host: str | None = None,
                 venue: str | None = None, method: str | None = None) -> str:
    """The budget a request counts against: the first whose paths (with the request's
    HTTP method, where a path names one), and hosts (or, for a host that is not the
    exchange's, venues: the ccxt id the bot named) it matches."""
    if row is None:
        return DEFAULT_BUDGET
    lhost = host.lower() if host else None
    by_host = lhost is not None and lhost in row.hosts
    lvenue = venue.lower() if venue else None
    for budget in row.budgets:
        if not _path_matches(budget, path, method):
            continue
        if budget.hosts or budget.venues:
            if by_host and lhost not in budget.hosts:
                continue
            if not by_host and lvenue not in budget.venues:
                continue
        return budget.name
    return DEFAULT_BUDGET


def _budget_label(row: Exchange | None, budget: str, path: str | None) -> str:
    """``ratelimit.budget`` of a reading: the budget, with the ``exchange.endpoint``
    label of the path (identifiers and tokens ``{id}``, at most 128 characters) when the
    exchange limits each endpoint on its own (``Budget.per_endpoint``)."""
    if row is not None and path:
        for b in row.budgets:
            if b.name == budget and b.per_endpoint:
                return f"{budget} {endpoint_from_path(path)}"
    return budget


def _header_pairs(headers: object) -> Iterable[tuple[object, object]]:
    multi = getattr(headers, "multi_items", None)
    if callable(multi):
        pairs: Iterable[tuple[object, object]] = multi()
        return pairs
    if isinstance(headers, Mapping):
        return headers.items()
    items = getattr(headers, "items", None)  # requests' CaseInsensitiveDict, multidict
    if callable(items):
        found: Iterable[tuple[object, object]] = items()
        return found
    if isinstance(headers, Iterable) and not isinstance(headers, (str, bytes)):
        return headers  # a list of (name, value) pairs, as httpcore gives them
    return ()


def _text(value: object) -> str:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("latin-1")
    return str(value)


def _retry_after_seconds(value: str) -> float | None:
    value = value.strip()
    if _DELAY_SECONDS.fullmatch(value):
        seconds = float(value)
    else:
        if len(value) > _MAX_HTTP_DATE_CHARS:
            return None
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = max((when - datetime.now(UTC)).total_seconds(), 0.0)
    return seconds if seconds <= MAX_RETRY_AFTER_S else None


def _parse_count(value: str) -> float | None:
    value = value.strip()
    if not value.isascii() or not value.isdigit() or len(value) > 15:
        return None
    return float(int(value))


# One header repeated on one response (a proxy chain adding its own, a CDN, a gateway in
# front of the exchange) can say two things: the values are combined as the most
# cautious reading, the most spent and the least left, whichever layer said it.
_COMBINE: Final[dict[str, Callable[[list[float]], float]]] = {
    USED: max, ORDERS: max, "window": max, REMAINING: min, "limit": min}


def _list_items(raw_values: list[object]) -> list[str]:
    """The items of a header's values (RFC 9110 5.3: repeated field lines are one
    comma-separated list, which is what requests hands over)."""
    return [item.strip() for raw in raw_values for item in _text(raw).split(",")]


def _header_value(site: str, lname: str, kind: str, raw_values: list[object]) -> float | None:
    """The reading of one header however often it came: each item a count, bad items
    skipped (warned once per header name), the rest combined by :data:`_COMBINE`."""
    sound: list[float] = []
    for item in _list_items(raw_values):
        value = _parse_count(item)
        if value is None:
            _bad_header(site, lname, item)
        else:
            sound.append(value)
    return _COMBINE[kind](sound) if sound else None


# An HTTP date has a comma after the day name ("Wed, 21 Oct 2015 07:28:00 GMT").
_DAY_NAME: Final = re.compile(r"[A-Za-z]{3}")


def _retry_after_value(site: str, raw_values: list[object]) -> float | None:
    """The longest wait the ``Retry-After`` values of one response ask for."""
    waits: list[float] = []
    for raw in raw_values:
        items = _text(raw).split(",")
        while items:
            item = items.pop(0).strip()
            if _DAY_NAME.fullmatch(item) and items:  # the day name of a date
                item = f"{item}, {items.pop(0).strip()}"
            seconds = _retry_after_seconds(item)
            if seconds is None:
                _bad_header(site, "retry-after", item)
            else:
                waits.append(seconds)
    return max(waits) if waits else None


class _Budget:
    """The readings of one (budget, interval) in one response."""

    __slots__ = ("limit", "orders", "orders_limit", "remaining", "used", "used_limit",
                 "window_ms")

    def __init__(self) -> None:
        self.window_ms: float | None = None
        self.used: float | None = None
        self.orders: float | None = None
        self.remaining: float | None = None
        self.limit: float | None = None
        self.used_limit: float | None = None
        self.orders_limit: float | None = None


def _choose(
    hits: tuple[tuple[_Entry, str | None], ...], row: Exchange | None, budget: str
) -> tuple[_Entry, str | None] | None:
    """The table row a header means for this exchange and path budget (with no exchange
    known, only a header that names its exchange counts)."""
    mine = [hit for hit in hits
            if (hit[0].exchange is row if row is not None else hit[0].spec.identifies)]
    if not mine:
        return None
    for hit in mine:
        if hit[0].budget == budget:
            return hit
    return mine[0]


def parse_ratelimit_headers(
    headers: object, status_code: int | None = None, *, exchange: str | None = None,
    host: str | None = None, path: str | None = None, site: str = "ratelimit",
    method: str | None = None,
) -> list[Reading]:
    """The rate-limit readings in one response's headers.

    ``exchange`` (a ccxt id or alias) and ``host`` pick the table row; without either the
    row is the first whose headers the response has. ``path`` and the request's HTTP
    ``method`` pick the budget (``/sapi/`` is Binance's SAPI budget, ``/fapi/`` USD-M
    futures; Gate.io's ``POST /api/v4/spot/orders`` places orders, 10 a second, while
    ``GET`` on the same path lists them, 200 per 10 s). Accepts a mapping,
    ``httpx.Headers``, requests' or aiohttp's headers, or ``(name, value)`` pairs (str or
    bytes). Unparseable values are skipped with one warning per header name; never
    raises.
    """
    return _parse(headers, status_code, exchange, host, path, site, method)[1]


def _parse(
    headers: object, status_code: int | None, exchange: str | None, host: str | None,
    path: str | None, site: str, method: str | None = None,
) -> tuple[Exchange | None, list[Reading]]:
    """The table row the readings were taken with (named, by host or by the headers),
    and the readings."""
    readings: list[Reading] = []
    row: Exchange | None = None
    try:
        row = find_exchange(exchange, host)
        retry_values: list[object] = []
        fields: dict[str, list[str]] = {}
        # Header name -> its table rows and every value it came with (a header repeated
        # on one response: one pair each from httpx and aiohttp, one comma-joined value
        # from requests).
        found: dict[str, tuple[tuple[tuple[_Entry, str | None], ...], list[object]]] = {}
        for raw_name, raw_value in _header_pairs(headers):
            lname = _text(raw_name).lower()
            if lname == "retry-after":
                if status_code in _RETRY_AFTER_STATUSES:
                    retry_values.append(raw_value)
                continue
            if lname in _IETF_FIELDS:
                fields.setdefault(lname, []).append(_text(raw_value))
                continue
            seen = found.get(lname)
            if seen is not None:
                seen[1].append(raw_value)
                continue
            hits = _entries_for(lname)
            if hits:
                found[lname] = (hits, [raw_value])
        if row is None:  # the first exchange whose header names it
            row = next((chosen[0].exchange for hits, _v in found.values()
                        if (chosen := _choose(hits, None, "")) is not None), None)
        path_budget = _path_budget(row, path, host, exchange, method)
        budgets: dict[tuple[str, str | None], _Budget] = {}
        if row is not None:
            for lname, (hits, values) in found.items():
                chosen = _choose(hits, row, path_budget)
                if chosen is None:
                    continue
                entry, interval = chosen
                value = _header_value(site, lname, entry.spec.kind, values)
                if value is not None:
                    _collect(budgets.setdefault((entry.budget, interval), _Budget()),
                             entry.spec, interval, value)
        retry_after = _retry_after_value(site, retry_values)
        label = _budget_label(row, path_budget, path)
        if retry_after is not None:
            readings.append((RETRY_AFTER, label, None, retry_after))
        for (budget, interval), b in budgets.items():
            readings.extend(_derive(_budget_label(row, budget, path), interval, b))
        if fields and (row is not None or (exchange and exchange != UNKNOWN)):
            readings.extend(_ietf_readings(fields, label))
    except (TypeError, ValueError, AttributeError) as exc:  # headers of an odd shape
        warn_once(site, "headers", f"otel_botmon: unreadable response headers in {site}: "
                                   f"{type(exc).__name__}; rate limits not recorded")
    return row, readings


_IETF_FIELDS: Final = frozenset({"ratelimit", "ratelimit-policy"})


def _ietf_readings(fields: dict[str, list[str]], budget: str) -> list[Reading]:
    """Readings from the IETF ``RateLimit``/``RateLimit-Policy`` fields: per policy
    window, what is left and (with the quota) what is used."""
    out: list[Reading] = []
    seen: set[str] = set()
    for policy in parse_policies(", ".join(fields.get("ratelimit-policy", ())),
                                 ", ".join(fields.get("ratelimit", ()))):
        interval = _interval_label(policy.window_s * 1000.0) \
            if policy.window_s is not None else ""
        if interval in seen:
            continue
        seen.add(interval)
        b = _Budget()
        if policy.remaining is not None:
            b.remaining = float(policy.remaining)
        if policy.quota is not None:
            b.limit = float(policy.quota)
        out.extend(_derive(budget, interval, b))
    return out


def _interval_label(window_ms: float) -> str:
    """``1m``, ``3s``, ``500ms``: the ``ratelimit.interval`` of a window in ms."""
    ms = int(window_ms)
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms >= size and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def _collect(b: _Budget, spec: RateLimitHeader, interval: str | None, value: float) -> None:
    documented = dict(spec.limits).get(interval or "")
    if spec.kind == USED:
        b.used, b.used_limit = value, documented
    elif spec.kind == ORDERS:
        b.orders, b.orders_limit = value, documented
    elif spec.kind == "remaining":
        b.remaining = value
        if documented is not None and b.limit is None:
            b.limit = documented
    elif spec.kind == "window":
        if value > 0:
            b.window_ms = value
    else:
        b.limit = value


def _derive(budget: str, interval: str | None, b: _Budget) -> list[Reading]:
    out: list[Reading] = []
    shares: list[float] = []
    if b.window_ms is not None:  # the exchange says how long the window is
        interval = _interval_label(b.window_ms)
    if b.remaining is not None:
        out.append((REMAINING, budget, interval, b.remaining))
    used, used_limit = b.used, b.used_limit
    if used is None and b.remaining is not None and b.limit:
        used, used_limit = max(b.limit - b.remaining, 0.0), b.limit
    if used is not None:
        out.append((USED, budget, interval, used))
        if used_limit:
            shares.append(used / used_limit)
    if b.orders is not None:
        out.append((ORDERS, budget, interval, b.orders))
        if b.orders_limit:
            shares.append(b.orders / b.orders_limit)
    if shares:
        out.append((UTILIZATION, budget, interval, min(max(shares), 1.0)))
    return out


def _bad_header(site: str, name: str, value: object) -> None:
    report_bad_input(
        "ratelimit", site, name,
        f"otel_botmon: response header {name}: {_text(value)!r:.40} is not a "
        "non-negative number; skipped (warned once per header)",
    )


# The latest reading of every (instrument, attributes): observable gauges report them at
# collection time, so a response costs a few dict writes, not four SDK measurements.
# Bounded like the SDK's cardinality limit; cleared when configure() builds new providers.
_MAX_SERIES: Final = conv.CARDINALITY_LIMIT
_latest: dict[str, dict[tuple[tuple[str, str], ...], float]] = {
    USED: {}, ORDERS: {}, RETRY_AFTER: {}, UTILIZATION: {}, REMAINING: {}}
_SPECS: Final = {USED: conv.EXCHANGE_RATELIMIT_USED, ORDERS: conv.EXCHANGE_RATELIMIT_ORDERS,
                 RETRY_AFTER: conv.EXCHANGE_RATELIMIT_RETRY_AFTER,
                 UTILIZATION: conv.EXCHANGE_RATELIMIT_UTILIZATION,
                 REMAINING: conv.EXCHANGE_RATELIMIT_REMAINING}
_register_lock = threading.Lock()
# The observable gauges, registered once; the telemetry state moves them onto every new
# meter (otel_botmon._state).
_registrations: list[ObservableRegistration] = []


def _observer(kind: str) -> Callable[[int], Iterable[Observation]]:
    def observe(version: int) -> Iterable[Observation]:
        if version != _readings_version[0]:
            return []  # readings of another pipeline (an earlier or a later one)
        return [Observation(value, dict(key)) for key, value in list(_latest[kind].items())]

    return observe


# The state version the readings were taken under: each pipeline's gauges report only
# its own (the old one's final export still sees them; a new one starts empty).
_readings_version = [STATE.version]


def _create(spec: conv.MetricSpec) -> Callable[..., Any]:
    def create(meter: Any, callback: Callable[[Any], Iterable[Observation]]) -> Any:
        return create_observable(meter, spec, lambda: callback(None))

    return create


def _ensure_registered() -> None:
    if _readings_version[0] != STATE.version:
        with _register_lock:
            if _readings_version[0] != STATE.version:
                for values in _latest.values():
                    values.clear()
                _readings_version[0] = STATE.version
    if _registrations:
        return
    with _register_lock:
        if _registrations:
            return
        found = [ObservableRegistration(_create(spec), _observer(kind), versioned=True)
                 for kind, spec in _SPECS.items()]
        for registration in found:
            STATE.observe(registration)
        _registrations[:] = found


def _set(kind: str, value: float, attrs: dict[str, str]) -> None:
    values = _latest[kind]
    key = tuple(sorted(attrs.items()))
    if key not in values and len(values) >= _MAX_SERIES:
        return
    values[key] = value


def exchange_label(exchange: str, host: str | None = None,
                   found: Exchange | None = None) -> str:
    """The ``exchange.name`` of one response: the table's id for the exchange named
    (``binanceusdm`` is ``binance``), a name outside the table as given; with none
    named (``"unknown"``), the exchange whose API host, else whose headers (``found``)
    the response has. Every metric and span of the request carries this one name."""
    if exchange != UNKNOWN:
        row = find_exchange(exchange)
        return row.name if row is not None else exchange
    row = find_exchange(host=host) if host else None
    if row is None:
        row = found
    return row.name if row is not None else exchange


def record_ratelimit_headers(
    headers: object, *, exchange: str | None = None, status_code: int | None = None,
    host: str | None = None, path: str | None = None, method: str | None = None,
) -> list[Reading]:
    """Record the rate-limit headers of one response on the ``ratelimit`` gauges.

    Works with any HTTP client's headers (see :func:`parse_ratelimit_headers`); returns
    the readings it recorded. ``exchange`` defaults to ``configure(exchange=...)``;
    ``method`` is the request's HTTP method. Never raises.
    """
    return record_response_headers(headers, exchange=exchange, status_code=status_code,
                                   host=host, path=path, method=method)[1]


def record_response_headers(
    headers: object, *, exchange: str | None = None, status_code: int | None = None,
    host: str | None = None, path: str | None = None, method: str | None = None,
) -> tuple[str, list[Reading]]:
    """:func:`record_ratelimit_headers`, and the ``exchange.name`` the readings were
    recorded under (:func:`exchange_label`), for the request's other metrics. Never
    raises."""
    name = exchange or UNKNOWN
    try:
        name = exchange or default_exchange()
        found, readings = _parse(headers, status_code, name, host, path,
                                 "ratelimit headers", method)
        _ensure_registered()
        label = exchange_label(name, host, found)
        row = find_exchange(label, host)
        retried = False
        for kind, budget, interval, value in readings:
            attrs = {conv.EXCHANGE_NAME: label, conv.RATELIMIT_BUDGET: budget}
            if kind == RETRY_AFTER:
                retried = True
            else:
                attrs[conv.RATELIMIT_INTERVAL] = interval or ""
            _set(kind, value, attrs)
        if not retried:  # Retry-After clears with the next response that has none
            budget = _budget_label(row, _path_budget(row, path, host, name, method), path)
            key = ((conv.EXCHANGE_NAME, label), (conv.RATELIMIT_BUDGET, budget))
            retry = _latest[RETRY_AFTER]
            if retry.get(key):
                retry[key] = 0.0
        return label, readings
    except Exception as exc:
        report_internal_error("ratelimit", exc)
        return name, []
