"""The rule-test reader refuses what promtool refuses, at the right file:line:column,
and never ends in a traceback or a hang (a 2 KB file is enough to try)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from otel_botmon.alerting.promexport import export_prometheus
from otel_botmon.alerting.rules import load_rule_groups
from otel_botmon.alerting.ruletest import RuleTestError, run_rule_tests
from tests.services import require_binary

RULES = """\
groups:
  - name: g
    rules:
      - alert: Busy
        expr: botmon.health.status > 1
        annotations: {summary: "status {{ $value }}"}
"""

HEAD = """\
rule_files: [rules.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'botmon_health_status{health_component="api"}'
        values: '0 2 2'
"""
GOOD = HEAD + """\
    alert_rule_test:
      - eval_time: 2m
        alertname: Busy
        exp_alerts:
          - exp_labels: {health_component: api}
            exp_annotations: {summary: status 2}
    promql_expr_test:
      - expr: botmon.health.status
        eval_time: 1m
        exp_samples:
          - labels: 'botmon_health_status{health_component="api"}'
            value: 2
"""

# (name, test file, line:column botmon reports, text in botmon's message)
REFUSED = [
    ("eval_time_number", GOOD.replace("eval_time: 2m", "eval_time: 2"), "9:20",
     "not a valid duration"),
    ("eval_time_fraction", GOOD.replace("eval_time: 2m", "eval_time: 1.5m"), "9:20",
     "not a valid duration"),
    ("misspelt_key", GOOD.replace("alert_rule_test:", "alert_rule_tests:"), "8:5",
     "field alert_rule_tests not found"),
    ("unknown_top_key", "foo: 1\n" + GOOD, "1:1", "field foo not found"),
    ("repeated_key", GOOD.replace("evaluation_interval: 1m",
                                  "evaluation_interval: 1m\nevaluation_interval: 2m"),
     "3:1", "already set"),
    ("exp_labels_list", GOOD.replace("{health_component: api}",
                                     "[health_component, api]"), "12:25", "!!seq"),
    ("exp_annotations_string", GOOD.replace("{summary: status 2}", "'status 2'"), "13:30",
     "!!str"),
    ("rule_files_string", GOOD.replace("rule_files: [rules.yml]", "rule_files: rules.yml"),
     "1:13", "!!str"),
    ("no_alertname", GOOD.replace("        alertname: Busy\n", ""), "9:9",
     "misses required attribute alertname"),
    ("sample_value_string", GOOD.replace("value: 2", "value: 'two'"), "19:20", "float64"),
    ("bad_values", GOOD.replace("'0 2 2'", "'0 2 a'"), "7:17", "cannot read series value"),
]


def _write(tmp_path: Path, test_text: str) -> Path:
    (tmp_path / "rules.yml").write_text(RULES, encoding="utf-8")
    path = tmp_path / "t.test.yml"
    path.write_text(test_text, encoding="utf-8")
    return path


def _promtool(tmp_path: Path, test_text: str) -> subprocess.CompletedProcess[str]:
    binary = require_binary("promtool", "/usr/bin/promtool")
    prom_dir = tmp_path / "prom"
    prom_dir.mkdir()
    result = export_prometheus(load_rule_groups(tmp_path / "rules.yml"), per_bot=())
    (prom_dir / "rules.yml").write_text(result.to_yaml(), encoding="utf-8")
    prom_test = test_text.replace("expr: botmon.health.status", "expr: botmon_health_status")
    (prom_dir / "t.test.yml").write_text(prom_test, encoding="utf-8")
    return subprocess.run([binary, "test", "rules", "t.test.yml"], cwd=prom_dir,
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.integration
def test_the_good_file_passes_both(tmp_path: Path) -> None:
    report = run_rule_tests(_write(tmp_path, GOOD))
    assert report.ok and report.checks == 2, report.render()
    proc = _promtool(tmp_path, GOOD)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.integration
@pytest.mark.parametrize(("name", "text", "where", "message"), REFUSED,
                         ids=[r[0] for r in REFUSED])
def test_refused_like_promtool(
    tmp_path: Path, name: str, text: str, where: str, message: str
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(RuleTestError) as info:
        run_rule_tests(path)
    assert str(info.value).startswith(f"{path}:{where}:"), str(info.value)
    assert message in str(info.value)
    proc = _promtool(tmp_path, text)
    assert proc.returncode != 0 and "FAILED" in proc.stdout + proc.stderr, proc.stdout


@pytest.mark.integration
def test_failing_expression_test_fails_in_both(tmp_path: Path) -> None:
    text = GOOD.replace("value: 2", "value: 3")
    report = run_rule_tests(_write(tmp_path, text))
    assert not report.ok and "expr: 'botmon.health.status'" in report.render()
    assert _promtool(tmp_path, text).returncode != 0


BLOCK_EXPR = HEAD + """\
    promql_expr_test:
      - expr: |
          sum(
            botmon.health.status)
          + botmon.nosuch
        eval_time: 1m
"""


def test_expression_errors_point_into_block_scalars(tmp_path: Path) -> None:
    path = _write(tmp_path, BLOCK_EXPR)
    report = run_rule_tests(path)
    assert not report.ok
    # `botmon.nosuch` is on line 12, column 13 of the file
    assert f"{path}:12:13:" in report.render(), report.render()


HOSTILE = {
    "yaml_nested_10000": "tests: " + "[" * 10_000,
    "yaml_block_nested": "tests:\n" + "".join(" " * i + "- a:\n" for i in range(1, 150)),
    "yaml_flow_mapping_nested": "tests: " + "{a: " * 4000,
    "values_huge": HEAD.replace("'0 2 2'", "'0+1x1000000000'"),
    "eval_time_huge": GOOD.replace("eval_time: 2m", "eval_time: 100000w"),
    "regex_catastrophic": HEAD + """\
    promql_expr_test:
      - expr: 'botmon.health.status{health.component=~"(a+)+$"}'
        eval_time: 1m
""",
    "exp_alerts_string": GOOD.replace("exp_alerts:\n", "exp_alerts: 'x'\n"
                                      ).replace("          - exp_labels", "          x_labels"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_files_end_in_a_message(tmp_path: Path, name: str) -> None:
    """A small file never makes `botmon rules test` hang or print a traceback."""
    text = HOSTILE[name]
    assert len(text.encode()) <= 21_000
    path = _write(tmp_path, text)
    proc = subprocess.run(
        [sys.executable, "-m", "otel_botmon.alerting.rules_cli", "rules", "test", str(path)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    output = proc.stdout + proc.stderr
    assert "Traceback" not in output, output
    assert proc.returncode in (0, 1), output
    if proc.returncode == 1:
        assert str(path) in output
    if name in ("values_huge", "eval_time_huge"):  # refused up front, not run for hours
        assert proc.returncode == 1 and "more than" in output, output
