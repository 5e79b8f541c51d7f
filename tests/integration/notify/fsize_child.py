"""Child process for the full-disk test without root: RLIMIT_FSIZE stops file growth.

Usage: python fsize_child.py STORE_PATH WEBHOOK_URL
Fires "before", then limits file growth to the current size and fires five alerts (their
writes fail: EFBIG), prints ``SPOOLED`` once all five wait in memory, lifts the limit
("space returns"), and prints ``DRAINED`` once everything was delivered.
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


async def main(store: str, url: str) -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stdout)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write, not a dead process
    monitor = SystemMonitor(MonitoringConfig(
        alert_store_path=store, default_alert_rules=False, alert_check_interval=0.1,
        notification_config=NotificationConfig(
            console=False, webhook_urls=[url], retry_initial_delay=0.05, retry_max_delay=0.2),
    ))
    await monitor.start()
    dispatcher = monitor.notification_dispatcher
    assert dispatcher is not None
    await monitor.create_custom_alert("before", "m", AlertSeverity.CRITICAL)
    assert await dispatcher.drain(30)
    sizes = [p.stat().st_size for p in Path(store).parent.glob(Path(store).name + "*")]
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (max(sizes), hard))
    for i in range(5):
        await monitor.create_custom_alert(f"full {i}", "m", AlertSeverity.CRITICAL)
    while len(dispatcher.spool) < 5:
        await asyncio.sleep(0.01)
    print("SPOOLED", len(dispatcher.spool), flush=True)
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert await dispatcher.drain(60)
    print("DRAINED", flush=True)
    await monitor.stop()
    monitor.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
