"""Parity with real promtool on small cases across the families of issue 15.

Every case of ``parity_cases.py`` becomes a botmon rule file and a test file whose
expected alerts are what botmon's evaluator fires (labels and annotations, values shown
as Go's shortest float text); ``promtool test rules`` must accept the same test file
against ``botmon rules export`` of the rules. A case botmon deliberately answers
differently is listed in ``EXCEPTIONS`` with the reason, and must keep differing.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from otel_botmon.alerting.rules_cli import main as rules_main
from otel_botmon.alerting.ruletest import run_rule_tests
from tests.integration.rules.parity_cases import CASES, Case
from tests.services import require_binary

pytestmark = pytest.mark.integration

EXCEPTIONS: dict[str, str] = {
    "hysteresis": (
        "recovery_threshold keeps a botmon alert firing until the value is back below the "
        "threshold; Prometheus alerts have no hysteresis (the export drops it with a note)"
    ),
}


def _rule_file(case: Case) -> dict[str, Any]:
    rule: dict[str, Any] = {"alert": "Case", "expr": case.expr,
                            "annotations": case.annotations, **case.extra}
    if case.for_:
        rule["for"] = case.for_
    records: list[dict[str, Any]] = [
        {"record": name, "expr": expr, **({"labels": labels} if labels else {})}
        for name, expr, labels in case.records
    ]
    return {"groups": [{"name": "parity", "rules": [*records, rule]}]}


def _test_file(case: Case, rule_file: str, expected: list[Any] | None) -> dict[str, Any]:
    return {
        "rule_files": [rule_file],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": case.interval,
            **case.group,
            "input_series": [{"series": s, "values": v} for s, v in case.series],
            "alert_rule_test": [{
                "eval_time": case.eval_time, "alertname": "Case",
                "exp_alerts": expected or [],
            }],
        }],
    }


def _botmon_alerts(case: Case, case_dir: Path) -> list[dict[str, Any]]:
    (case_dir / "botmon.rules.yml").write_text(yaml.safe_dump(_rule_file(case)), "utf-8")
    probe = case_dir / "probe.test.yml"
    probe.write_text(yaml.safe_dump(_test_file(case, "botmon.rules.yml", None)), "utf-8")
    seen: list[list[tuple[dict[str, str], dict[str, str]]]] = []
    run_rule_tests(probe, observe=lambda _name, alerts: seen.append(alerts))
    [alerts] = seen
    out = []
    for labels, notes in alerts:
        labels = {k: v for k, v in labels.items() if k != "alertname"}
        out.append({"exp_labels": labels, "exp_annotations": notes})
    return out


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[bool, str, Any]]:
    """Case id -> (promtool agrees, its output, botmon's alerts)."""
    root = tmp_path_factory.mktemp("parity")
    files: dict[str, Path] = {}
    alerts: dict[str, Any] = {}
    for case in CASES:
        case_dir = root / case.id
        case_dir.mkdir()
        alerts[case.id] = _botmon_alerts(case, case_dir)
        doc = _test_file(case, "botmon.rules.yml", alerts[case.id])
        (case_dir / "botmon.test.yml").write_text(yaml.safe_dump(doc, allow_unicode=True),
                                                  "utf-8")
        assert rules_main(["rules", "export", "-o", str(case_dir / "prom.rules.yml"),
                           str(case_dir / "botmon.rules.yml")]) == 0
        doc["rule_files"] = ["prom.rules.yml"]
        path = case_dir / "prom.test.yml"
        path.write_text(yaml.safe_dump(doc, allow_unicode=True), "utf-8")
        files[case.id] = path
    binary = require_binary("promtool", "/usr/bin/promtool")
    results: dict[str, tuple[bool, str, Any]] = {}
    for case_id, path in files.items():
        proc = subprocess.run([binary, "test", "rules", path.name], cwd=path.parent,
                              capture_output=True, text=True, timeout=60, check=False)
        results[case_id] = (proc.returncode == 0, proc.stdout + proc.stderr, alerts[case_id])
    return results


def test_the_suite_is_large_and_covers_every_family() -> None:
    assert len(CASES) >= 70
    assert len({c.id for c in CASES}) == len(CASES)
    assert {c.family for c in CASES} >= {"sum", "rate", "nan", "histogram", "labels",
                                         "arith", "template", "record", "bool", "without",
                                         "matching", "names", "exception"}


def test_cases_are_not_vacuous(outcomes: dict[str, tuple[bool, str, Any]]) -> None:
    firing = [case_id for case_id, (_, _, alerts) in outcomes.items() if alerts]
    assert len(firing) >= 0.8 * len(CASES)


@pytest.mark.parametrize(
    "case",
    [pytest.param(c, id=c.id, marks=[pytest.mark.xfail(reason=EXCEPTIONS[c.id], strict=True)]
                  if c.id in EXCEPTIONS else []) for c in CASES],
)
def test_promtool_agrees(case: Case, outcomes: dict[str, tuple[bool, str, Any]]) -> None:
    agrees, output, alerts = outcomes[case.id]
    assert agrees, f"botmon fired {alerts}\npromtool:{output}"


@pytest.mark.parametrize("case", CASES[:10], ids=[c.id for c in CASES[:10]])
def test_botmon_rules_test_passes_its_own_expectations(case: Case, tmp_path: Path) -> None:
    alerts = _botmon_alerts(case, tmp_path)
    path = tmp_path / "again.test.yml"
    path.write_text(yaml.safe_dump(_test_file(case, "botmon.rules.yml", alerts)), "utf-8")
    report = run_rule_tests(path)
    assert report.ok, report.render()
