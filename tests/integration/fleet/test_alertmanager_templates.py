"""Every notification the shipped collector/alertmanager.yml sends names the bot: the
real Slack, Telegram, PagerDuty and webhook integrations of a real Alertmanager render
the shipped templates and post them to local stand-ins for those services."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.fleet.alertmanager import SHIPPED, Alertmanager, alertmanager_binary
from tests.integration.notify.receivers import Receiver, Reply
from tests.services import wait_until

pytestmark = pytest.mark.integration


def _local_services(config: dict[str, Any], services: dict[str, Receiver],
                    secrets: Path) -> dict[str, Any]:
    """The shipped file with each integration's API address pointed at a local receiver
    and its secrets in local files; templates, routes and grouping untouched."""
    (secrets / "slack").write_text(f"{services['slack'].url}/slack\n")
    (secrets / "pagerduty").write_text("0123456789abcdef0123456789abcdef\n")
    config["global"]["slack_api_url_file"] = str(secrets / "slack")
    config["route"].update(group_wait="200ms", group_interval="1s", repeat_interval="1h")
    for receiver in config["receivers"]:
        for slack in receiver.get("slack_configs", []):
            slack["api_url_file"] = str(secrets / "slack")
        for telegram in receiver.get("telegram_configs", []):
            telegram["bot_token"] = "123:test"
            telegram["api_url"] = services["telegram"].url
        for pagerduty in receiver.get("pagerduty_configs", []):
            pagerduty["routing_key_file"] = str(secrets / "pagerduty")
            pagerduty["url"] = f"{services['pagerduty'].url}/v2/enqueue"
        for webhook in receiver.get("webhook_configs", []):
            webhook["url"] = f"{services['webhook'].url}/alerts"
    return config


@pytest.fixture
def rendered(tmp_path: Path) -> Iterator[tuple[Alertmanager, dict[str, Receiver]]]:
    binary = alertmanager_binary()
    services = {kind: Receiver(kind).start()
                for kind in ("slack", "telegram", "pagerduty", "webhook")}
    # Telegram's answer names the chat; Alertmanager 0.25 dereferences it (and crashes
    # on an answer without it), so the stand-in answers as Telegram does.
    sent = {"ok": True, "result": {"message_id": 1, "date": 0,
                                   "chat": {"id": -1001234567890, "type": "supergroup"}}}
    services["telegram"].respond(*[Reply.json(200, sent)] * 8)
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    config = _local_services(yaml.safe_load(SHIPPED.read_text()), services, secrets)
    node = Alertmanager(binary, tmp_path / "am", config)
    try:
        yield node.start(), services
    finally:
        node.stop()
        for receiver in services.values():
            receiver.stop()


def _text(service: str, body: bytes) -> str:
    """What a person reads: the message fields of each service's request."""
    data = json.loads(body)
    if service == "slack":
        return " ".join(f"{a.get('title', '')} {a.get('text', '')}"
                        for a in data["attachments"])
    if service == "telegram":
        return str(data["text"])
    if service == "pagerduty":
        return str(data["payload"]["summary"])
    return " ".join(a["labels"]["bot_name"] for a in data["alerts"])  # webhook: JSON


@pytest.mark.parametrize("severity", ["emergency", "critical", "warning", "info"])
def test_every_message_names_the_bot(
    rendered: tuple[Alertmanager, dict[str, Receiver]], severity: str,
) -> None:
    node, services = rendered
    node.post([{"labels": {"alertname": "high_cpu_usage", "severity": severity,
                           "job": "trading-bots", "instance": "10.1.2.3:9464",
                           "bot_name": "grid-btc-7"},
                "annotations": {"summary": "High CPU usage"}}])
    receivers = {"emergency": ("pagerduty", "telegram", "slack"),
                 "critical": ("telegram", "slack"), "warning": ("slack",),
                 "info": ("webhook",)}[severity]
    wait_until(lambda: all(services[r].requests for r in receivers), timeout=30)
    for service in receivers:
        for request in services[service].requests:
            assert "grid-btc-7" in _text(service, request.body), (service, request.text)
    assert all(not services[s].requests for s in services if s not in receivers)
    assert node.process.running(), node.process.log()[-3000:]


def test_an_outage_on_two_exchanges_is_one_message_per_exchange_naming_it(
    rendered: tuple[Alertmanager, dict[str, Receiver]],
) -> None:
    """api_connection_failed comes from the bots' health series, which carry the bot's
    exchange (``bot_exchange``): one Slack message per exchange, naming it and its bots."""
    node, services = rendered
    node.post([{"labels": {"alertname": "api_connection_failed", "severity": "critical",
                           "job": "trading-bots", "instance": f"10.0.0.{i}:9464",
                           "bot_name": f"{exchange}-bot-{i}", "bot_exchange": exchange,
                           "health_component": "exchange_api"},
                "annotations": {"summary": "API connection failed"}}
               for exchange in ("binance", "kraken") for i in range(3)])
    wait_until(lambda: len(services["slack"].requests) == 2, timeout=30)
    texts = sorted(_text("slack", r.body) for r in services["slack"].requests)
    for exchange, text in zip(("binance", "kraken"), texts, strict=True):
        assert f"api_connection_failed on {exchange}: 3 bot(s)" in text, text
        assert all(f"{exchange}-bot-{i}" in text for i in range(3)), text
    assert node.process.running(), node.process.log()[-3000:]
