"""The shipped collector/alertmanager.yml in a real Alertmanager: a fleet outage is at
most a few messages per receiver naming the bots, and a critical alert inhibits its
warning twin exactly as the in-process evaluator suppresses it, for every severity pair
of the default rules."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from otel_botmon.alerting.default_rules import default_rules_for
from otel_botmon.alerting.evaluator import AlertEvaluator
from otel_botmon.alerting.model import AlertEventKind
from otel_botmon.monitor_config import MonitoringConfig
from otel_botmon.query import MetricHistory
from tests.integration.fleet.alertmanager import (
    SHIPPED,
    Alertmanager,
    alertmanager_binary,
    bodies,
    shipped_with_webhooks,
)
from tests.integration.notify.receivers import Receiver
from tests.services import wait_until

pytestmark = pytest.mark.integration

RECEIVERS = ("pagerduty", "telegram", "slack", "webhook")
RULES = SHIPPED.parent / "prometheus" / "rules" / "botmon-default-rules.yml"


@pytest.fixture
def fleet_alertmanager(tmp_path: Path) -> Iterator[tuple[Alertmanager, Receiver]]:
    """The shipped routing, grouping and inhibition, with every receiver replaced by a
    webhook to one local receiver (path = receiver name) and short group timers."""
    binary = alertmanager_binary()
    hook = Receiver("webhook").start()
    node = Alertmanager(binary, tmp_path, shipped_with_webhooks(hook.url))
    try:
        yield node.start(), hook
    finally:
        node.stop()
        hook.stop()


def _rule_alerts(alertname: str, series: dict[str, str]) -> list[dict[str, Any]]:
    """The alerts Prometheus raises from the shipped rules named ``alertname`` for one
    bot's ``series`` labels (rule labels, severity included, and the alert name)."""
    rules = yaml.safe_load(RULES.read_text())["groups"][0]["rules"]
    found = [{"labels": {**series, **r["labels"], "alertname": r["alert"]},
              "annotations": r.get("annotations", {})}
             for r in rules if r["alert"] == alertname]
    assert found, alertname
    return found


def test_an_exchange_outage_across_200_bots_is_one_message_per_receiver(
    fleet_alertmanager: tuple[Alertmanager, Receiver],
) -> None:
    node, hook = fleet_alertmanager
    node.post([{"labels": {
        "alertname": "api_connection_failed", "severity": "critical",
        "exchange_name": "binance", "bot_name": f"bot-{i}", "job": "bots",
        "instance": f"10.0.0.{i % 250}:{9000 + i}", "health_component": "exchange_api",
    }, "annotations": {"summary": "API connection failed"}} for i in range(200)])
    wait_until(lambda: bodies(hook, "telegram") and bodies(hook, "slack"), timeout=20)
    for receiver in ("telegram", "slack"):  # critical goes to both
        [message] = bodies(hook, receiver)
        assert message["commonLabels"]["exchange_name"] == "binance"
        bots = {a["labels"]["bot_name"] for a in message["alerts"]}
        assert bots == {f"bot-{i}" for i in range(200)}
    assert bodies(hook, "pagerduty") == [] and bodies(hook, "webhook") == []


OUTAGE_ALERTS = ("api_connection_failed", "high_api_error_rate", "slow_api_response",
                 "trading_execution_slow")


def test_a_200_bot_outage_is_at_most_5_messages_per_receiver(
    fleet_alertmanager: tuple[Alertmanager, Receiver],
) -> None:
    """Everything an exchange outage raises on every bot, with the labels the exported
    rules give: health critical, error rate, both API-latency levels, slow trades."""
    node, hook = fleet_alertmanager
    alerts: list[dict[str, Any]] = []
    for i in range(200):
        series = {"job": "trading-bots", "instance": f"10.0.{i // 250}.{i % 250}:9464",
                  "bot_name": f"bot-{i}"}
        for name in OUTAGE_ALERTS:
            extra = {"health_component": "exchange_api"} if name == "api_connection_failed" \
                else {}
            alerts += _rule_alerts(name, {**series, **extra})
    node.post(alerts)
    expected_groups = {"slack": 4, "telegram": 2}  # warnings go to Slack only
    wait_until(lambda: all(len(bodies(hook, r)) >= n for r, n in expected_groups.items()),
               timeout=30)
    wait_until(lambda: node.metric("alertmanager_nflog_queries_total") >= 6, timeout=30)
    counts = {r: len(bodies(hook, r)) for r in RECEIVERS}
    assert all(n <= 5 for n in counts.values()), counts
    assert counts == {"pagerduty": 0, "telegram": 2, "slack": 4, "webhook": 0}
    for receiver in ("slack", "telegram"):
        for message in bodies(hook, receiver):
            bots = {a["labels"]["bot_name"] for a in message["alerts"]}
            assert bots == {f"bot-{i}" for i in range(200)}, message["groupLabels"]
    # the critical API-latency alerts inhibit their 200 warning twins in the same group
    [latency] = [m for m in bodies(hook, "slack")
                 if m["groupLabels"]["alertname"] == "slow_api_response"]
    assert {a["labels"]["severity"] for a in latency["alerts"]} == {"critical"}


# ----- inhibition: both engines suppress the same warnings -----------------------------

# bot -> gauges (OpenTelemetry name -> value) and API p95 seconds (None: no requests)
SCENARIOS: dict[str, tuple[dict[str, float], float | None]] = {
    "cpu-both": ({"system.cpu.utilization": 0.95}, None),
    "cpu-warn": ({"system.cpu.utilization": 0.80}, None),
    "mem-both": ({"system.memory.utilization": 0.97}, None),
    "mem-warn": ({"system.memory.utilization": 0.85}, None),
    "disk-both": ({"system.filesystem.utilization": 0.97}, None),
    "disk-warn": ({"system.filesystem.utilization": 0.90}, None),
    "api-both": ({}, 9.0),
    "api-warn": ({}, 3.0),
    "all-both": ({"system.cpu.utilization": 0.99, "system.memory.utilization": 0.99,
                  "system.filesystem.utilization": 0.99}, 9.0),
}
BOUNDS = (0.5, 1.0, 2.5, 5.0, 10.0)


def _in_process(bot: str) -> tuple[set[tuple[str, str, str]], set[tuple[str, str, str]]]:
    """(every alert that fired, the ones that notified) as (bot, alertname, severity),
    running the rules SystemMonitor registers on three minutes of the bot's input."""
    gauges, p95 = SCENARIOS[bot]
    history = MetricHistory()
    evaluator = AlertEvaluator(default_rules_for(MonitoringConfig()), history,
                               publish_telemetry=False)
    fired: set[tuple[str, str, str]] = set()
    notified: set[tuple[str, str, str]] = set()
    requests = 0.0
    for t in range(0, 181, 10):
        for name, value in gauges.items():
            history.add_point(name, {}, value, float(t))
        if p95 is not None:  # every request in the bucket holding p95
            requests += 100.0
            counts = [0.0] * (len(BOUNDS) + 1)
            counts[next(i for i, b in enumerate(BOUNDS) if b >= p95)] = requests
            history.add_histogram_point("botmon.exchange.request.duration",
                                        {"exchange.name": "binance"}, BOUNDS, counts,
                                        p95 * requests, requests, float(t))
        for event in evaluator.evaluate(float(t), dispatch=False):
            alert = evaluator.get(event.alert_id)
            if event.kind is AlertEventKind.FIRED and alert is not None:
                key = (bot, alert.labels.get("alertname", alert.rule_name),
                       alert.severity.value)
                fired.add(key)
                if event.notify:
                    notified.add(key)
    return fired, notified


def test_both_engines_suppress_the_same_warnings(
    fleet_alertmanager: tuple[Alertmanager, Receiver],
) -> None:
    fired: set[tuple[str, str, str]] = set()
    in_process: set[tuple[str, str, str]] = set()
    for bot in SCENARIOS:
        bot_fired, bot_notified = _in_process(bot)
        fired |= bot_fired
        in_process |= bot_notified
    suppressed = fired - in_process
    twins = {(b, n, "warning") for b, n, s in fired if s == "critical"} & fired
    assert suppressed == twins and len(twins) == 8  # four "-both" bots + all-both's four
    # Alertmanager gets every alert that fired (Prometheus does not suppress) with the
    # labels the exported rule gives it, and applies the shipped inhibition
    node, hook = fleet_alertmanager
    rules = {(r["alert"], r["labels"]["severity"]): r
             for r in yaml.safe_load(RULES.read_text())["groups"][0]["rules"]}
    node.post([{"labels": {"job": "trading-bots", "instance": f"{bot}:9464", "bot_name": bot,
                           **rules[name, severity]["labels"], "alertname": name}}
               for bot, name, severity in sorted(fired)])
    groups = {name for _, name, _ in fired}
    paged = {name for _, name, severity in fired if severity == "critical"}
    wait_until(lambda: {m["groupLabels"]["alertname"] for m in bodies(hook, "slack")}
               == groups, timeout=30)
    wait_until(lambda: node.metric("alertmanager_nflog_queries_total")
               >= len(groups) + len(paged), timeout=30)
    by_alertmanager = {(a["labels"]["bot_name"], a["labels"]["alertname"],
                        a["labels"]["severity"])
                       for receiver in RECEIVERS for m in bodies(hook, receiver)
                       for a in m["alerts"]}
    assert by_alertmanager == in_process
