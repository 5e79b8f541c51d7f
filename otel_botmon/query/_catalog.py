"""The names the condition language knows: metrics, functions and derived values.

This is the single source for the table in ``docs/conditions.md``; a test checks the two
agree.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Final

from otel_botmon import conventions as c
from otel_botmon.query._types import MetricKind

__all__ = [
    "AGGREGATIONS",
    "CASELESS_WORDS",
    "DERIVED",
    "QUANTILE_SHORTHANDS",
    "RATE_FUNCTIONS",
    "DerivedValue",
    "known_metric_kinds",
    "refuse_function",
    "refuse_reserved_name",
]

# rate-like functions over a counter window (Prometheus semantics, with extrapolation)
RATE_FUNCTIONS: Final = ("rate", "increase", "delta")

# avg/min/max/sum/count: over a window -> `<op>_over_time`; over series -> aggregation
AGGREGATIONS: Final = ("avg", "min", "max", "sum", "count")

QUANTILE_SHORTHANDS: Final[Mapping[str, float]] = {
    "p50": 0.5, "p75": 0.75, "p90": 0.9, "p95": 0.95, "p99": 0.99,
}

OTHER_FUNCTIONS: Final = ("abs", "quantile")

# PromQL's keywords and aggregation operators, which it reads in any case (`SUM(x) BY (a)`)
CASELESS_WORDS: Final = frozenset({
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "bool", "offset", "atan2", "sum", "avg", "count", "min", "max", "group", "stddev",
    "stdvar", "topk", "bottomk", "count_values", "quantile",
})

KEYWORDS: Final = frozenset({
    "and", "or", "unless", "not", "by", "without", "bool", "on", "ignoring", "group_left",
    "group_right",
})


@dataclass(frozen=True)
class DerivedValue:
    """A name that stands for an expression of the language itself: a KPI defined once,
    read by alert rules, the dashboard, ``/api/performance`` and the CLI alike."""

    definition: str
    unit: str
    description: str
    title: str = ""
    """A short label for cards and tables."""
    window: str = ""
    """What the value covers: ``latest`` (the newest point), a range such as ``5m``, or
    ``since start`` (a cumulative total)."""


_ERRORS = c.EXCHANGE_REQUESTS.name
_CLOSED = c.POSITIONS_CLOSED.name
_FAILED = f'{_ERRORS}{{{c.ERROR_TYPE}!=""}}'
_HTTP_FAILED = f'{_ERRORS}{{{c.HTTP_RESPONSE_STATUS_CODE}=~"[45].."}}'
_API = c.EXCHANGE_REQUEST_DURATION.name

DERIVED: Final[Mapping[str, DerivedValue]] = {
    "cpu": DerivedValue(
        f"max({c.SYSTEM_CPU_UTILIZATION.name}) * 100", "%",
        "Host CPU utilization in percent (0..100).", "CPU", "latest",
    ),
    "memory": DerivedValue(
        f"max({c.SYSTEM_MEMORY_UTILIZATION.name}) * 100", "%",
        "Host memory in use, percent (0..100).", "Memory", "latest",
    ),
    "disk": DerivedValue(
        f"max({c.SYSTEM_FILESYSTEM_UTILIZATION.name}) * 100", "%",
        "Fullest filesystem (max over mountpoints), percent (0..100).", "Disk", "latest",
    ),
    "win_rate": DerivedValue(
        f'100 * (sum({_CLOSED}{{{c.TRADING_RESULT}="{c.PositionResult.WIN.value}"}}) or 0)'
        f" / sum({_CLOSED})",
        "%",
        "Winning closed positions over all closed positions, percent; no value before "
        "the first position closes.", "Win rate", "since start",
    ),
    "positions_closed": DerivedValue(
        f"sum({_CLOSED})", "positions", "Positions closed since start, all results.",
        "Closed positions", "since start",
    ),
    "api_error_rate": DerivedValue(
        f"sum(increase({_FAILED}[1m]) or increase({_HTTP_FAILED}[1m]))",
        "errors/min",
        "Failed exchange requests (error.type set or HTTP status >= 400) in the last minute.",
        "API error rate", "1m",
    ),
    "api_errors": DerivedValue(
        f"sum({_FAILED} or {_HTTP_FAILED})", "requests",
        "Failed exchange requests (error.type set or HTTP status >= 400) since start.",
        "API errors", "since start",
    ),
    "api_requests": DerivedValue(
        f"sum({_ERRORS})", "requests", "Exchange requests since start, all outcomes.",
        "API calls", "since start",
    ),
    "total_trades": DerivedValue(
        f"sum({c.TRADES.name})", "trades", "Trades attempted since start, all outcomes.",
        "Trades", "since start",
    ),
    "failed_trades": DerivedValue(
        f'sum({c.TRADES.name}{{{c.TRADING_OUTCOME}="rejected"}}'
        f' or {c.TRADES.name}{{{c.TRADING_OUTCOME}="error"}})', "trades",
        "Trades rejected or failed since start; no value before the first one.",
        "Failed trades", "since start",
    ),
    "trade_latency_p50": DerivedValue(
        f"p50({c.TRADE_DURATION.name}[5m]) by ()", "s",
        "Median trade duration over the last 5 minutes, all series.", "Trade p50", "5m",
    ),
    "trade_latency_p95": DerivedValue(
        f"p95({c.TRADE_DURATION.name}[5m]) by ()", "s",
        "95th percentile trade duration over the last 5 minutes, all series.",
        "Trade p95", "5m",
    ),
    "api_latency_avg": DerivedValue(
        f"sum(rate({_API}.sum[5m])) / sum(rate({_API}.count[5m]))", "s",
        "Mean exchange request latency over the last 5 minutes, all series.",
        "API latency avg", "5m",
    ),
    "api_latency_p95": DerivedValue(
        f"p95({_API}[5m]) by ()", "s",
        "95th percentile exchange request latency over the last 5 minutes, all series.",
        "API p95", "5m",
    ),
    "pnl": DerivedValue(
        f"sum({c.PNL_REALIZED.name})", "quote currency", "Realized P&L, all symbols.",
        "Realized P&L", "since start",
    ),
}

_KIND_OF_INSTRUMENT: Final = {
    c.InstrumentKind.COUNTER: MetricKind.COUNTER,
    c.InstrumentKind.UP_DOWN_COUNTER: MetricKind.UP_DOWN_COUNTER,
    c.InstrumentKind.GAUGE: MetricKind.GAUGE,
    c.InstrumentKind.HISTOGRAM: MetricKind.HISTOGRAM,
}


def known_metric_kinds() -> dict[str, MetricKind]:
    """Every metric of ``conventions.py`` with the kind its points are read as."""
    return {spec.name: _KIND_OF_INSTRUMENT[spec.kind] for spec in c.ALL_METRICS}


# PromQL's functions and aggregations (Prometheus 2.42) the language does not have: a call
# of one is refused by that name, not as a typo
PROMQL_ONLY: Final = frozenset({
    "absent", "absent_over_time", "acos", "acosh", "asin", "asinh", "atan", "atanh",
    "bottomk", "ceil", "changes", "clamp", "clamp_max", "clamp_min", "cos", "cosh",
    "count_values", "day_of_month", "day_of_week", "day_of_year", "days_in_month", "deg",
    "deriv", "exp", "floor", "group", "histogram_count", "histogram_fraction",
    "histogram_quantile", "histogram_sum", "holt_winters", "hour", "idelta", "irate",
    "label_join", "label_replace", "last_over_time", "ln", "log10", "log2", "minute",
    "month", "pi", "predict_linear", "present_over_time", "quantile_over_time", "rad",
    "resets", "round", "scalar", "sgn", "sin", "sinh", "sort", "sort_desc", "sqrt",
    "stddev", "stddev_over_time", "stdvar", "stdvar_over_time", "tan", "tanh", "time",
    "timestamp", "topk", "vector", "year",
})


def refuse_function(name: str) -> str:
    """Why a call of ``name`` (not a function of the language) is refused."""
    if name == "histogram_quantile":
        return ("PromQL function 'histogram_quantile' is not supported: conditions read a "
                "histogram whole, e.g. quantile(0.9, botmon.trade.duration[5m]) or "
                "p90(botmon.trade.duration[5m])")
    if name in PROMQL_ONLY:
        return (f"PromQL function '{name}' is not supported (docs/conditions.md lists the "
                "functions of the language)")
    return f"unknown function '{name}'"


# the conventions' namespaces (no names of users' own there), and as Prometheus spells
# their series (botmon_trades_total)
_RESERVED: Final = ("botmon.", "system.", "process.")
_PROMETHEUS_PREFIXES: Final = ("botmon_", "system_", "process_")
_PROMETHEUS_SUFFIXES: Final = ("_bucket", "_sum", "_count", "_total")
_UNIT_SUFFIXES: Final = ("_seconds", "_bytes", "_ratio", "_milliseconds")


def refuse_reserved_name(name: str, metrics: Collection[str]) -> str | None:
    """Why ``name``, not a known metric, is refused as one of the user's own: it is in
    botmon's namespaces, as a metric name or as a Prometheus series name
    (``botmon_trades_total``, ``botmon_trade_duration_seconds_bucket``: the language
    names botmon's metrics with dots and reads a histogram whole); None otherwise."""
    if name.startswith(_RESERVED):
        return f"unknown metric or value '{name}'"
    if not name.startswith(_PROMETHEUS_PREFIXES):
        return None
    stem, part = name, ""
    for suffix in _PROMETHEUS_SUFFIXES:
        if stem.endswith(suffix):
            stem, part = stem.removesuffix(suffix), suffix
            break
    for unit in _UNIT_SUFFIXES:
        stem = stem.removesuffix(unit)
    dotted = stem.replace("_", ".")
    found = dotted if dotted in metrics else next(
        iter(difflib.get_close_matches(dotted, list(metrics), n=1, cutoff=0.8)), None)
    if found is None:
        return (f"'{name}' is a Prometheus series name in botmon's namespace that names no "
                "botmon metric (conditions use botmon's names, with dots)")
    if part == "_bucket":
        return (f"'{name}' is a Prometheus bucket series: conditions read the histogram "
                f"'{found}' whole, e.g. quantile(0.9, {found}[5m])")
    if part in ("_sum", "_count"):
        return (f"'{name}' is the Prometheus name of '{found}{part.replace('_', '.')}': "
                "conditions use botmon's names")
    return f"'{name}' is the Prometheus name of '{found}': conditions use botmon's names"
