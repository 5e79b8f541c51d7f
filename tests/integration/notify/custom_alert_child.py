"""Child process for the SIGKILL test: fire custom alerts back to back until killed.

Usage: python custom_alert_child.py STORE_PATH WEBHOOK_URL
Prints ``READY`` once the monitor runs, then ``CREATED <id>`` after each
``create_custom_alert()`` returned (flushed at once, so the parent knows which calls
completed before the kill).
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
        notification_config=NotificationConfig(console=False, webhook_urls=[url]),
    ))
    await monitor.start()
    print("READY", flush=True)
    i = 0
    while True:
        alert_id = await monitor.create_custom_alert(
            f"alert {i}", "m", AlertSeverity.CRITICAL)
        print("CREATED", alert_id, flush=True)
        i += 1


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
