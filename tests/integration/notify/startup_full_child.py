"""Child process for the start-up test on a full disk: RLIMIT_FSIZE stops file growth.

Usage: python startup_full_child.py STORE_PATH LIMIT
Limits file growth to LIMIT bytes (a real EFBIG on any write past it), starts a monitor
on the store, prints ``STARTED <in memory> <fallback reason>``, raises an alert and
prints ``CREATED`` once it is in effect.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from otel_botmon.alerting.model import AlertSeverity
from otel_botmon.monitor import MonitoringConfig, SystemMonitor
from otel_botmon.notify import NotificationConfig


async def main(store: str, limit: int) -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stdout)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write, not a dead process
    resource.setrlimit(resource.RLIMIT_FSIZE,
                       (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
    monitor = SystemMonitor(MonitoringConfig(
        alert_store_path=store, default_alert_rules=False,
        notification_config=NotificationConfig(console=False,
                                                webhook_urls=["http://127.0.0.1:9/hook"]),
    ))
    store_ = monitor.alert_manager.store
    assert store_ is not None
    print("STARTED", store_.in_memory, store_.fallback_reason, flush=True)
    await monitor.start()
    alert_id = await monitor.create_custom_alert("on a full disk", "m", AlertSeverity.CRITICAL)
    assert monitor.get_alert(alert_id) is not None
    print("CREATED", flush=True)
    await monitor.stop()
    monitor.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
