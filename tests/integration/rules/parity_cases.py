"""Small rule + input cases across the families where float, NaN, histogram, label,
regex and template details decide whether an alert fires and what it says.

Each case is one alert rule whose ``v`` annotation shows ``{{ $value }}`` (Go's shortest
float text, so equal annotations mean bit-equal values, NaN included) unless the case
brings its own annotations."""

from __future__ import annotations

from dataclasses import dataclass, field

G = "botmon_health_status"  # a gauge (botmon.health.status)
GB = "botmon.health.status"
C = "botmon_trades_total"  # a counter (botmon.trades)
CB = "botmon.trades"
H = "botmon_trade_duration_seconds"  # a histogram (botmon.trade.duration)
HB = "botmon.trade.duration"


@dataclass(frozen=True)
class Case:
    id: str
    family: str
    expr: str
    series: tuple[tuple[str, str], ...]
    eval_time: str = "5m"
    annotations: dict[str, str] = field(default_factory=lambda: {"v": "{{ $value }}"})
    interval: str = "1m"
    for_: str | None = None
    records: tuple[tuple[str, str, dict[str, str]], ...] = ()
    """Recording rules (name, expr, labels) evaluated before the alert."""
    extra: dict[str, object] = field(default_factory=dict)
    """More fields of the botmon rule (recovery_threshold...)."""
    group: dict[str, object] = field(default_factory=dict)
    """More fields of the test group (external_labels, external_url)."""


def gauges(*values: str, label: str = "a") -> tuple[tuple[str, str], ...]:
    return tuple((f'{G}{{{label}="s{i}"}}', v) for i, v in enumerate(values))


def hist(buckets: dict[str, str], labels: str = "", count: str | None = None,
         sum_: str | None = None) -> tuple[tuple[str, str], ...]:
    sep = "," if labels else ""
    out = [(f'{H}_bucket{{{labels}{sep}le="{le}"}}', v) for le, v in buckets.items()]
    if count is not None:
        out.append((f"{H}_count{{{labels}}}" if labels else f"{H}_count", count))
    if sum_ is not None:
        out.append((f"{H}_sum{{{labels}}}" if labels else f"{H}_sum", sum_))
    return tuple(out)


NAN = " ".join(["NaN"] * 11)  # promtool has no `NaNx10`
INF = " ".join(["Inf"] * 11)
NINF = " ".join(["-Inf"] * 11)
TYPICAL = {"0.1": "0+1x10", "1": "0+5x10", "10": "0+9x10", "+Inf": "0+10x10"}

CASES: list[Case] = [
    # --- summation order and method ----------------------------------------------------
    Case("sum_ten_tenths", "sum", f"sum({GB})", gauges(*["0.1x10"] * 10)),
    Case("sum_ten_tenths_ge_1", "sum", f"sum({GB}) >= 1", gauges(*["0.1x10"] * 10)),
    Case("avg_ten_tenths", "sum", f"avg({GB})", gauges(*["0.1x10"] * 10)),
    # (promtool adds series in an order it does not fix: sums of three or more distinct
    # values may differ in the last bit between two promtool runs, so pairs are used)
    Case("sum_tenth_fifth", "sum", f"sum({GB})", gauges("0.1x10", "0.2x10")),
    Case("avg_tenth_fifth", "sum", f"avg({GB})", gauges("0.1x10", "0.2x10")),
    Case("sum_near_max", "sum", f"sum({GB})", gauges("1.7e308x10", "1.7e308x10")),
    Case("avg_near_max", "sum", f"avg({GB})", gauges("1.7e308x10", "1.7e308x10", "1.7e308x10")),
    Case("avg_inf_and_number", "sum", f"avg({GB})", gauges(INF, "1x10")),
    Case("avg_inf_minus_inf", "sum", f"avg({GB})", gauges(INF, NINF)),
    Case("sum_by_label", "sum", f"sum by (b) ({GB})", (
        (f'{G}{{a="1",b="x"}}', "0.1x10"), (f'{G}{{a="2",b="x"}}', "0.2x10"),
        (f'{G}{{a="3",b="y"}}', "0.7x10"))),
    Case("sum_over_time_tenths", "sum", f"sum({GB}[10m])", gauges("0.1x12"), "10m"),
    Case("avg_over_time_tenths", "sum", f"avg({GB}[5m])", gauges("0.1x10")),
    Case("avg_over_time_mixed", "sum", f"avg({GB}[5m])", gauges("0.1 0.2 0.3 0.4 0.5 0.6 0.7")),
    Case("sum_over_time_near_max", "sum", f"sum({GB}[5m])", gauges("1e308x10")),
    Case("avg_over_time_near_max", "sum", f"avg({GB}[5m])", gauges("1.7e308x10")),
    Case("avg_over_time_inf", "sum", f"avg({GB}[5m])", gauges("1 Inf 2 3 4 5 6")),
    Case("count_over_time", "sum", f"count({GB}[5m])", gauges("1x10")),
    Case("sum_over_time_thirds", "sum", f"sum({GB}[3m])", gauges("0.3333333333333333x10")),
    Case("rate_ten_per_minute", "rate", f"rate({CB}[1m]) * 60 > 10", (( f"{C}", "0+10x10"),)),
    Case("rate_ten_per_minute_value", "rate", f"rate({CB}[1m]) * 60", ((f"{C}", "0+10x10"),)),
    Case("rate_5m", "rate", f"rate({CB}[5m])", ((f"{C}", "0+7x10"),)),
    Case("increase_5m_15s", "rate", f"increase({CB}[5m])", ((f"{C}", "0+3x40"),), "8m",
         interval="15s"),
    Case("increase_reset", "rate", f"increase({CB}[5m])", ((f"{C}", "0 5 10 2 6 9 12"),)),
    Case("delta_gauge", "rate", f"delta({GB}[5m])", gauges("1 1.5 2.25 3 2.1 0.4 0.7")),
    Case("rate_young_counter", "rate", f"rate({CB}[5m])", ((f"{C}", "_ _ _ 5 9 13 17"),)),
    Case("pnl_derived", "sum", "pnl", (
        ('botmon_pnl_realized{trading_symbol="A"}', "0.1x10"),
        ('botmon_pnl_realized{trading_symbol="B"}', "0.2x10"))),
    # --- NaN -------------------------------------------------------------------------------
    Case("max_over_time_first_nan", "nan", f"max({GB}[5m])", gauges("_x3 NaN 1 2")),
    Case("min_over_time_first_nan", "nan", f"min({GB}[5m])", gauges("_x3 NaN 3 2")),
    Case("max_over_time_middle_nan", "nan", f"max({GB}[5m])", gauges("1 NaN 0.5 0.2 0.1 0 0")),
    Case("min_over_time_all_nan", "nan", f"min({GB}[5m])", gauges(NAN)),
    Case("max_aggregation_nan", "nan", f"max({GB})", gauges(NAN, "1x10", "3x10")),
    Case("min_aggregation_nan", "nan", f"min({GB})", gauges(NAN, "5x10", "3x10")),
    Case("nan_greater", "nan", f"{GB} > 0", gauges(NAN, "1x10")),
    Case("nan_not_equal", "nan", f"{GB} != 0", gauges(NAN, "0x10")),
    Case("sum_with_nan", "nan", f"sum({GB})", gauges(NAN, "1x10")),
    Case("avg_over_time_nan", "nan", f"avg({GB}[5m])", gauges("1 2 NaN 3 4 5 6")),
    Case("sum_over_time_nan", "nan", f"sum({GB}[5m])", gauges("1 2 NaN 3 4 5 6")),
    # --- histograms -----------------------------------------------------------------------
    Case("p50", "histogram", f"p50({HB}[5m])", hist(TYPICAL)),
    Case("p90", "histogram", f"p90({HB}[5m])", hist(TYPICAL)),
    Case("p99", "histogram", f"p99({HB}[5m])", hist(TYPICAL)),
    Case("quantile_0_first_bucket_empty", "histogram", f"quantile(0, {HB}[5m])",
         hist({"0.1": "0x10", "1": "0+5x10", "+Inf": "0+10x10"})),
    Case("quantile_0_first_bucket_used", "histogram", f"quantile(0, {HB}[5m])", hist(TYPICAL)),
    Case("quantile_1", "histogram", f"quantile(1, {HB}[5m])", hist(TYPICAL)),
    Case("quantile_above_1", "histogram", f"quantile(2, {HB}[5m])", hist(TYPICAL)),
    Case("quantile_below_0", "histogram", f"quantile(-0.5, {HB}[5m])", hist(TYPICAL)),
    Case("nan_in_inf_bucket", "histogram", f"p50({HB}[5m])",
         hist({"0.1": "0+1x10", "1": "0+5x10", "+Inf": "0 1 2 NaN 4 5 NaN 7"})),
    Case("duplicate_bounds", "histogram", f"p50({HB}[5m])",
         hist({"0.5": "0+1x10", "1": "0+2x10", "1.0": "0+3x10", "+Inf": "0+10x10"})),
    # a histogram given by its _count and _sum only: no bucket series, so no quantile
    Case("quantile_without_buckets", "histogram", f"quantile(0.9, {HB}[5m])",
         hist(TYPICAL, 'trading_symbol="A"')
         + hist({}, 'trading_symbol="B"', count="0+10x10", sum_="0+2.5x10")),
    Case("quantile_without_buckets_by", "histogram",
         f"quantile(0.9, {HB}[5m]) by (trading.symbol)",
         hist(TYPICAL, 'trading_symbol="A"')
         + hist({}, 'trading_symbol="B"', count="0+10x10", sum_="0+2.5x10")),
    Case("count_without_count_series", "histogram", f"{HB}.count", hist(TYPICAL)),
    Case("count_with_count_series", "histogram", f"{HB}.count",
         hist(TYPICAL, count="0+10x10", sum_="0+2.5x10")),
    Case("sum_rate", "histogram", f"rate({HB}.sum[5m])",
         hist(TYPICAL, count="0+10x10", sum_="0+2.5x10")),
    Case("p95_by_nothing", "histogram", f"p95({HB}[5m]) by ()",
         hist(TYPICAL, 'a="x"') + hist({"0.1": "0+3x10", "1": "0+3x10", "10": "0+4x10",
                                          "+Inf": "0+4x10"}, 'a="y"')),
    Case("p95_by_label", "histogram", f"p95({HB}[5m]) by (a)",
         hist(TYPICAL, 'a="x",b="1"') + hist(TYPICAL, 'a="x",b="2"')
         + hist(TYPICAL, 'a="y",b="1"')),
    Case("non_monotonic_buckets", "histogram", f"p50({HB}[5m])",
         hist({"0.1": "0+6x10", "1": "0+4x10", "10": "0+9x10", "+Inf": "0+10x10"})),
    Case("empty_histogram", "histogram", f"p50({HB}[5m])",
         hist({"0.1": "0x10", "1": "0x10", "+Inf": "0x10"})),
    Case("negative_first_bound", "histogram", f"p10_like_p50({HB}[5m])".replace(
        "p10_like_p50", "p50"), hist({"-1": "0+6x10", "1": "0+8x10", "+Inf": "0+10x10"})),
    # --- labels and regexes -----------------------------------------------------------------
    Case("missing_label_equals_empty", "labels", f'{GB}{{b=""}}', (
        (f'{G}{{a="1"}}', "1x10"), (f'{G}{{a="2",b="x"}}', "2x10"))),
    Case("missing_label_not_empty", "labels", f'{GB}{{b!=""}}', (
        (f'{G}{{a="1"}}', "1x10"), (f'{G}{{a="2",b="x"}}', "2x10"))),
    Case("regex_matches_missing_label", "labels", f'{GB}{{b=~"x|"}}', (
        (f'{G}{{a="1"}}', "1x10"), (f'{G}{{a="2",b="x"}}', "2x10"),
        (f'{G}{{a="3",b="y"}}', "3x10"))),
    Case("regex_is_anchored", "labels", f'{GB}{{a=~"s1"}}', gauges("1x10", "2x10", "3x10")),
    Case("regex_alternation", "labels", f'{GB}{{a=~"s0|s2"}}', gauges("1x10", "2x10", "3x10")),
    Case("regex_negative", "labels", f'{GB}{{a!~"s[01]"}}', gauges("1x10", "2x10", "3x10")),
    Case("regex_catastrophic", "labels", f'{GB}{{a=~"(a+)+$"}}', (
        (f'{G}{{a="{"a" * 40}b"}}', "1x10"), (f'{G}{{a="{"a" * 40}"}}', "2x10"))),
    Case("regex_posix_class", "labels", f'{GB}{{a=~"[[:alpha:]]+"}}', (
        (f'{G}{{a="abc"}}', "1x10"), (f'{G}{{a="ab1"}}', "2x10"))),
    Case("regex_digit_is_ascii", "labels", f'{GB}{{a=~"\\\\d+"}}', (
        (f'{G}{{a="123"}}', "1x10"), (f'{G}{{a="١٢٣"}}', "2x10"))),
    Case("regex_case_insensitive", "labels", f'{GB}{{a=~"(?i)abc"}}', (
        (f'{G}{{a="ABC"}}', "1x10"), (f'{G}{{a="abd"}}', "2x10"))),
    Case("regex_unicode", "labels", f'{GB}{{a=~"é.ü"}}', (
        (f'{G}{{a="éxü"}}', "1x10"), (f'{G}{{a="ex"}}', "2x10"))),
    Case("regex_dot_no_newline", "labels", f'{GB}{{a=~"a.b"}}', (
        (f'{G}{{a="a\\nb"}}', "1x10"), (f'{G}{{a="a-b"}}', "2x10"))),
    Case("series_with_severity", "labels", f"{GB} > 0", (
        (f'{G}{{a="1",severity="page"}}', "1x10"),)),
    Case("by_label_not_in_conventions", "labels", f"max by (custom) ({GB})", (
        (f'{G}{{custom="p",a="1"}}', "1x10"), (f'{G}{{custom="p",a="2"}}', "4x10"),
        (f'{G}{{a="3"}}', "2x10"))),
    # --- arithmetic and comparison -------------------------------------------------------------
    Case("divide_by_zero", "arith", f"{GB} / 0", gauges("1x10", "-1x10", "0x10")),
    Case("modulo_float", "arith", f"{GB} % 0.3", gauges("1x10", "-1x10", "0.9x10")),
    Case("equality_of_sums", "arith", f"sum({GB}) == 0.3", gauges("0.1x10", "0.2x10")),
    Case("percent_threshold", "arith", f"{GB} * 100 > 90", gauges("0.9x10", "0.91x10")),
    Case("tenth_plus_fifth", "arith", f"{GB} + 0.2", gauges("0.1x10")),
    # --- templates ----------------------------------------------------------------------------
    *[
        Case(f"value_{name}", "template", f"{GB}", gauges(" ".join([v] * 11)))
        for name, v in [("1234567", "1234567"), ("123456_7", "123456.7"), ("1e_5", "0.00001"),
                        ("0_0001", "0.0001"), ("1e21", "1e21"), ("neg", "-2.5"),
                        ("inf", "Inf"), ("nan", "NaN"), ("1_23456", "1.23456"),
                        ("third", "0.3333333333333333")]
    ],
    *[
        Case(f"template_{name}", "template", f"{GB}", gauges(f"{v}x10"),
             annotations={"t": template})
        for name, template, v in [
            ("humanize_big", "{{ $value | humanize }}", "1234567"),
            ("humanize_small", "{{ humanize $value }}", "0.000123"),
            ("humanize1024", "{{ $value | humanize1024 }}", "2048"),
            ("humanize_duration", "{{ $value | humanizeDuration }}", "3725"),
            ("humanize_duration_ms", "{{ humanizeDuration $value }}", "0.02"),
            ("humanize_percentage", "{{ $value | humanizePercentage }}", "0.1234"),
            ("printf", '{{ printf "%.2f" $value }} s', "1.005"),
            ("botmon_spec", "{value:.3f} s", "2.0005"),
            ("botmon_value", "{value} s", "1234567"),
            ("labels", "{labels[a]} / {{ $labels.a }} / {{ .Labels.a }}", "1"),
            ("missing_label", "[{{ $labels.nosuch }}]", "1"),
            ("rule_name", "{rule} fired", "1"),
        ]
    ],
    *[
        # Go's fmt flags where the value is not a plain number (promtool is the reference)
        Case(f"printf_{name}", "template", f"{GB}", gauges(" ".join([v] * 11)),
             annotations={"t": f'[{{{{ printf "{fmt}" $value }}}}]'})
        for name, fmt, v in [
            ("G", "%G", "1000000"), ("E", "%.3E", "1234567"), ("G_prec", "%.3G", "1234567"),
            ("space_inf", "% .2f", "Inf"), ("plus_inf", "%+.1f", "Inf"),
            ("space_nan", "% f", "NaN"), ("plus_nan", "%+f", "NaN"), ("nan", "%f", "NaN"),
            ("width_neginf", "%8.1f", "-Inf"), ("zero_width_inf", "%08.1f", "Inf"),
            ("v_space_inf", "% v", "Inf"), ("plus_v", "%+v", "1.5"),
            ("plus_v_nan", "%+v", "NaN"),
        ]
    ],
    Case("template_trim_markers", "template", f"{GB}", gauges("1.5x10"),
         annotations={"v": "a \n {{- $value -}} \t z {{- $labels.a }} . {{ $value -}} ."}),
    Case("template_rerendered", "template", f"{GB} > 0", gauges("1 2 3 4 5 6 7"),
         annotations={"v": "now {{ $value }}"}, for_="2m"),
    Case("template_external_labels", "template", f"{GB}", gauges("1x10"),
         annotations={"t": "{{ $externalLabels.region }}/{{ $externalLabels.replica }}"
                           "/[{{ $externalLabels.nosuch }}] {{ $value }}"},
         group={"external_labels": {"region": "eu-west", "replica": "b"}}),
    Case("template_external_url", "template", f"{GB}", gauges("1x10"),
         annotations={"t": "see {{ $externalURL }}/alerts ({{ $labels.a }})"},
         group={"external_url": "https://prom.example.org:9090"}),
    Case("template_external_unset", "template", f"{GB}", gauges("1x10"),
         annotations={"t": "[{{ $externalURL }}][{{ $externalLabels.region }}]"}),
    # --- recording rules, bool, without, vector matching, users' own metric names -------
    Case("record_then_alert", "record", "job:g:sum > 0.25", (
        (f'{G}{{a="1",b="x"}}', "0.1x10"), (f'{G}{{a="2",b="x"}}', "0.2x10"),
        (f'{G}{{a="3",b="y"}}', "0.2x10")), records=(("job:g:sum", f"sum by (b) ({GB})", {}),)),
    Case("record_with_labels", "record", "job:g:max", gauges("1x10", "3x10"),
         records=(("job:g:max", f"max({GB})", {"team": "quant"}),)),
    Case("record_chain", "record", "job:g:double > 5", gauges("1x10", "3x10"),
         records=(("job:g:max", f"max({GB})", {}), ("job:g:double", "job:g:max * 2", {}))),
    Case("record_rate", "record", "job:trades:rate1m * 60 > 5", ((C, "0+7x10"),),
         records=(("job:trades:rate1m", f"rate({CB}[1m])", {}),)),
    Case("record_over_time", "record", "max(job:g:max[3m])", gauges("1 5 2 1 1 1 1"),
         records=(("job:g:max", f"max({GB})", {}),)),
    Case("bool_comparison", "bool", f"{GB} > bool 1", gauges("1x10", "3x10")),
    Case("bool_number_left", "bool", f"2 < bool {GB}", gauges("1x10", "3x10")),
    Case("bool_counted", "bool", f"sum({GB} > bool 1)", gauges("1x10", "3x10", "5x10")),
    Case("bool_nan", "bool", f"{GB} == bool {GB}", gauges(NAN, "3x10")),
    Case("without", "without", f"sum without (a) ({GB})", (
        (f'{G}{{a="1",b="x"}}', "1x10"), (f'{G}{{a="2",b="x"}}', "2x10"),
        (f'{G}{{a="3",b="y"}}', "4x10"))),
    Case("without_max", "without", f"max without (b) ({GB})", (
        (f'{G}{{a="1",b="x"}}', "1x10"), (f'{G}{{a="1",b="y"}}', "2x10"),
        (f'{G}{{a="3",b="y"}}', "4x10"))),
    Case("on_group_left_ratio", "matching", "errors / on(a) group_left requests", (
        ('errors{a="x",code="500"}', "2x10"), ('errors{a="x",code="503"}', "1x10"),
        ('errors{a="y",code="500"}', "5x10"), ('requests{a="x"}', "10x10"),
        ('requests{a="y"}', "20x10"))),
    Case("ignoring_one_to_one", "matching", "errors / ignoring(code) requests", (
        ('errors{a="x",code="500"}', "2x10"), ('requests{a="x"}', "10x10"),
        ('requests{a="y"}', "20x10"))),
    Case("group_right", "matching", "requests / on(a) group_right errors", (
        ('errors{a="x",code="500"}', "2x10"), ('errors{a="x",code="503"}', "1x10"),
        ('requests{a="x"}', "10x10"))),
    Case("group_left_include", "matching", "errors * on(a) group_left(team) info", (
        ('errors{a="x",code="500"}', "2x10"), ('errors{a="y",code="500"}', "3x10"),
        ('info{a="x",team="quant"}', "1x10"), ('info{a="y",team="ops"}', "1x10"))),
    Case("on_one_to_one_keeps_on_labels", "matching", "errors - on(a, code) requests", (
        ('errors{a="x",code="1",z="q"}', "2x10"), ('requests{a="x",code="1"}', "10x10"))),
    Case("comparison_on", "matching", "errors > on(a) group_left requests", (
        ('errors{a="x",code="1"}', "12x10"), ('errors{a="x",code="2"}', "2x10"),
        ('requests{a="x"}', "10x10"))),
    Case("comparison_bool_on", "matching", "errors > bool on(a) group_left requests", (
        ('errors{a="x",code="1"}', "12x10"), ('errors{a="x",code="2"}', "2x10"),
        ('requests{a="x"}', "10x10"))),
    Case("unless", "matching", f'{GB} unless {GB}{{a="s0"}}', gauges("1x10", "2x10")),
    Case("and_on", "matching", f"{GB} and on(a) other", (
        (f'{G}{{a="s0",b="1"}}', "1x10"), (f'{G}{{a="s1",b="1"}}', "2x10"),
        ('other{a="s1"}', "1x10"))),
    Case("or_ignoring", "matching", f"{GB} or ignoring(b) other", (
        (f'{G}{{a="s0",b="1"}}', "1x10"), ('other{a="s0",b="2"}', "7x10"),
        ('other{a="s9",b="2"}', "8x10"))),
    Case("unless_on", "matching", f"{GB} unless on(a) other", (
        (f'{G}{{a="s0",b="1"}}', "1x10"), (f'{G}{{a="s1",b="1"}}', "2x10"),
        ('other{a="s1"}', "1x10"))),
    Case("user_metric", "names", "my_queue_depth > 5", (
        ('my_queue_depth{q="a"}', "1x10"), ('my_queue_depth{q="b"}', "9x10"))),
    Case("user_counter_rate", "names", "rate(my_fills_total[5m]) > 0", (
        ('my_fills_total{venue="x"}', "0+3x10"), ('my_fills_total{venue="y"}', "4x10"))),
    Case("user_metric_ratio_per_bot", "names", "sum(my_fails) / sum(my_calls)", (
        ('my_fails{q="a"}', "1x10"), ('my_fails{q="b"}', "2x10"),
        ('my_calls{q="a"}', "10x10"), ('my_calls{q="b"}', "20x10"))),
    # --- deliberate differences (see EXCEPTIONS in test_parity_suite.py) -------------------
    Case("hysteresis", "exception", f"{GB} > 5", gauges("6 7 8 4.5 4.5 4.5 4.5"),
         annotations={}, extra={"recovery_threshold": 4}),
    Case("bucket_series_ending_early", "histogram", f"p50({HB}[5m])",
         hist({"0.1": "0+1x3", "1": "0+5x10", "+Inf": "0+10x10"}), "6m"),
]
