"""promql_expr_test reads the ALERTS series as promtool does: 1 per pending or firing
alert with ``alertstate``; a pending series ends when the alert fires, and every series
ends when the alert resolves."""

from __future__ import annotations

from pathlib import Path

import pytest

from otel_botmon.alerting.ruletest import run_rule_tests

RULES = """\
groups:
  - name: g
    rules:
      - alert: Down
        expr: up == 0
        for: 2m
        labels: {severity: page}
"""


def _suite(expr: str, eval_time: str, samples: str) -> str:
    return f"""\
rule_files: [rules.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'up{{job="j", instance="i"}}'
        values: '1 0 0 0 0 1 1'
    promql_expr_test:
      - expr: {expr}
        eval_time: {eval_time}
        exp_samples: {samples}
"""


@pytest.mark.parametrize(("expr", "eval_time", "samples"), [
    ("ALERTS", "0m", "[]"),
    ("ALERTS", "1m", "[{labels: 'ALERTS{alertname=\"Down\", alertstate=\"pending\", "
                     "instance=\"i\", job=\"j\", severity=\"page\"}', value: 1}]"),
    ("ALERTS{alertstate='pending'}", "3m", "[]"),
    ("count by (alertstate) (ALERTS)", "3m", "[{labels: '{alertstate=\"firing\"}', value: 1}]"),
    ("ALERTS", "5m", "[]"),
])
def test_alerts_series(tmp_path: Path, expr: str, eval_time: str, samples: str) -> None:
    (tmp_path / "rules.yml").write_text(RULES)
    path = tmp_path / "t.test.yml"
    path.write_text(_suite(expr, eval_time, samples))
    report = run_rule_tests(path)
    assert report.ok, report.render()
