"""promtool's input-series notation and series selectors."""

from __future__ import annotations

import math

import pytest

from otel_botmon.alerting.ruletest import (
    STALE,
    RuleTestError,
    parse_duration,
    parse_series,
    parse_values,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0+10x3", [0, 10, 20, 30]),
        ("-2+4x3", [-2, 2, 6, 10]),
        (" 1-2x4", [1, -1, -3, -5, -7]),
        ("1x4", [1, 1, 1, 1, 1]),
        ("1 _x3 stale", [1, None, None, None, STALE]),
        ("1 _ 2", [1, None, 2]),
        ("1e3 .5 -Inf", [1000, 0.5, -math.inf]),
        ("", []),
    ],
)
def test_values(text: str, expected: list[object]) -> None:
    assert parse_values(text) == expected


def test_nan_value() -> None:
    [value] = parse_values("NaN")
    assert isinstance(value, float) and math.isnan(value)


@pytest.mark.parametrize("bad", ["1+", "x3", "1+2x", "abc", "1++2x3"])
def test_bad_values(bad: str) -> None:
    with pytest.raises(RuleTestError):
        parse_values(bad)


def test_series_selectors() -> None:
    assert parse_series('botmon_trades_total{trading_symbol="BTC", side=\'BUY\'}') == (
        "botmon_trades_total", {"trading_symbol": "BTC", "side": "BUY"})
    assert parse_series("up") == ("up", {})
    assert parse_series('{__name__="up", a="x\\"y"}') == ("up", {"a": 'x"y'})
    for bad in ['up{a=b}', '{a="b"}', 'up{a="b"', "up x"]:
        with pytest.raises(RuleTestError):
            parse_series(bad)


def test_durations() -> None:
    assert parse_duration("1h30m", "x") == 5400
    assert parse_duration("500ms", "x") == 0.5
    assert parse_duration("0", "x") == 0
    assert parse_duration("1w2d", "x") == 9 * 86400
    # as promtool (Prometheus' model.ParseDuration): no bare numbers, fractions, or
    # units out of order
    for bad in (30, "30", "1.5m", "1m1h", "", "-1m", "5 m"):
        with pytest.raises(RuleTestError, match="not a valid duration"):
            parse_duration(bad, "x")
    with pytest.raises(RuleTestError, match="eval_time"):
        parse_duration("soon", "eval_time")
