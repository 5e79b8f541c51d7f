"""The shipped Prometheus and Alertmanager files pass their own tools' checks."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.services import require_binary

pytestmark = pytest.mark.integration

COLLECTOR = Path(__file__).resolve().parents[3] / "collector"
RULE_FILES = sorted((COLLECTOR / "prometheus" / "rules").glob("*.yml"))


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)


def test_there_are_generated_rule_files() -> None:
    assert RULE_FILES, "collector/prometheus/rules/ holds no rule file"


@pytest.mark.parametrize("rule_file", RULE_FILES, ids=lambda p: p.name)
def test_promtool_accepts_generated_rules(rule_file: Path) -> None:
    promtool = require_binary("promtool", "/usr/bin/promtool")
    done = _run(promtool, "check", "rules", str(rule_file))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


@pytest.mark.parametrize("config", ["prometheus.yml", "prometheus-ha.yml"])
def test_promtool_accepts_prometheus_config_and_its_rules(config: str) -> None:
    promtool = require_binary("promtool", "/usr/bin/promtool")
    done = _run(promtool, "check", "config", str(COLLECTOR / "prometheus" / config))
    assert done.returncode == 0, done.stdout + done.stderr
    # rule_files is a glob relative to the config: promtool checks what it matched.
    for rule_file in RULE_FILES:
        assert rule_file.name in done.stdout, done.stdout


def test_amtool_accepts_alertmanager_config() -> None:
    amtool = require_binary("amtool", "/usr/bin/amtool")
    done = _run(amtool, "check-config", str(COLLECTOR / "alertmanager.yml"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 receivers" in done.stdout


def test_amtool_routes_each_severity_to_its_receivers() -> None:
    amtool = require_binary("amtool", "/usr/bin/amtool")
    expected = {
        "emergency": "pagerduty,telegram,slack",
        "critical": "telegram,slack",
        "warning": "slack",
        "info": "webhook",
    }
    for severity, receivers in expected.items():
        done = _run(amtool, "config", "routes", "test",
                    f"--config.file={COLLECTOR / 'alertmanager.yml'}",
                    "alertname=HighCPU", f"severity={severity}")
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout.strip() == receivers, (severity, done.stdout)


def test_the_ha_replica_differs_from_the_single_config_only_in_ha_settings() -> None:
    """prometheus-ha.yml is prometheus.yml plus the replica label, the alert relabelling
    that drops it and every Alertmanager node: rules and bot scraping stay the same."""
    import yaml

    single = yaml.safe_load((COLLECTOR / "prometheus" / "prometheus.yml").read_text())
    ha = yaml.safe_load((COLLECTOR / "prometheus" / "prometheus-ha.yml").read_text())
    assert ha["global"]["external_labels"] == {**single["global"]["external_labels"],
                                               "replica": "${PROMETHEUS_REPLICA}"}
    assert ha["rule_files"] == single["rule_files"]
    assert ha["scrape_configs"][0] == single["scrape_configs"][0]
    assert ha["alerting"]["alert_relabel_configs"] == [
        {"action": "labeldrop", "regex": "replica"}]
    [targets] = ha["alerting"]["alertmanagers"][0]["static_configs"]
    assert len(targets["targets"]) == 2
