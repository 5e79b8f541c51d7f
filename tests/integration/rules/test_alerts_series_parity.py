"""``ALERTS`` and ``ALERTS_FOR_STATE`` in ``promql_expr_test``: botmon writes them as
Prometheus' rule evaluation does (``ALERTS_FOR_STATE``: the alert's labels, its value
the time the alert became active), so one test file passes in ``botmon rules test`` and,
against the exported rules, in real ``promtool test rules``."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from otel_botmon.alerting.rules_cli import main as rules_main
from otel_botmon.alerting.ruletest import run_rule_tests
from tests.services import require_binary

pytestmark = pytest.mark.integration

G = "botmon_health_status"
RULES = {"groups": [{"name": "g", "rules": [
    {"alert": "Slow", "expr": "botmon.health.status > 1", "for": "2m",
     "labels": {"severity": "warning"}},
    {"alert": "Now", "expr": "botmon.health.status > 2"},
]}]}
# a: above 1 from 1m to 4m (then below); b: above 2 from 3m on
SERIES = [{"series": f'{G}{{a="x"}}', "values": "0 2 2 3 2 0 0 0"},
          {"series": f'{G}{{a="y"}}', "values": "0 0 0 5 5 5 5 5"}]
SLOW_X = 'ALERTS_FOR_STATE{a="x",alertname="Slow",severity="warning"}'
# (expression, eval time, expected samples)
CHECKS: list[tuple[str, str, list[tuple[str, float]]]] = [
    ("ALERTS_FOR_STATE", "0m", []),
    ("ALERTS_FOR_STATE", "1m", [(SLOW_X, 60)]),  # pending since 1m
    ("ALERTS_FOR_STATE", "3m", [  # Slow{x} firing now, still active since 1m
        (SLOW_X, 60), ('ALERTS_FOR_STATE{a="y",alertname="Slow",severity="warning"}', 180),
        ('ALERTS_FOR_STATE{a="x",alertname="Now"}', 180),
        ('ALERTS_FOR_STATE{a="y",alertname="Now"}', 180)]),
    ('ALERTS_FOR_STATE{alertname="Slow"} < 100', "4m", [(SLOW_X, 60)]),
    ('ALERTS{alertname="Slow",alertstate="firing"}', "5m", [  # x cleared at 5m
        ('ALERTS{a="y",alertname="Slow",alertstate="firing",severity="warning"}', 1)]),
    ('ALERTS_FOR_STATE{a="x"}', "6m", []),  # gone with the alert, at once (stale)
    ('ALERTS_FOR_STATE{alertname="Now"} - 120', "7m", [('{a="y",alertname="Now"}', 60)]),
]


def _doc(rule_file: str, checks: list[tuple[str, str, list[tuple[str, float]]]]
         ) -> dict[str, Any]:
    return {"rule_files": [rule_file], "evaluation_interval": "1m", "tests": [{
        "interval": "1m", "input_series": SERIES,
        "promql_expr_test": [
            {"expr": expr, "eval_time": at,
             "exp_samples": [{"labels": labels, "value": value} for labels, value in samples]}
            for expr, at, samples in checks
        ],
    }]}


def _both(tmp_path: Path, checks: list[tuple[str, str, list[tuple[str, float]]]]
          ) -> tuple[bool, str, bool, str]:
    """(botmon passes, its report, promtool passes, its output) for one test file."""
    (tmp_path / "botmon.rules.yml").write_text(yaml.safe_dump(RULES), "utf-8")
    assert rules_main(["rules", "export", "-o", str(tmp_path / "prom.rules.yml"),
                       str(tmp_path / "botmon.rules.yml")]) == 0
    (tmp_path / "botmon.test.yml").write_text(yaml.safe_dump(_doc("botmon.rules.yml", checks)))
    (tmp_path / "prom.test.yml").write_text(yaml.safe_dump(_doc("prom.rules.yml", checks)))
    report = run_rule_tests(tmp_path / "botmon.test.yml")
    binary = require_binary("promtool", "/usr/bin/promtool")
    proc = subprocess.run([binary, "test", "rules", "prom.test.yml"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=False)
    return report.ok, report.render(), proc.returncode == 0, proc.stdout + proc.stderr


def test_alerts_for_state_agrees_with_promtool(tmp_path: Path) -> None:
    ok, text, prom_ok, prom_text = _both(tmp_path, CHECKS)
    assert ok, text
    assert prom_ok, prom_text


def test_a_wrong_active_time_fails_in_both(tmp_path: Path) -> None:
    wrong = [("ALERTS_FOR_STATE", "1m", [(SLOW_X, 0)])]  # active since 1m, not 0
    ok, text, prom_ok, prom_text = _both(tmp_path, wrong)
    assert not ok, text
    assert not prom_ok, prom_text
    assert "ALERTS_FOR_STATE" in text and "60" in text
