"""A small hostile rule file cannot make `botmon rules check`, the exporter or the
evaluator hang or print a traceback: every one ends in a RuleFileError at its
file:line:column, or evaluates in bounded time."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from otel_botmon.alerting.evaluator import AlertEvaluator
from otel_botmon.alerting.model import AlertRule
from otel_botmon.alerting.rules import RuleFileError, parse_rules
from otel_botmon.query import MetricHistory

HEAD = "groups:\n  - name: g\n    rules:\n      - alert: A\n"

HOSTILE = {
    # (file text, line, column of the error)
    "yaml_nested_10000": (HEAD + "        expr: cpu > 1\n        labels: " + "[" * 10_000,
                          6, 76),
    "yaml_block_nested": (HEAD + "        expr: cpu > 1\n        labels:\n"
                          + "".join(" " * (10 + i) + "- \n" for i in range(100)), 66, 70),
    "brackets_in_expr": (HEAD + "        expr: '" + "(" * 1500 + "cpu" + ")" * 1500 + "'\n",
                         5, 116),  # the 101st "("
    "unary_chain": (HEAD + "        expr: '" + "- " * 900 + "cpu'\n", 5, 216),
    "long_sum": (HEAD + "        expr: '" + "cpu + " * 300 + "cpu'\n", 5, 614),
    "lookahead_regex": (HEAD + "        expr: 'botmon.trades{trading.symbol=~\"(?=a)\"} > 1'\n",
                        5, 46),
    "labels_as_list": (HEAD + "        expr: cpu > 1\n        labels: [a, b]\n", 6, 17),
    "annotations_as_string": (HEAD + "        expr: cpu > 1\n        annotations: x\n", 6, 22),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_rule_file_is_a_rule_file_error(name: str) -> None:
    text, line, column = HOSTILE[name]
    assert len(text.encode()) <= 11_000
    with pytest.raises(RuleFileError) as info:
        parse_rules(text, "hostile.yml")
    assert (info.value.line, info.value.column) == (line, column), str(info.value)


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_rules_check_prints_no_traceback(name: str, tmp_path: Path) -> None:
    path = tmp_path / "hostile.yml"
    path.write_text(HOSTILE[name][0], encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "otel_botmon.alerting.rules_cli", "rules", "check", str(path)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert f"{path}:{HOSTILE[name][1]}:" in proc.stderr


def test_the_evaluator_is_not_slowed_by_hostile_rules() -> None:
    """A catastrophic regex over long label values and a huge format precision: RE2
    answers in linear time, the precision is not formatted."""
    history = MetricHistory()
    for i in range(200):
        history.add_point("botmon.health.status", {"health.component": "a" * 5000 + str(i)},
                          2.0, 0.0)
    rules = [
        AlertRule("regex", 'botmon.health.status{health.component=~"(a+)+$"} >= 0'),
        AlertRule("regex2", 'botmon.health.status{health.component=~"(a|aa)*c"} >= 0'),
        AlertRule("bomb", "botmon.health.status > 1",
                  annotations={"summary": "{value:.999999999f} {value:99999999999d}"}),
    ]
    evaluator = AlertEvaluator(rules, history, publish_telemetry=False)
    evaluator.evaluate(1.0, dispatch=False)
    firing = evaluator.firing()
    assert {a.rule_name for a in firing} == {"bomb"}
    assert all(len(a.title) < 100 for a in firing)
