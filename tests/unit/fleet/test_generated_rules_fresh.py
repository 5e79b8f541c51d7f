"""collector/prometheus/rules/ is what ``botmon rules export`` generates today."""

from __future__ import annotations

from pathlib import Path

COMMITTED = (
    Path(__file__).resolve().parents[3]
    / "collector" / "prometheus" / "rules" / "botmon-default-rules.yml"
)
REGENERATE = (
    "botmon rules export --format prometheus "
    "--output collector/prometheus/rules/botmon-default-rules.yml"
)


def test_committed_rules_match_a_fresh_export(tmp_path: Path) -> None:
    from otel_botmon import cli  # the lead's `botmon` entry point

    fresh = tmp_path / "rules.yml"
    exit_code = cli.main(["rules", "export", "--format", "prometheus", "--output", str(fresh)])
    assert exit_code in (0, None)
    assert fresh.read_text() == COMMITTED.read_text(), (
        f"{COMMITTED.name} is stale; regenerate it with: {REGENERATE}"
    )



def test_shipped_rules_are_every_rule_the_monitor_runs() -> None:
    """The drift test above pins the file to the export; this pins the export to what
    SystemMonitor's alert manager actually registers with the default configuration
    (disk and API-latency rules included)."""
    import yaml

    from otel_botmon.alerting.promexport import export_prometheus
    from otel_botmon.monitor_components import _alert_manager
    from otel_botmon.monitor_config import MonitoringConfig

    manager = _alert_manager(MonitoringConfig())
    try:
        running = manager.rules
    finally:
        manager.close()
    assert len(running) == 12
    assert {"high_disk_usage", "slow_api_response_critical"} <= {r.name for r in running}
    shipped = yaml.safe_load(COMMITTED.read_text())
    assert shipped == export_prometheus(
        [_group(running)]).document, f"stale: regenerate with {REGENERATE}"


def _group(rules: list[object]) -> object:
    from otel_botmon.alerting.rules import RuleGroup

    return RuleGroup("botmon_default", list(rules))  # type: ignore[arg-type]


def test_severity_pairs_share_an_alertname_with_a_severity_label() -> None:
    """So that Alertmanager's inhibition (equal: alertname, job, bot_name) silences a
    warning while its critical twin fires, as the in-process gate does (same component)."""
    import yaml

    shipped = yaml.safe_load(COMMITTED.read_text())
    by_name: dict[str, list[dict[str, object]]] = {}
    for rule in shipped["groups"][0]["rules"]:
        by_name.setdefault(rule["alert"], []).append(rule)
    pairs = {name: rules for name, rules in by_name.items() if len(rules) > 1}
    assert set(pairs) == {"high_cpu_usage", "high_memory_usage", "high_disk_usage",
                          "slow_api_response"}
    for rules in pairs.values():
        severities = sorted(str(r["labels"]["severity"]) for r in rules)  # type: ignore[index]
        assert severities == ["critical", "warning"]
        components = {r["labels"]["component"] for r in rules}  # type: ignore[index]
        assert len(components) == 1
    alertmanager = yaml.safe_load((COMMITTED.parents[2] / "alertmanager.yml").read_text())
    [inhibit] = alertmanager["inhibit_rules"]
    assert "alertname" in inhibit["equal"]
