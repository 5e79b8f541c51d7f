"""Fuzzing the parser: any input gives a Condition or a RuleSyntaxError, nothing else."""

from __future__ import annotations

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otel_botmon import conventions as conv
from otel_botmon.query import (
    Condition,
    MetricHistory,
    MetricKind,
    RuleSyntaxError,
    compile_condition,
)

_ALPHABET = st.sampled_from([
    *"abcdepmsx_.{}[]()=!~<>+-*/%, \"'\\0123456789e\n\t$#",
    "cpu", "win_rate", "and", "or", "not", "by", "rate(", "p95(", "5m", "[1m]",
    conv.TRADES.name, conv.TRADE_DURATION.name, "Inf", "NaN", "1e999", "\u00e9", "\x00",
])

_HISTORY = MetricHistory()
for _t in range(0, 120, 10):
    _HISTORY.add_point(conv.TRADES.name, {"trading.symbol": "A"}, _t, _t, kind=MetricKind.COUNTER)
    _HISTORY.add_point(conv.SYSTEM_CPU_UTILIZATION.name, {}, 0.5, _t)
    _HISTORY.add_histogram_point(conv.TRADE_DURATION.name, {}, [1.0], [_t, _t], 0, 2 * _t, _t)


def _check(text: str) -> None:
    try:
        cond = compile_condition(text)
    except RuleSyntaxError as exc:
        assert 0 <= exc.position <= len(text)
        str(exc)  # rendering the caret never fails
        return
    assert isinstance(cond, Condition)
    # a condition that compiles also evaluates without raising
    for sample in cond.evaluate(_HISTORY, 110.0) + cond.values(_HISTORY, 110.0):
        assert isinstance(sample.value, float)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=80))
def test_arbitrary_text(text: str) -> None:
    _check(text)


@settings(max_examples=600, deadline=None)
@given(st.lists(_ALPHABET, max_size=40).map("".join))
def test_token_soup(text: str) -> None:
    _check(text)


_atoms = st.sampled_from([
    "cpu", "memory", "win_rate", "api_error_rate", "trade_latency_p95", "total_trades",
    f"rate({conv.TRADES.name}[1m])", f'{conv.TRADES.name}{{trading.symbol=~"A|B"}}',
    f"p95({conv.TRADE_DURATION.name}[5m])", f"avg({conv.SYSTEM_CPU_UTILIZATION.name}[1m])",
    "2s", "500ms", "0", "1e308", "-3.5",
])


def _combine(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    ops = st.sampled_from(["+", "-", "*", "/", "%", ">", "<", ">=", "==", "!=", "and", "or"])
    return st.one_of(
        st.tuples(children, ops, children).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        children.map(lambda c: f"not ({c} > 1)"),
        children.map(lambda c: f"abs({c})"),
        children.map(lambda c: f"sum({c})"),
    )


@settings(max_examples=400, deadline=None)
@given(st.recursive(_atoms, _combine, max_leaves=12))
def test_generated_expressions(text: str) -> None:
    _check(text)


@given(st.integers(min_value=1, max_value=3000), st.sampled_from(["(", "-", "not ", "abs("]))
@settings(max_examples=30, deadline=None)
def test_deep_nesting(depth: int, opener: str) -> None:
    closer = ")" if opener in ("(", "abs(") else ""
    _check(opener * depth + "cpu > 1" + closer * depth)


@given(st.floats(allow_nan=True, allow_infinity=True) | st.integers(min_value=-(10**400),
                                                                    max_value=10**400))
@settings(max_examples=200, deadline=None)
def test_huge_and_odd_numbers(number: float) -> None:
    text = f"cpu > {number}"
    try:
        cond = compile_condition(text)
    except RuleSyntaxError:
        return
    assert cond.threshold is not None
    expected = float(str(number))  # a decimal string too big for a float reads as inf
    assert cond.threshold == expected or (math.isnan(cond.threshold) and math.isnan(expected))
