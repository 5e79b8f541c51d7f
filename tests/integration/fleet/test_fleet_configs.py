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


def test_promtool_accepts_prometheus_config_and_its_rules() -> None:
    promtool = require_binary("promtool", "/usr/bin/promtool")
    done = _run(promtool, "check", "config", str(COLLECTOR / "prometheus" / "prometheus.yml"))
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
