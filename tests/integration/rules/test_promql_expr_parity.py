"""promql_expr_test: botmon and promtool accept the same expected samples, metric names
included where PromQL keeps them (selectors, filtering comparisons, `and`, `or`) and
dropped where it drops them (arithmetic, functions, `bool`)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from otel_botmon.alerting.promexport import to_promql
from otel_botmon.alerting.ruletest import run_rule_tests
from tests.services import require_binary

pytestmark = pytest.mark.integration

G = "botmon_health_status"
SERIES = [
    {"series": f'{G}{{a="x"}}', "values": "1 2 3"},
    {"series": f'{G}{{a="y"}}', "values": "5 5 5"},
    {"series": 'other{a="x"}', "values": "4 4 4"},
    {"series": 'other{a="z"}', "values": "7 7 7"},
]
# (expression in the condition language, expected samples at 2m)
EXPRS: list[tuple[str, list[tuple[str, float]]]] = [
    ("botmon.health.status", [(f'{G}{{a="x"}}', 3), (f'{G}{{a="y"}}', 5)]),
    ("botmon.health.status > 4", [(f'{G}{{a="y"}}', 5)]),
    ("4 < botmon.health.status", [(f'{G}{{a="y"}}', 5)]),
    ("botmon.health.status + 1", [('{a="x"}', 4), ('{a="y"}', 6)]),
    ("botmon.health.status > bool 4", [('{a="x"}', 0), ('{a="y"}', 1)]),
    ("botmon.health.status and other", [(f'{G}{{a="x"}}', 3)]),
    ("botmon.health.status or other", [(f'{G}{{a="x"}}', 3), (f'{G}{{a="y"}}', 5),
                                       ('other{a="z"}', 7)]),
    ("botmon.health.status unless other", [(f'{G}{{a="y"}}', 5)]),
    ("sum without (a) (botmon.health.status)", [("{}", 8)]),
    ("max(botmon.health.status[2m])", [('{a="x"}', 3), ('{a="y"}', 5)]),
    ("botmon.health.status / on(a) other", [('{a="x"}', 0.75)]),
    ("abs(botmon.health.status - 4)", [('{a="x"}', 1), ('{a="y"}', 1)]),
]


def _doc(rule_file: str, translate: bool) -> dict[str, Any]:
    tests = []
    for expr, samples in EXPRS:
        tests.append({
            "expr": to_promql(expr, per_bot=()) if translate else expr,
            "eval_time": "2m",
            "exp_samples": [{"labels": labels, "value": value} for labels, value in samples],
        })
    return {"rule_files": [rule_file], "evaluation_interval": "1m",
            "tests": [{"interval": "1m", "input_series": SERIES, "promql_expr_test": tests}]}


def test_expression_samples_agree_with_promtool(tmp_path: Path) -> None:
    (tmp_path / "empty.rules.yml").write_text("groups: []\n")
    botmon_file = tmp_path / "botmon.test.yml"
    botmon_file.write_text(yaml.safe_dump(_doc("empty.rules.yml", False)))
    report = run_rule_tests(botmon_file)
    assert report.ok and report.checks == len(EXPRS), report.render()
    prom_file = tmp_path / "prom.test.yml"
    prom_file.write_text(yaml.safe_dump(_doc("empty.rules.yml", True)))
    binary = require_binary("promtool", "/usr/bin/promtool")
    proc = subprocess.run([binary, "test", "rules", prom_file.name], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_wrong_sample_fails_in_both(tmp_path: Path) -> None:
    (tmp_path / "empty.rules.yml").write_text("groups: []\n")
    for translate, name in ((False, "botmon.test.yml"), (True, "prom.test.yml")):
        doc = _doc("empty.rules.yml", translate)
        doc["tests"][0]["promql_expr_test"][1]["exp_samples"][0]["labels"] = '{a="y"}'
        (tmp_path / name).write_text(yaml.safe_dump(doc))
    assert not run_rule_tests(tmp_path / "botmon.test.yml").ok
    binary = require_binary("promtool", "/usr/bin/promtool")
    proc = subprocess.run([binary, "test", "rules", "prom.test.yml"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode != 0
