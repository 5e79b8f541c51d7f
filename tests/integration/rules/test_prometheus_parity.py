"""Parity with Prometheus 2.42: exported rules pass promtool, and rule tests agree.

For every ``data/*.test.yml``, ``botmon rules test`` (our evaluator) and
``promtool test rules`` (Prometheus' engine, on the exported rules and the same input
series) must both accept the expected firing alerts, and both reject the same file with
one expectation changed, so the firing sets agree in both directions.
"""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from otel_botmon.alerting.default_rules import default_rules, default_rules_for
from otel_botmon.alerting.promexport import export_prometheus
from otel_botmon.alerting.promnames import prom_label
from otel_botmon.alerting.rules import load_rule_groups
from otel_botmon.alerting.rules_cli import main as rules_main
from otel_botmon.alerting.ruletest import run_rule_tests
from otel_botmon.monitor_config import MonitoringConfig
from tests.services import require_binary

pytestmark = pytest.mark.integration

DATA = Path(__file__).parent / "data"
TEST_FILES = sorted(DATA.glob("*.test.yml"))


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    binary = require_binary("promtool", "/usr/bin/promtool")
    return subprocess.run(
        [binary, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def write_prometheus_variant(doc: dict[str, Any], source_dir: Path, out_dir: Path) -> Path:
    """The test file with its botmon rule files replaced by their Prometheus export."""
    prom_doc = copy.deepcopy(doc)
    exported = []
    for i, rule_file in enumerate(doc["rule_files"]):
        result = export_prometheus(load_rule_groups(source_dir / rule_file))
        assert result.skipped == [], result.skipped
        target = out_dir / f"prometheus_rules_{i}.yml"
        target.write_text(result.to_yaml(), encoding="utf-8")
        exported.append(target.name)
    prom_doc["rule_files"] = exported
    for test in prom_doc["tests"]:  # botmon also accepts dotted label names; Prometheus not
        for check in test.get("alert_rule_test", []):
            for alert in check.get("exp_alerts") or []:
                labels = alert.get("exp_labels") or {}
                alert["exp_labels"] = {prom_label(k): v for k, v in labels.items()}
    test_path = out_dir / "prometheus.test.yml"
    test_path.write_text(yaml.safe_dump(prom_doc, sort_keys=False), encoding="utf-8")
    return test_path


def write_botmon_variant(doc: dict[str, Any], source_dir: Path, out_dir: Path) -> Path:
    botmon_doc = copy.deepcopy(doc)
    botmon_doc["rule_files"] = [str(source_dir / f) for f in doc["rule_files"]]
    path = out_dir / "botmon.test.yml"
    path.write_text(yaml.safe_dump(botmon_doc, sort_keys=False), encoding="utf-8")
    return path


def test_every_exported_default_rule_passes_promtool_check(tmp_path: Path) -> None:
    out = tmp_path / "default_rules.yml"
    assert rules_main(["rules", "export", "--format", "prometheus", "--output", str(out)]) == 0
    proc = promtool("check", "rules", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    running = default_rules_for(MonitoringConfig())  # what SystemMonitor runs
    assert f"SUCCESS: {len(running)} rules found" in proc.stdout
    exported = yaml.safe_load(out.read_text())
    names = [r["alert"] for g in exported["groups"] for r in g["rules"]]
    assert names == [r.labels.get("alertname", r.name) for r in running]


def test_optional_default_rules_pass_promtool_check(tmp_path: Path) -> None:
    rules = default_rules(disk_warning=85, disk_critical=95, api_response_time_warning_ms=1000,
                          api_response_time_critical_ms=5000)
    result = export_prometheus(rules)
    assert result.skipped == []
    out = tmp_path / "all.yml"
    out.write_text(result.to_yaml(), encoding="utf-8")
    proc = promtool("check", "rules", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("test_file", TEST_FILES, ids=lambda p: p.name)
def test_botmon_and_promtool_agree(test_file: Path, tmp_path: Path) -> None:
    doc = yaml.safe_load(test_file.read_text(encoding="utf-8"))
    report = run_rule_tests(test_file)
    assert report.ok, report.render()
    assert report.checks >= 5
    prom_test = write_prometheus_variant(doc, test_file.parent, tmp_path)
    proc = promtool("test", "rules", prom_test.name, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _mutations(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Variants with one expectation wrong: a firing alert dropped, a silent one added."""
    out = []
    for t, test in enumerate(doc["tests"]):
        for c, check in enumerate(test.get("alert_rule_test", [])):
            variant = copy.deepcopy(doc)
            target = variant["tests"][t]["alert_rule_test"][c]
            if check.get("exp_alerts"):
                target["exp_alerts"] = target["exp_alerts"][:-1]
                out.append((f"drop tests[{t}][{c}]", variant))
            else:
                target["exp_alerts"] = [{"exp_labels": {"severity": "warning"}}]
                out.append((f"add tests[{t}][{c}]", variant))
    return out


@pytest.mark.parametrize("test_file", TEST_FILES, ids=lambda p: p.name)
def test_botmon_and_promtool_reject_the_same_wrong_expectations(
    test_file: Path, tmp_path: Path
) -> None:
    doc = yaml.safe_load(test_file.read_text(encoding="utf-8"))
    for what, variant in _mutations(doc):
        case_dir = tmp_path / what.replace(" ", "_").replace("[", "").replace("]", "_")
        case_dir.mkdir()
        botmon_ok = run_rule_tests(write_botmon_variant(variant, test_file.parent, case_dir)).ok
        prom_test = write_prometheus_variant(variant, test_file.parent, case_dir)
        prom_ok = promtool("test", "rules", prom_test.name, cwd=case_dir).returncode == 0
        assert (botmon_ok, prom_ok) == (False, False), f"{test_file.name}: {what}"


def test_a_promql_style_file_runs_unchanged_in_both() -> None:
    """Rules and tests written for Prometheus (PromQL names, recording rules, `without`,
    `group_left`, `bool`, humanize templates) pass botmon and promtool as they are."""
    test_file = DATA / "promql_style.test.yml"
    report = run_rule_tests(test_file)
    assert report.ok and report.checks == 7, report.render()
    proc = promtool("test", "rules", test_file.name, cwd=DATA)
    assert proc.returncode == 0, proc.stdout + proc.stderr
