"""Translation of conditions, names and templates to Prometheus."""

from __future__ import annotations

import pytest
import yaml

from otel_botmon.alerting.default_rules import default_rules
from otel_botmon.alerting.model import AlertRule
from otel_botmon.alerting.promexport import (
    export_prometheus,
    format_duration,
    to_promql,
    translate_template,
)
from otel_botmon.alerting.promnames import prom_label, prom_metric, reverse_names
from otel_botmon.alerting.rules import RuleGroup
from otel_botmon.query import MetricKind


def test_metric_names_follow_the_otel_prometheus_translation() -> None:
    assert prom_metric("botmon.trades", MetricKind.COUNTER) == "botmon_trades_total"
    assert prom_metric("botmon.trade.duration", MetricKind.HISTOGRAM, "bucket") == (
        "botmon_trade_duration_seconds_bucket")
    assert prom_metric("botmon.health.status", MetricKind.GAUGE) == "botmon_health_status"
    assert prom_metric("process.memory.usage", MetricKind.UP_DOWN_COUNTER) == (
        "process_memory_usage_bytes")
    assert prom_metric("system.network.io", MetricKind.COUNTER) == (
        "system_network_io_bytes_total")
    assert prom_metric("botmon.trade.slippage", MetricKind.HISTOGRAM, "count") == (
        "botmon_trade_slippage_bp_count")
    assert prom_label("trading.symbol") == "trading_symbol"
    assert prom_label("1bad-name") == "_bad_name"


def test_reverse_names_cover_every_histogram_component() -> None:
    names = reverse_names()
    assert names["botmon_trade_duration_seconds_sum"].metric == "botmon.trade.duration"
    assert names["botmon_trades_total"].kind is MetricKind.COUNTER


@pytest.mark.parametrize(
    ("condition", "promql"),
    [
        ("cpu > 75", "(((max(system_cpu_utilization) * 100)) > 75)"),
        ('botmon.health.status{health.component="database"} >= 2',
         '(botmon_health_status{health_component="database"} >= 2)'),
        ("p95(botmon.trade.duration[5m]) > 2s",
         "(histogram_quantile(0.95, rate(botmon_trade_duration_seconds_bucket[5m])) > 2)"),
        ("quantile(0.5, botmon.trade.duration[90s]) by (trading.symbol) > 500ms",
         "(histogram_quantile(0.5, sum by (le, trading_symbol) "
         "(rate(botmon_trade_duration_seconds_bucket[1m30s]))) > 0.5)"),
        ("rate(botmon.trades[5m]) > 1 and cpu > 50",
         "((rate(botmon_trades_total[5m]) > 1) and on() "
         "(((max(system_cpu_utilization) * 100)) > 50))"),
        ("botmon.health.status > cpu",
         "(botmon_health_status > on() group_left() ((max(system_cpu_utilization) * 100)))"),
        ("1 > 0", "(vector(1) > 0)"),
        ("sum by (trading.symbol) (botmon.trades) > 3",
         "(sum by (trading_symbol) (botmon_trades_total) > 3)"),
        ("avg(system.cpu.utilization[10m]) < -1",
         "(avg_over_time(system_cpu_utilization[10m]) < (-1))"),
        ("botmon.trade.duration.count > 3", "(botmon_trade_duration_seconds_count > 3)"),
        ("5", "vector(5)"),
    ],
)
def test_conditions_to_fleet_wide_promql(condition: str, promql: str) -> None:
    assert to_promql(condition, per_bot=()) == promql


BOT = "job, instance, bot_name"
CPU = f"((max by ({BOT}) (system_cpu_utilization) * 100))"


@pytest.mark.parametrize(
    ("condition", "promql"),
    [
        ("cpu > 75", f"({CPU} > 75)"),
        # series that are not aggregated already carry their bot's labels
        ('botmon.health.status{health.component="database"} >= 2',
         '(botmon_health_status{health_component="database"} >= 2)'),
        ("p95(botmon.trade.duration[5m]) > 2s",
         "(histogram_quantile(0.95, rate(botmon_trade_duration_seconds_bucket[5m])) > 2)"),
        ("p95(botmon.trade.duration[5m]) by () > 2s",
         f"(histogram_quantile(0.95, sum by (le, {BOT}) "
         "(rate(botmon_trade_duration_seconds_bucket[5m]))) > 2)"),
        ("quantile(0.5, botmon.trade.duration[90s]) by (trading.symbol) > 500ms",
         f"(histogram_quantile(0.5, sum by (le, trading_symbol, {BOT}) "
         "(rate(botmon_trade_duration_seconds_bucket[1m30s]))) > 0.5)"),
        ("sum by (trading.symbol, job) (botmon.trades) > 3",
         "(sum by (trading_symbol, job, instance, bot_name) (botmon_trades_total) > 3)"),
        # a labelless side joins the series of its own bot
        ("rate(botmon.trades[5m]) > 1 and cpu > 50",
         f"((rate(botmon_trades_total[5m]) > 1) and on({BOT}) ({CPU} > 50))"),
        ("botmon.health.status > cpu",
         f"(botmon_health_status > on({BOT}) group_left() {CPU})"),
        ("sum(botmon.trades) / sum(botmon.positions.closed) > 1",
         f"((sum by ({BOT}) (botmon_trades_total) / sum by ({BOT}) "
         "(botmon_positions_closed_total)) > 1)"),
        # numbers only: the same for every bot
        ("1 > 0", "(vector(1) > 0)"),
        ("cpu > 1 and 1 > 0", f"(({CPU} > 1) and on() (vector(1) > 0))"),
        ("cpu * (1 > 0) > 3", f"(({CPU} * on() group_left() (vector(1) > 0)) > 3)"),
        # `or <number>` gives the number to every bot (not one series of no bot)
        ("(sum(botmon.trades) or 0) < 1",
         f"((sum by ({BOT}) (botmon_trades_total) or (group by ({BOT}) "
         "(botmon_trades_total or target_info) * 0)) < 1)"),
        ("rate(botmon.trades[1m]) or 0", "(rate(botmon_trades_total[1m]) or vector(0))"),
        ("5", "vector(5)"),
    ],
)
def test_aggregations_keep_the_labels_of_one_bot(condition: str, promql: str) -> None:
    assert to_promql(condition) == promql


def test_custom_bot_labels() -> None:
    assert to_promql("cpu > 75", per_bot=["bot.name"]) == (
        "(((max by (bot_name) (system_cpu_utilization) * 100)) > 75)")


def test_templates() -> None:
    assert translate_template("p95 {value:.2f} s") == 'p95 {{ printf "%.2f" $value }} s'
    assert translate_template("{value} on {labels[trading.symbol]}") == (
        "{{ $value }} on {{ $labels.trading_symbol }}")
    assert translate_template("{$labels.health.component} / {rule}") == (
        "{{ $labels.health_component }} / {{ $labels.alertname }}")
    assert translate_template("{{ $labels.a.b }} {{ $value }}") == (
        "{{ $labels.a_b }} {{ $value }}")
    assert translate_template("plain {text}") == "plain {text}"


def test_durations() -> None:
    assert format_duration(90) == "1m30s"
    assert format_duration(0.5) == "500ms"
    assert format_duration(86400 + 3600) == "1d1h"
    assert format_duration(0) == "0s"


def test_export_document_lists_skipped_rules_and_notes() -> None:
    rules = [
        AlertRule("ok", "cpu > 90", for_=60, keep_firing_for=30, labels={"team.name": "ops"},
                  annotations={"summary": "cpu {value:.1f}"}, recovery_threshold=80),
        AlertRule("lookahead", 'botmon.trades{trading.symbol=~"(?!BTC).*"} > 1'),
        AlertRule("off", "cpu > 1", enabled=False),
        AlertRule("const_abs", "abs(-3) > 1"),
    ]
    result = export_prometheus([RuleGroup("g", rules, interval_s=15)])
    assert result.exported == ["ok"]
    assert dict(result.skipped).keys() == {"lookahead", "off", "const_abs"}
    assert "RE2" in dict(result.skipped)["lookahead"]
    assert "hysteresis" in dict(result.notes)["ok"]
    doc = yaml.safe_load(result.to_yaml())
    [group] = doc["groups"]
    assert group["name"] == "g" and group["interval"] == "15s"
    [rule] = group["rules"]
    assert rule == {
        "alert": "ok",
        "expr": f"({CPU} > 90)",
        "for": "1m",
        "keep_firing_for": "30s",
        "labels": {"team_name": "ops", "severity": "warning"},
        "annotations": {"summary": 'cpu {{ printf "%.1f" $value }}'},
    }


def test_every_default_rule_translates() -> None:
    rules = default_rules()
    result = export_prometheus(rules)
    assert result.exported == [r.name for r in rules]
    assert result.skipped == []
