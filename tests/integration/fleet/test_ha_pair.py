"""High availability on real binaries: a Prometheus pair built from the shipped
``prometheus-ha.yml`` and a two-node Alertmanager cluster (gossip on loopback ports).

Both Prometheus replicas scrape the same bot and send the same alert to both
Alertmanager nodes; the receiver gets one notification. Two nodes that do not gossip
send it twice, which is what the cluster is for."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.integration.fleet.alertmanager import (
    Alertmanager,
    alertmanager_binary,
    bodies,
    shipped_with_webhooks,
    wait_for_cluster,
)
from tests.integration.fleet.conftest import StartBot
from tests.integration.notify.receivers import Receiver
from tests.services import (
    LOOPBACK,
    ManagedProcess,
    free_port,
    require_binary,
    wait_until,
)

pytestmark = pytest.mark.integration

SHIPPED_HA = Path(__file__).resolve().parents[3] / "collector" / "prometheus" / "prometheus-ha.yml"
PEER_TIMEOUT_S = 2.0  # how long the second node waits for the first one's notification log

OUTAGE = {"labels": {
    "alertname": "api_connection_failed", "severity": "critical", "exchange_name": "binance",
    "bot_name": "bot-1", "job": "bots", "instance": "10.0.0.1:9464",
}, "annotations": {"summary": "API connection failed"}}

StartNodes = Callable[..., tuple[Alertmanager, Alertmanager]]


@pytest.fixture
def hook() -> Iterator[Receiver]:
    receiver = Receiver("webhook").start()
    yield receiver
    receiver.stop()


@pytest.fixture
def start_nodes(tmp_path: Path, hook: Receiver) -> Iterator[StartNodes]:
    """Start two Alertmanager nodes with the shipped routing: a gossip cluster, or (with
    ``clustered=False``) two independent servers."""
    binary = alertmanager_binary()
    started: list[Alertmanager] = []

    def start(clustered: bool = True) -> tuple[Alertmanager, Alertmanager]:
        config = shipped_with_webhooks(hook.url)
        if not clustered:
            a = Alertmanager(binary, tmp_path / "am-a", config)
            b = Alertmanager(binary, tmp_path / "am-b", config)
        else:
            port_a, port_b = free_port(), free_port()
            timeout = f"{PEER_TIMEOUT_S:g}s"
            a = Alertmanager(binary, tmp_path / "am-a", config, cluster_port=port_a,
                             peers=[port_b], peer_timeout=timeout)
            b = Alertmanager(binary, tmp_path / "am-b", config, cluster_port=port_b,
                             peers=[port_a], peer_timeout=timeout)
        started.extend((a, b))
        a.start()
        b.start()
        if clustered:
            wait_for_cluster((a, b))
        return a, b

    yield start
    for node in started:
        node.stop()


def _decided(nodes: tuple[Alertmanager, Alertmanager], receivers: int) -> Callable[[], bool]:
    """True once every node has looked up its notification log for every receiver (the
    dedup step, after the second node's peer-timeout wait): each has then sent or not."""
    def decided() -> bool:
        return all(n.metric("alertmanager_nflog_queries_total") >= receivers for n in nodes)
    return decided


def _settle_after_decision() -> None:
    # A node that decided to send does so right after its notification-log lookup; one
    # more peer timeout is ample for a duplicate to arrive. There is no event for "no
    # second message", so this bounded wait is the only way to observe its absence.
    time.sleep(PEER_TIMEOUT_S)


def test_one_alert_sent_to_both_nodes_is_one_notification_per_receiver(
    start_nodes: StartNodes, hook: Receiver,
) -> None:
    nodes = start_nodes(clustered=True)
    for node in nodes:  # as both Prometheus replicas do
        node.post([OUTAGE])
    wait_until(lambda: bodies(hook, "telegram") and bodies(hook, "slack"), timeout=30)
    wait_until(_decided(nodes, receivers=2), timeout=30)
    _settle_after_decision()
    for receiver in ("telegram", "slack"):  # critical goes to both
        [message] = bodies(hook, receiver)
        assert [a["labels"]["bot_name"] for a in message["alerts"]] == ["bot-1"]
    assert sum(n.metric("alertmanager_notifications_total") for n in nodes) == 2


def test_without_gossip_both_nodes_notify(start_nodes: StartNodes, hook: Receiver) -> None:
    nodes = start_nodes(clustered=False)
    for node in nodes:
        node.post([OUTAGE])
    wait_until(lambda: len(bodies(hook, "slack")) == 2 and len(bodies(hook, "telegram")) == 2,
               timeout=30)


# ----- the Prometheus pair ------------------------------------------------------------

RULES = """\
groups:
  - name: ha
    rules:
      - alert: bot_scraped
        expr: up{job="trading-bots"} == 1
        labels: {severity: warning}
        annotations: {summary: "{{ $labels.instance }} answers scrapes"}
"""


def _replica_config(workdir: Path, bot: str, nodes: tuple[Alertmanager, Alertmanager]) -> Path:
    """The shipped HA file with test-sized intervals, the test's bot, rules and cluster;
    external labels and alert relabelling stay as shipped."""
    config: dict[str, Any] = yaml.safe_load(SHIPPED_HA.read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    (workdir / "ha.rules.yml").write_text(RULES)
    config["rule_files"] = [str(workdir / "ha.rules.yml")]
    [am] = config["alerting"]["alertmanagers"]
    am["static_configs"] = [{"targets": [f"{LOOPBACK}:{n.port}" for n in nodes]}]
    [scrape] = config["scrape_configs"]
    scrape.update(scrape_interval="1s", scrape_timeout="1s",
                  static_configs=[{"targets": [bot]}])
    path = workdir / "prometheus-ha.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def _start_replica(binary: str, workdir: Path, config: Path, replica: str) -> tuple[str,
                                                                                   ManagedProcess]:
    port = free_port()
    process = ManagedProcess(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={workdir / replica}",
         f"--web.listen-address={LOOPBACK}:{port}", "--enable-feature=expand-external-labels"],
        workdir / f"prometheus-{replica}.log",
        env={**os.environ, "PROMETHEUS_REPLICA": replica},
    )
    url = f"http://{LOOPBACK}:{port}"
    return url, process.start_ready(f"{url}/-/ready")


def test_a_prometheus_pair_and_a_cluster_send_one_notification(
    start_nodes: StartNodes, hook: Receiver, start_bot: StartBot, tmp_path: Path,
) -> None:
    binary = require_binary("prometheus", "/usr/bin/prometheus")
    bot_port = free_port()
    start_bot("ha-bot", prometheus_port=bot_port)
    nodes = start_nodes(clustered=True)
    config = _replica_config(tmp_path, f"{LOOPBACK}:{bot_port}", nodes)
    replicas = [_start_replica(binary, tmp_path, config, name) for name in ("a", "b")]
    try:
        for (url, _), name in zip(replicas, ("a", "b"), strict=True):
            # the external label is expanded per replica (federation shows it)
            wait_until(lambda url=url: 'up{' in httpx.get(
                f"{url}/federate", params={"match[]": "up"}, timeout=10).text, timeout=30)
            text = httpx.get(f"{url}/federate", params={"match[]": "up"}, timeout=10).text
            assert f'replica="{name}"' in text, text
        # both replicas deliver the alert to both nodes, which hold one alert each
        wait_until(lambda: all(n.metric("alertmanager_alerts_received_total") >= 2
                               for n in nodes), timeout=30)
        for node in nodes:
            [alert] = node.alerts()
            assert alert["labels"]["alertname"] == "bot_scraped"
            assert "replica" not in alert["labels"]
        wait_until(lambda: bodies(hook, "slack"), timeout=30)
        wait_until(_decided(nodes, receivers=1), timeout=30)
        _settle_after_decision()
        [message] = bodies(hook, "slack")  # warning goes to Slack only
        [alert] = message["alerts"]
        assert alert["labels"]["instance"] == f"{LOOPBACK}:{bot_port}"
        assert "replica" not in alert["labels"]
        assert bodies(hook, "telegram") == [] and bodies(hook, "webhook") == []
    finally:
        for _, process in replicas:
            process.stop()
