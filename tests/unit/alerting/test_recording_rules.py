"""Recording rules in-process: recorded every cycle, read by alert rules by name, marked
stale when their series go, and their inputs ingested."""

from __future__ import annotations

import pytest

from otel_botmon.alerting.evaluator import AlertEvaluator
from otel_botmon.alerting.model import AlertRule
from otel_botmon.alerting.recording import RecordingRule
from otel_botmon.alerting.rules import RuleFileError, parse_rules
from otel_botmon.query import MetricHistory


def test_an_alert_reads_a_recorded_kpi_by_name() -> None:
    history = MetricHistory()
    record = RecordingRule("bot:health:max", "max by (health.component) (botmon.health.status)",
                           {"team": "ops"})
    evaluator = AlertEvaluator([AlertRule("Down", "bot:health:max >= 2")], history,
                               publish_telemetry=False, recording_rules=[record])
    assert evaluator.referenced_metrics() == {"bot:health:max", "botmon.health.status"}
    history.add_point("botmon.health.status", {"health.component": "db", "x": "1"}, 2.0, 0.0)
    history.add_point("botmon.health.status", {"health.component": "db", "x": "2"}, 1.0, 0.0)
    evaluator.evaluate(0.0, dispatch=False)
    [alert] = evaluator.firing()
    assert alert.labels["health.component"] == "db" and alert.labels["team"] == "ops"
    assert alert.value == 2.0
    # the input goes stale: so does the recorded series, and the alert resolves
    history.mark_stale("botmon.health.status", {"health.component": "db", "x": "1"}, 10.0)
    history.mark_stale("botmon.health.status", {"health.component": "db", "x": "2"}, 10.0)
    evaluator.evaluate(10.0, dispatch=False)
    evaluator.evaluate(20.0, dispatch=False)
    assert evaluator.firing() == []


def test_recording_rules_in_rule_files() -> None:
    [group] = parse_rules(
        "groups:\n  - name: g\n    rules:\n"
        "      - record: job:trades:rate5m\n        expr: sum(rate(botmon.trades[5m]))\n"
        "        labels: {team: quant}\n"
        "      - alert: Busy\n        expr: job:trades:rate5m > 1\n", "r.yml")
    assert [r.record for r in group.recordings] == ["job:trades:rate5m"]
    assert [r.name for r in group.rules] == ["Busy"]
    with pytest.raises(RuleFileError, match="invalid metric name") as info:
        parse_rules("groups:\n  - name: g\n    rules:\n      - record: bad.name\n"
                    "        expr: cpu\n", "r.yml")
    assert (info.value.line, info.value.column) == (4, 17)
    with pytest.raises(RuleFileError, match="unknown field"):
        parse_rules("groups:\n  - name: g\n    rules:\n      - record: a:b\n"
                    "        expr: cpu\n        for: 1m\n", "r.yml")
