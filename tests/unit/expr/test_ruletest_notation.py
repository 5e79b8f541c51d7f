"""promtool's input-series notation and series selectors."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from otel_botmon.alerting.ruletest import (
    STALE,
    RuleTestError,
    parse_duration,
    parse_series,
    parse_values,
    run_rule_tests,
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
        ("INF -iNf +inf", [math.inf, -math.inf, math.inf]),  # any case, as PromQL's lexer
        ("", []),
    ],
)
def test_values(text: str, expected: list[object]) -> None:
    assert parse_values(text) == expected


def test_a_repeated_value_is_itself_again_negative_zero_too() -> None:
    # promtool repeats `axn` literally: -0x2 is -0 three times (1/-0 is -Inf); an
    # explicit step adds it (-0+0 is +0 in IEEE arithmetic, as in Go)
    assert [math.copysign(1, v) for v in parse_values("-0x2")] == [-1, -1, -1]  # type: ignore[arg-type]
    assert [math.copysign(1, v) for v in parse_values("-0+0x2")] == [-1, 1, 1]  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["NaN", "nan", "NAN", "Nan"])
def test_nan_value(text: str) -> None:
    [value] = parse_values(text)
    assert isinstance(value, float) and math.isnan(value)


@pytest.mark.parametrize("bad", ["1+", "x3", "1+2x", "abc", "1++2x3"])
def test_bad_values(bad: str) -> None:
    with pytest.raises(RuleTestError):
        parse_values(bad)


def test_series_selectors() -> None:
    assert parse_series('botmon_trades_total{trading_symbol="BTC", side=\'BUY\'}') == (
        "botmon_trades_total", {"trading_symbol": "BTC", "side": "BUY"})
    assert parse_series("up") == ("up", {})
    assert parse_series('up{a="", b="1"}') == ("up", {"b": "1"})  # as promtool: no label a
    assert parse_series('{__name__="up", a="x\\"y"}') == ("up", {"a": 'x"y'})
    for bad in ['up{a=b}', '{a="b"}', 'up{a="b"', "up x"]:
        with pytest.raises(RuleTestError):
            parse_series(bad)



@pytest.mark.parametrize(("quoted", "value"), [
    ('"\\u00e9"', "é"), ('"\\x41\\101"', "AA"), ('"\\xc3\\xa9"', "é"), ('"a\\rb"', "a\rb"),
    ('"\\U0001F600"', "\U0001F600"), ("`a\\nb`", "a\\nb"), ("'\\''", "'"),
])
def test_series_label_values_are_go_strings_as_promtool_reads_them(quoted: str,
                                                                    value: str) -> None:
    assert parse_series(f"up{{a={quoted}}}") == ("up", {"a": value})


def test_series_label_value_with_a_bad_escape_is_an_error() -> None:
    with pytest.raises(RuleTestError, match="unknown escape"):
        parse_series('up{a="\\q"}')


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


def _bucket_suite(tmp_path: Path, le: str) -> Path:
    h = "botmon_trade_duration_seconds_bucket"
    doc = {"rule_files": ["empty.rules.yml"], "evaluation_interval": "1m", "tests": [{
        "interval": "1m",
        "input_series": [{"series": f'{h}{{le="0.1"}}', "values": "0+1x10"},
                         {"series": f'{h}{{le="{le}"}}', "values": "0+5x10"},
                         {"series": f'{h}{{le="+Inf"}}', "values": "0+10x10"}],
        "promql_expr_test": [{"expr": "p50(botmon.trade.duration[5m])", "eval_time": "5m",
                              "exp_samples": []}]}]}
    (tmp_path / "empty.rules.yml").write_text("groups: []\n")
    path = tmp_path / "le.test.yml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.mark.parametrize("le", [" 1", "1 ", "1_0", "NaN", "nan", "abc"])
def test_an_le_label_prometheus_cannot_place_is_refused(le: str, tmp_path: Path) -> None:
    """Go's ParseFloat refuses spaces and ``_`` (Prometheus then leaves the bucket out,
    where Python's float() would read a bound), and a NaN bound has no place among the
    buckets: the rule test refuses the label instead of answering differently."""
    with pytest.raises(RuleTestError, match="le label"):
        run_rule_tests(_bucket_suite(tmp_path, le))


@pytest.mark.parametrize("le", ["1", "1.0", "1e0", "+1", "Inf", "inf", "+Inf", "Infinity"])
def test_an_le_label_prometheus_reads_is_read(le: str, tmp_path: Path) -> None:
    report = run_rule_tests(_bucket_suite(tmp_path, le))
    assert report.checks == 1


def test_a_misspelt_test_file_key_gets_a_suggestion(tmp_path: Path) -> None:
    path = tmp_path / "bot.test.yml"
    path.write_text("rule_files: []\ntest:\n  - interval: 1m\n", encoding="utf-8")
    with pytest.raises(RuleTestError, match=r"bot.test.yml:2:1: test: .*did you mean 'tests'\?"):
        run_rule_tests(path)


@pytest.mark.parametrize("bad", ["1e400", "-1e400", "1e400x2", "0+1e400x2", "1e309"])
def test_a_value_beyond_a_float_is_refused_as_promtool_refuses_it(bad: str) -> None:
    with pytest.raises(RuleTestError, match="out of range"):
        parse_values(bad)


def test_a_value_below_the_smallest_float_is_zero_as_in_promtool() -> None:
    assert parse_values("1e-400 Inf -inf") == [0.0, math.inf, -math.inf]
