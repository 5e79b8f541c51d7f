"""Child process for the SIGKILL test of manual actions: fire, acknowledge and resolve
custom alerts back to back until killed.

Usage: python ack_resolve_child.py STORE_PATH WEBHOOK_URL
Prints ``FIRED <id>``, ``ACKED <id>`` and ``RESOLVED <id>`` once each call returned.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from otel_botmon.alerting.model import AlertSeverity
from otel_botmon.monitor import MonitoringConfig, SystemMonitor
from otel_botmon.notify import NotificationConfig


async def main(store: str, url: str) -> None:
    monitor = SystemMonitor(MonitoringConfig(
        alert_store_path=store, default_alert_rules=False, alert_check_interval=0.05,
        notification_config=NotificationConfig(console=False, webhook_urls=[url],
                                               storm_threshold=100_000),
    ))
    await monitor.start()
    manager = monitor.alert_manager
    print("READY", flush=True)
    i = 0
    while True:
        alert_id = await manager.create_custom_alert(f"alert {i}", "m", AlertSeverity.CRITICAL)
        print("FIRED", alert_id, flush=True)
        assert await manager.acknowledge_alert(alert_id, "ops")
        print("ACKED", alert_id, flush=True)
        assert await manager.resolve_alert(alert_id, "ops")
        print("RESOLVED", alert_id, flush=True)
        i += 1


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
