"""The shipped collector/alertmanager.yml in a real Alertmanager: a fleet outage is one
message per receiver naming the bots, and a critical alert inhibits its warning twin
exactly as the in-process evaluator suppresses it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from otel_botmon.alerting.default_rules import default_rules
from otel_botmon.alerting.evaluator import AlertEvaluator
from otel_botmon.alerting.model import AlertEventKind
from otel_botmon.query import MetricHistory
from tests.integration.notify.receivers import Receiver
from tests.services import ManagedProcess, free_port, require_binary, wait_for_http, wait_until

pytestmark = pytest.mark.integration

SHIPPED = Path(__file__).resolve().parents[3] / "collector" / "alertmanager.yml"


@pytest.fixture
def fleet_alertmanager(tmp_path: Path) -> Iterator[tuple[str, Receiver]]:
    """The shipped routing, grouping and inhibition, with every receiver replaced by a
    webhook to one local receiver (path = receiver name) and short group timers."""
    binary = require_binary("prometheus-alertmanager", "alertmanager")
    hook = Receiver("webhook").start()
    config = yaml.safe_load(SHIPPED.read_text())
    config.pop("global", None)
    config["route"].update(group_wait="200ms", group_interval="1s", repeat_interval="1h")
    config["receivers"] = [
        {"name": r["name"], "webhook_configs": [
            {"url": f"{hook.url}/{r['name']}", "send_resolved": False}]}
        for r in config["receivers"]
    ]
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config))
    data = tmp_path / "data"
    data.mkdir()
    port = free_port()
    process = ManagedProcess(
        [binary, f"--config.file={path}", f"--storage.path={data}",
         f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
        tmp_path / "alertmanager.log",
    ).start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/-/ready", timeout=20)
        yield url, hook
    finally:
        process.stop()
        hook.stop()


def _post(url: str, alerts: list[dict[str, Any]]) -> None:
    now = datetime.now(timezone.utc)
    body = [{"labels": a["labels"], "annotations": a.get("annotations", {}),
             "startsAt": now.isoformat(), "endsAt": (now + timedelta(hours=1)).isoformat()}
            for a in alerts]
    httpx.post(f"{url}/api/v2/alerts", json=body, timeout=10).raise_for_status()


def _bodies(hook: Receiver, receiver: str) -> list[dict[str, Any]]:
    return [r.json() for r in list(hook.requests) if r.path == f"/{receiver}"]


def test_an_exchange_outage_across_200_bots_is_one_message_per_receiver(
    fleet_alertmanager: tuple[str, Receiver],
) -> None:
    url, hook = fleet_alertmanager
    _post(url, [{"labels": {
        "alertname": "api_connection_failed", "severity": "critical",
        "exchange_name": "binance", "bot_name": f"bot-{i}", "job": "bots",
        "instance": f"10.0.0.{i % 250}:{9000 + i}", "health_component": "exchange_api",
    }, "annotations": {"summary": "API connection failed"}} for i in range(200)])
    wait_until(lambda: _bodies(hook, "telegram") and _bodies(hook, "slack"), timeout=20)
    for receiver in ("telegram", "slack"):  # critical goes to both
        [message] = _bodies(hook, receiver)
        assert message["commonLabels"]["exchange_name"] == "binance"
        bots = {a["labels"]["bot_name"] for a in message["alerts"]}
        assert bots == {f"bot-{i}" for i in range(200)}
    assert _bodies(hook, "pagerduty") == [] and _bodies(hook, "webhook") == []


RULES = SHIPPED.parent / "prometheus" / "rules" / "botmon-default-rules.yml"


def _pair(bot: str) -> list[dict[str, Any]]:
    """The two CPU alerts of one bot as Prometheus raises them from the shipped rules."""
    rules = yaml.safe_load(RULES.read_text())["groups"][0]["rules"]
    cpu = [r for r in rules if "system_cpu_utilization" in r["expr"]]
    assert len(cpu) == 2
    series = {"job": "bots", "instance": "h:1", "bot_name": bot}
    return [{"labels": {**series, **r["labels"], "alertname": r["alert"]}} for r in cpu]


def test_a_critical_inhibits_its_warning_twin_in_both_engines(
    fleet_alertmanager: tuple[str, Receiver],
) -> None:
    # in-process: CPU at 95 % for two minutes fires both levels; only critical notifies
    history = MetricHistory()
    evaluator = AlertEvaluator(default_rules(), history, publish_telemetry=False)
    notified: dict[str, list[str]] = {}
    for t in range(0, 181, 10):
        history.add_point("system.cpu.utilization", {}, 0.95, float(t))
        for event in evaluator.evaluate(float(t), dispatch=False):
            alert = evaluator.get(event.alert_id)
            if event.kind is AlertEventKind.FIRED and alert is not None:
                notified.setdefault(alert.labels["severity"], []).append(
                    "notify" if event.notify else str(event.suppressed))
    assert notified["critical"] == ["notify"]
    assert notified["warning"] and "notify" not in notified["warning"]
    # Alertmanager with the shipped inhibition, on the labels the exported rules give
    url, hook = fleet_alertmanager
    _post(url, _pair("bot-a"))
    wait_until(lambda: _bodies(hook, "slack"), timeout=20)
    [message] = _bodies(hook, "slack")  # slack takes warning and critical
    assert [a["labels"]["severity"] for a in message["alerts"]] == ["critical"]
