"""promql_expr_test reads the ALERTS series as promtool does: 1 per pending or firing
alert with ``alertstate``; a pending series ends when the alert fires, and every series
ends when the alert resolves. ALERTS_FOR_STATE likewise: the alert's labels, its value
the time the alert became active. A test group's external_labels and external_url fill
``$externalLabels`` and ``$externalURL``."""

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
    ("ALERTS_FOR_STATE", "0m", "[]"),
    ("ALERTS_FOR_STATE", "3m", "[{labels: 'ALERTS_FOR_STATE{alertname=\"Down\", "
                               "instance=\"i\", job=\"j\", severity=\"page\"}', value: 60}]"),
    ("ALERTS_FOR_STATE", "5m", "[]"),
])
def test_alerts_series(tmp_path: Path, expr: str, eval_time: str, samples: str) -> None:
    (tmp_path / "rules.yml").write_text(RULES)
    path = tmp_path / "t.test.yml"
    path.write_text(_suite(expr, eval_time, samples))
    report = run_rule_tests(path)
    assert report.ok, report.render()


def test_external_labels_and_url_fill_templates(tmp_path: Path) -> None:
    (tmp_path / "rules.yml").write_text(RULES.replace(
        "labels: {severity: page}",
        "labels: {severity: page}\n"
        "        annotations: {where: '{{ $externalLabels.dc }} {{ $externalURL }}'}"))
    path = tmp_path / "t.test.yml"
    path.write_text("""\
rule_files: [rules.yml]
tests:
  - interval: 1m
    external_labels: {dc: fra}
    external_url: http://prom:9090
    input_series:
      - series: 'up{job="j", instance="i"}'
        values: '0 0 0 0'
    alert_rule_test:
      - eval_time: 3m
        alertname: Down
        exp_alerts:
          - exp_labels: {job: j, instance: i, severity: page}
            exp_annotations: {where: fra http://prom:9090}
""")
    report = run_rule_tests(path)
    assert report.ok, report.render()
