"""Compiling conditions: what is accepted, and where errors point."""

from __future__ import annotations

import pytest

from otel_botmon.query import MetricKind, RuleSyntaxError, compile_condition
from otel_botmon.query.syntax import selectors


@pytest.mark.parametrize(
    "text",
    [
        "win_rate < 50",
        "cpu > 75",
        "memory >= 95 and cpu > 90",
        "disk > 85 or memory > 95",
        "not (cpu > 90)",
        "not (cpu > 90 and memory > 90)",
        'botmon.health.status{health.component="exchange_api"} >= 2',
        "p95(botmon.trade.duration[5m]) > 2s",
        "p99(botmon.exchange.request.duration{exchange.name=~\"bin.*\"}[1m]) > 500ms",
        "quantile(0.9, botmon.trade.duration[10m]) by (trading.symbol) > 1.5s",
        "rate(botmon.trades[5m]) * 60 > 10",
        "increase(botmon.exchange.requests{error.type!=\"\"}[1m]) > 3",
        "avg(system.cpu.utilization[5m]) * 100 > 80",
        "sum by (trading.symbol) (botmon.trades) > 100",
        "max(botmon.exchange.ratelimit.used) by (exchange.name) > 1000",
        "rate(botmon.trade.duration.count[5m]) > 1",
        "botmon.trade.duration.sum / botmon.trade.duration.count > 1",
        "api_error_rate > 10",
        "trade_latency_p95 > 2000ms",
        "total_trades >= 1e3",
        "pnl < -100",
        "abs(pnl) > 1h",
        "-cpu < -50",
        "cpu > 1m30s",
        "(cpu + memory) / 2 > 70 and not (disk < 10)",
    ],
)
def test_valid_conditions_compile(text: str) -> None:
    cond = compile_condition(text)
    assert cond.text == text


def test_comparison_and_threshold_of_the_guide_condition() -> None:
    cond = compile_condition("win_rate < 50")
    assert cond.comparison == "<"
    assert cond.threshold == 50.0
    assert cond.referenced_metrics() == {"botmon.positions.closed"}


def test_unit_literals_are_seconds() -> None:
    assert compile_condition("cpu > 2s").threshold == 2.0
    assert compile_condition("cpu > 500ms").threshold == 0.5
    assert compile_condition("cpu > 1m").threshold == 60.0
    assert compile_condition("cpu > 1h30m").threshold == 5400.0


def test_not_inverts_the_comparison() -> None:
    assert compile_condition("not (cpu > 90)").comparison == "<="
    assert compile_condition("not not (cpu > 90)").comparison == ">"


def test_condition_without_comparison() -> None:
    cond = compile_condition("cpu")
    assert cond.comparison is None and cond.threshold is None


def test_selectors_walk_the_tree_left_to_right_through_derived_values() -> None:
    cond = compile_condition("rate(botmon.trades[5m]) > 1 and win_rate < 50 "
                             "or p95(botmon.trade.duration[5m]) > 2s")
    assert [s.metric for s in selectors(cond.tree)] == [
        "botmon.trades", "botmon.positions.closed", "botmon.positions.closed",
        "botmon.trade.duration"]  # win_rate reads the closed positions twice
    assert cond.referenced_metrics() == {"botmon.trades", "botmon.positions.closed",
                                         "botmon.trade.duration"}


def test_any_metric_name_is_a_series_of_the_users_own() -> None:
    # names outside conventions are the user's own metrics (or recording rules)
    assert compile_condition("my.queue.depth > 5").referenced_metrics() == {"my.queue.depth"}
    assert compile_condition("job:trades:rate5m > 1").referenced_metrics() == {
        "job:trades:rate5m"}
    # botmon's namespaces and near-misses of known names stay typos
    for typo in ("botmon.trade.duratoin[5m]", "system.cpu.utilisation", "wins_rate"):
        with pytest.raises(RuleSyntaxError, match="unknown metric"):
            compile_condition(f"max({typo}) > 1" if "[" in typo else f"{typo} > 1")


def test_extra_metrics_can_be_declared() -> None:
    cond = compile_condition("my.queue.depth > 5", extra_metrics={"my.queue.depth": "gauge"})
    assert cond.referenced_metrics() == {"my.queue.depth"}
    cond = compile_condition(
        "rate(my.fills[1m]) > 5", extra_metrics={"my.fills": MetricKind.COUNTER}
    )
    assert cond.referenced_metrics() == {"my.fills"}


@pytest.mark.parametrize(
    ("text", "position", "fragment"),
    [
        ("", 0, "empty"),
        ("cpu >", 5, "expected a number"),
        ("cpu > > 3", 6, "expected a number"),
        ("wins_rate < 50", 0, "unknown metric or value 'wins_rate'"),
        ("cpu > 50 and botmon.bogus > 1", 13, "unknown metric"),
        ("rate(cpu) > 1", 5, "needs a window"),
        ("frobnicate(cpu) > 1", 0, "unknown function 'frobnicate'"),
        ("botmon.trade.duration > 1", 0, "is a histogram"),
        ("p95(botmon.trades[5m]) > 1", 4, "histogram window"),
        ("cpu > 5x", 7, "unknown unit 'x'"),
        ("cpu > 1 > 2", 8, "cannot be chained"),
        ("botmon.trades{trading.symbol=BTC} > 1", 29, "quoted value"),
        ("botmon.trades{trading.symbol=\"BTC} > 1", 29, "unterminated string"),
        ("botmon.trades{a=~\"(\"} > 1", 17, "invalid regular expression"),
        ("botmon.trades[5] > 1", 14, "expected a window"),
        ("rate(botmon.trades[5m]", 22, "expected ',' or ')'"),
        ("not cpu", 0, "'not' applies to a comparison"),
        ("cpu > 3 $", 8, "unexpected character '$'"),
        ("botmon.trades[5m] > 1", 0, "window needs a function"),
        ("rate(botmon.trades[5m]) by (x) > 1", 0, "'by' does not apply"),
        ("quantile(cpu, botmon.trade.duration[5m])", 9, "needs a number q"),
        ("cpu and", 7, "expected a number"),
        ("p95()", 0, "takes 1 argument"),
        ("topk(3, cpu) > 1", 0, "PromQL function 'topk' is not supported"),
        ("absent(cpu)", 0, "PromQL function 'absent' is not supported"),
        ('label_replace(cpu, "a", "b", "c", "d")', 0, "PromQL function 'label_replace'"),
        ("2 * histogram_quantile(0.9, x) > 1", 4,
         "conditions read a histogram whole, e.g. quantile(0.9, botmon.trade.duration[5m])"),
        ("sum(rate(botmon_trade_duration_seconds_bucket[5m]))", 9,
         "'botmon_trade_duration_seconds_bucket' is a Prometheus bucket series: conditions "
         "read the histogram 'botmon.trade.duration' whole"),
        ("rate(botmon_trades_total[5m]) > 1", 5,
         "'botmon_trades_total' is the Prometheus name of 'botmon.trades'"),
        ("botmon_trade_duration_seconds_count > 1", 0, "name of 'botmon.trade.duration.count'"),
        ("botmon_no_such_thing > 1", 0, "names no botmon metric"),
        ("cpu ^ 2 > 1", 4, "the PromQL operator '^' (power) is not supported"),
        ("cpu atan2 memory > 1", 4, "the PromQL operator 'atan2' is not supported"),
        ('{__name__="cpu"} > 1', 0, "a selector without a metric name"),
    ],
)
def test_errors_carry_position(text: str, position: int, fragment: str) -> None:
    with pytest.raises(RuleSyntaxError) as info:
        compile_condition(text)
    err = info.value
    assert fragment in err.message
    assert err.position == position
    assert err.expression == text


def test_error_string_shows_a_caret_under_the_problem() -> None:
    with pytest.raises(RuleSyntaxError) as info:
        compile_condition("cpu > 50 and wins_rat > 3")
    lines = str(info.value).splitlines()
    assert lines[1].strip() == "cpu > 50 and wins_rat > 3"
    assert lines[2].index("^") - lines[1].index("c") == 13


def test_rule_syntax_error_is_a_value_error() -> None:
    assert issubclass(RuleSyntaxError, ValueError)


def test_deep_nesting_is_a_syntax_error_not_a_crash() -> None:
    with pytest.raises(RuleSyntaxError, match="nested deeper"):
        compile_condition("(" * 2000 + "1" + ")" * 2000)
    with pytest.raises(RuleSyntaxError, match="deeper"):
        compile_condition(" + ".join(["cpu"] * 1000))
    with pytest.raises(RuleSyntaxError):
        compile_condition("-" * 3000 + "1")


def test_numbers_beyond_a_float_are_refused_as_promql_refuses_them() -> None:
    """Go's ParseFloat (PromQL) fails on a literal beyond float64: refused, not +Inf."""
    for literal in ("9" * 500, "1e999", "-1e400"):
        with pytest.raises(RuleSyntaxError, match="out of range"):
            compile_condition(f"cpu > {literal}")
    assert compile_condition("cpu > 1e308").threshold == 1e308
    assert compile_condition("cpu > Inf").threshold == float("inf")


def test_non_string_condition_is_rejected() -> None:
    with pytest.raises(RuleSyntaxError):
        compile_condition(42)  # type: ignore[arg-type]


@pytest.mark.parametrize(("literal", "value"), [
    ("010", 8.0), ("0777", 511.0), ("08", 8.0), ("0009.5", 9.5), ("010e1", 100.0),
    ("00", 0.0), ("0x1F", 31.0), ("0XfF", 255.0), ("1e308", 1e308), (".5", 0.5),
])
def test_number_literals_read_as_promql_reads_them(literal: str, value: float) -> None:
    """Go's ParseInt(text, 0, 64), then ParseFloat: a leading zero is octal, 0x hex."""
    assert compile_condition(f"cpu > {literal}").threshold == value


def test_promql_keywords_and_aggregations_in_any_case() -> None:
    lower = compile_condition("sum by (a) (my_x) > bool on(a) group_left my_y and my_z")
    upper = compile_condition("SUM BY (a) (my_x) > BOOL ON(a) GROUP_LEFT my_y AND my_z")
    assert repr(upper.tree) == repr(lower.tree)
    # label and metric names keep their case; functions other than aggregations do not
    # change case (PromQL: unknown function "Rate")
    assert "BY" in repr(compile_condition("sum by (BY) (my_x)").tree)
    with pytest.raises(RuleSyntaxError, match="unknown function 'Rate'"):
        compile_condition("Rate(my_x[5m])")


@pytest.mark.parametrize(("quoted", "value"), [
    ('"\\x61\\u00e9\\U0001F600\\141"', "aé😀a"), ('"\\xc3\\xa9"', "é"),
    ("`a\\d`", "a\\d"), ("'it\\'s'", "it's"), ('"\\a\\b\\f\\n\\r\\t\\v\\\\"', "\a\b\f\n\r\t\v\\"),
])
def test_strings_are_go_strings(quoted: str, value: str) -> None:
    tree = compile_condition(f"my_x{{a={quoted}}} > 0").tree
    assert repr(value) in repr(tree)


@pytest.mark.parametrize("bad", ['"\\\'"', "'\\\"'", '"\\x6"', '"\\400"', '"\\ud800"',
                                 '"\\xc3"', '"\\z"', "`open"])
def test_strings_promql_refuses_are_refused(bad: str) -> None:
    with pytest.raises(RuleSyntaxError):
        compile_condition(f"my_x{{a={bad}}} > 0")


def test_comments_run_to_the_end_of_the_line() -> None:
    assert compile_condition("my_x > 5 # five\n# more\n").threshold == 5
    assert "#" in repr(compile_condition('my_x{a="#"} > 5').tree)


@pytest.mark.parametrize("text", ["sum by (__name__) (my_x)", "sum(my_x) by (__name__)",
                                  "my_x * on(__name__) my_y",
                                  "my_x * on(a) group_left(__name__) my_y"])
def test_keeping_or_matching_the_metric_name_is_refused(text: str) -> None:
    """PromQL would keep ``__name__`` in the result (or match on it); condition results
    have no metric name, so these are refused rather than answered without it."""
    with pytest.raises(RuleSyntaxError, match="conditions do not keep metric names"):
        compile_condition(text)


def test_dropping_the_metric_name_is_accepted() -> None:
    """``without``/``ignoring`` never keep it in PromQL either."""
    compile_condition("sum without (__name__, a) (my_x)")
    compile_condition("my_x > ignoring(__name__) my_y")
