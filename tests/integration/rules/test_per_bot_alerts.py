"""A fleet in one Prometheus: the exported rules alert per bot, as botmon does in each bot.

Three bots (two scraped, one remote-written through the collector: different ``job`` and
``instance`` labels) feed one ``promtool test rules`` run of the exported rules. Each alert
must fire once, for the bot whose values cross the threshold, carrying that bot's labels.
botmon evaluates inside one bot, so it cannot hold the three bots at once: each bot's
series, without the labels Prometheus adds, go to ``botmon rules test`` separately and
must give the same alerts (less those labels). The fleet-wide export (``per_bot=()``)
fails the same promtool expectations, so the test tells the two apart.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from otel_botmon.alerting.promexport import BOT_LABELS, export_prometheus
from otel_botmon.alerting.rules import load_rule_groups
from otel_botmon.alerting.ruletest import run_rule_tests
from tests.services import require_binary

pytestmark = pytest.mark.integration

SHIPPED_RULES = (
    Path(__file__).parents[3] / "collector" / "prometheus" / "rules" / "botmon-default-rules.yml"
)

RULES = """\
groups:
  - name: fleet
    rules:
      - alert: HighCpu
        expr: cpu > 75
        for: 1m
        severity: warning
      - alert: LowWinRate
        expr: win_rate < 50
        severity: warning
      - alert: ApiErrors
        expr: api_error_rate > 10
        severity: critical
      - alert: SlowTrades
        expr: trade_latency_p95 > 2s
        severity: warning
"""

# the labels Prometheus puts on each bot's series: scraped (job = scrape job, instance =
# target) or remote-written (job = service.name, instance = service.instance.id)
BOTS: dict[str, dict[str, str]] = {
    "alpha": {"job": "trading-bots", "instance": "10.0.0.1:9464", "bot_name": "alpha"},
    "beta": {"job": "beta-svc", "instance": "5f1c2a7e-0b1d-4c1e-9a55-3f7f0c1d2e3f",
             "bot_name": "beta"},
    "gamma": {"job": "trading-bots", "instance": "10.0.0.2:9464", "bot_name": "gamma"},
}


def _histogram(fast: bool) -> dict[str, str]:
    """Trade-duration buckets: all trades within 1 s, or 90 % of them in (2, 5] s."""
    slow_low = "0+10x10" if fast else "0+1x10"
    name = "botmon_trade_duration_seconds_bucket"
    return {f'{name}{{le="1"}}': slow_low, f'{name}{{le="2"}}': slow_low,
            f'{name}{{le="5"}}': "0+10x10", f'{name}{{le="+Inf"}}': "0+10x10"}


CLOSED = "botmon_positions_closed_total"
REQUESTS = "botmon_exchange_requests_total"

# each bot's series as its own /metrics shows them (no job/instance)
SERIES: dict[str, dict[str, str]] = {
    "alpha": {  # busy CPU, losing (25 % wins)
        "system_cpu_utilization": "0.8x10",
        f'{CLOSED}{{trading_result="win"}}': "1x10",
        f'{CLOSED}{{trading_result="loss"}}': "3x10",
        f'{REQUESTS}{{http_response_status_code="200"}}': "0+30x10",
        **_histogram(fast=True),
    },
    "beta": {  # slow trades, 20 failed requests a minute, winning (75 %)
        "system_cpu_utilization": "0.3x10",
        f'{CLOSED}{{trading_result="win"}}': "3x10",
        f'{CLOSED}{{trading_result="loss"}}': "1x10",
        f'{REQUESTS}{{error_type="TimeoutError"}}': "0+20x10",
        **_histogram(fast=False),
    },
    "gamma": {  # losses only: no win series at all, a win rate of 0 %
        "system_cpu_utilization": "0.5x10",
        f'{CLOSED}{{trading_result="loss"}}': "2x10",
        f'{REQUESTS}{{http_response_status_code="200"}}': "0+5x10",
        **_histogram(fast=True),
    },
}

# alert -> the bots it fires for at EVAL_TIME, with the labels it has in botmon
EXPECTED: dict[str, dict[str, dict[str, str]]] = {
    "HighCpu": {"alpha": {"severity": "warning"}},
    "LowWinRate": {"alpha": {"severity": "warning"}, "gamma": {"severity": "warning"}},
    "ApiErrors": {"beta": {"severity": "critical"}},
    "SlowTrades": {"beta": {"severity": "warning"}},
}
SHIPPED_EXPECTED: dict[str, dict[str, dict[str, str]]] = {
    "high_cpu_usage": {"alpha": {"component": "cpu", "severity": "warning"}},
    "high_cpu_usage_critical": {},
    "trading_execution_slow": {"beta": {"severity": "warning"}},
    "high_api_error_rate": {"beta": {"component": "exchange_api", "severity": "warning"}},
}
EVAL_TIME = "5m"


def _with_labels(series: str, labels: dict[str, str]) -> str:
    extra = ",".join(f'{k}="{v}"' for k, v in labels.items())
    if "{" not in series:
        return f"{series}{{{extra}}}"
    return series[:-1] + "," + extra + "}"


def _checks(expected: dict[str, dict[str, dict[str, str]]],
            bots: list[str], with_bot_labels: bool) -> list[dict[str, Any]]:
    checks = []
    for alert, per_bot in expected.items():
        exp = [
            {"exp_labels": {**labels, **(BOTS[bot] if with_bot_labels else {})}}
            for bot, labels in per_bot.items() if bot in bots
        ]
        checks.append({"eval_time": EVAL_TIME, "alertname": alert, "exp_alerts": exp})
    return checks


def _test_doc(rule_files: list[str], bots: list[str], with_bot_labels: bool,
              expected: dict[str, dict[str, dict[str, str]]]) -> dict[str, Any]:
    series = [
        {"series": _with_labels(s, BOTS[bot]) if with_bot_labels else s, "values": v}
        for bot in bots for s, v in SERIES[bot].items()
    ]
    return {
        "rule_files": rule_files,
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": series,
                   "alert_rule_test": _checks(expected, bots, with_bot_labels)}],
    }


def _promtool(test_file: Path) -> subprocess.CompletedProcess[str]:
    binary = require_binary("promtool", "/usr/bin/promtool")
    return subprocess.run([binary, "test", "rules", test_file.name], cwd=test_file.parent,
                          capture_output=True, text=True, timeout=60, check=False)


def _write(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def rules_file(tmp_path: Path) -> Path:
    path = tmp_path / "fleet.rules.yml"
    path.write_text(RULES, encoding="utf-8")
    return path


def test_bot_labels_identify_a_bot_on_both_paths() -> None:
    assert BOT_LABELS == ("job", "instance", "bot_name")


def test_prometheus_fires_each_alert_for_its_own_bot(rules_file: Path, tmp_path: Path) -> None:
    exported = export_prometheus(load_rule_groups(rules_file))
    assert exported.skipped == []
    (tmp_path / "exported.yml").write_text(exported.to_yaml(), encoding="utf-8")
    doc = _test_doc(["exported.yml"], list(BOTS), True, EXPECTED)
    proc = _promtool(_write(tmp_path / "fleet.test.yml", doc))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_shipped_rule_file_alerts_per_bot(tmp_path: Path) -> None:
    shipped = yaml.safe_load(SHIPPED_RULES.read_text(encoding="utf-8"))
    for group in shipped["groups"]:  # promtool compares annotations; this is about labels
        for rule in group["rules"]:
            rule.pop("annotations", None)
    _write(tmp_path / "shipped.yml", shipped)
    doc = _test_doc(["shipped.yml"], list(BOTS), True, SHIPPED_EXPECTED)
    proc = _promtool(_write(tmp_path / "shipped.test.yml", doc))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_fleet_wide_export_fails_the_per_bot_expectations(
    rules_file: Path, tmp_path: Path
) -> None:
    exported = export_prometheus(load_rule_groups(rules_file), per_bot=())
    (tmp_path / "fleet_wide.yml").write_text(exported.to_yaml(), encoding="utf-8")
    for alert in EXPECTED:  # every alert on its own, so each one is shown to differ
        doc = _test_doc(["fleet_wide.yml"], list(BOTS), True, {alert: EXPECTED[alert]})
        proc = _promtool(_write(tmp_path / f"{alert}.test.yml", doc))
        assert proc.returncode != 0, f"{alert}: fleet-wide rule passed the per-bot test"


@pytest.mark.parametrize("bot", list(BOTS))
def test_botmon_in_each_bot_agrees(bot: str, rules_file: Path, tmp_path: Path) -> None:
    doc = _test_doc([str(rules_file)], [bot], False, EXPECTED)
    report = run_rule_tests(_write(tmp_path / f"{bot}.test.yml", doc))
    assert report.ok, report.render()
    assert report.checks == len(EXPECTED)
