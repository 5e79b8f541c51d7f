"""Real Alertmanager servers for the fleet tests: the shipped routing with every receiver
pointed at one local webhook, alone or as a gossip cluster on loopback ports."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.integration.notify.receivers import Receiver
from tests.services import LOOPBACK, ManagedProcess, free_port, require_binary, wait_until

SHIPPED = Path(__file__).resolve().parents[3] / "collector" / "alertmanager.yml"


def alertmanager_binary() -> str:
    """The Alertmanager binary (Debian names it prometheus-alertmanager); skips without."""
    return require_binary("prometheus-alertmanager", "alertmanager")


def shipped_with_webhooks(hook_url: str) -> dict[str, Any]:
    """The shipped routing, grouping and inhibition, with every receiver replaced by a
    webhook to ``hook_url``/<receiver name> and group timers short enough for a test."""
    config: dict[str, Any] = yaml.safe_load(SHIPPED.read_text())
    config.pop("global", None)
    # group_wait: a test posts up to 1,000 alerts at once, and on a loaded machine their
    # ingestion outlasted 200 ms, so a group went out with part of its bots, then again
    config["route"].update(group_wait="1s", group_interval="1s", repeat_interval="1h")
    config["receivers"] = [
        {"name": r["name"], "webhook_configs": [
            {"url": f"{hook_url}/{r['name']}", "send_resolved": False}]}
        for r in config["receivers"]
    ]
    return config


class Alertmanager:
    """One Alertmanager process; ``cluster_port`` is None when it runs alone."""

    def __init__(self, binary: str, workdir: Path, config: dict[str, Any], *,
                 cluster_port: int | None = None, peers: Sequence[int] = (),
                 peer_timeout: str = "15s") -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "data").mkdir(exist_ok=True)
        path = workdir / "alertmanager.yml"
        path.write_text(yaml.safe_dump(config))
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.cluster_port = cluster_port
        cluster = [f"--cluster.listen-address={LOOPBACK}:{cluster_port}" if cluster_port
                   else "--cluster.listen-address="]
        if cluster_port:
            cluster += [f"--cluster.advertise-address={LOOPBACK}:{cluster_port}",
                        f"--cluster.peer-timeout={peer_timeout}",
                        *(f"--cluster.peer={LOOPBACK}:{p}" for p in peers)]
        self.process = ManagedProcess(
            [binary, f"--config.file={path}", f"--storage.path={workdir / 'data'}",
             f"--web.listen-address={LOOPBACK}:{self.port}", *cluster],
            workdir / "alertmanager.log",
        )

    def start(self) -> Alertmanager:
        self.process.start_ready(f"{self.url}/-/ready")
        return self

    def stop(self) -> None:
        self.process.stop()

    def status(self) -> dict[str, Any]:
        response = httpx.get(f"{self.url}/api/v2/status", timeout=10)
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def alerts(self) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.url}/api/v2/alerts", timeout=10)
        response.raise_for_status()
        body: list[dict[str, Any]] = response.json()
        return body

    def metric(self, name: str) -> float:
        """Sum of every series of counter ``name`` on this node's /metrics."""
        text = httpx.get(f"{self.url}/metrics", timeout=10).text
        pattern = re.compile(rf"^{re.escape(name)}(?:\{{[^}}]*\}})? (\S+)$", re.M)
        return sum(float(v) for v in pattern.findall(text))

    def post(self, alerts: list[dict[str, Any]]) -> None:
        """Send ``alerts`` (labels, optional annotations) as firing for the next hour."""
        post_alerts(self.url, alerts)


def post_alerts(url: str, alerts: list[dict[str, Any]]) -> None:
    now = datetime.now(UTC)
    body = [{"labels": a["labels"], "annotations": a.get("annotations", {}),
             "startsAt": now.isoformat(), "endsAt": (now + timedelta(hours=1)).isoformat()}
            for a in alerts]
    httpx.post(f"{url}/api/v2/alerts", json=body, timeout=10).raise_for_status()


def wait_for_cluster(nodes: Sequence[Alertmanager], timeout: float = 60.0) -> None:
    """Return once every node sees all the others and has settled (status "ready")."""
    def formed() -> bool:
        for node in nodes:
            cluster = node.status()["cluster"]
            if cluster.get("status") != "ready" or len(cluster.get("peers") or []) != len(nodes):
                return False
        return True

    wait_until(formed, timeout=timeout, interval=0.2)


def bodies(hook: Receiver, receiver: str) -> list[dict[str, Any]]:
    """The JSON bodies the webhook for ``receiver`` got, in arrival order."""
    return [r.json() for r in list(hook.requests) if r.path == f"/{receiver}"]
