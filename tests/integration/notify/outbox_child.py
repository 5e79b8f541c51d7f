"""Child process for the crash test: raise alerts, start delivering, wait to be killed.

Usage: python outbox_child.py OUTBOX_PATH WEBHOOK_URL COUNT
The alerts go through the alert listener on the running loop (the evaluator's path:
committed together right after the "cycle"); prints ``QUEUED`` once they are committed.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from otel_botmon.alerting.model import (
    Alert,
    AlertEvent,
    AlertEventKind,
    AlertSeverity,
    AlertType,
    NotificationChannel,
)
from otel_botmon.notify import NotificationConfig, NotificationDispatcher


async def main(outbox: str, url: str, count: int) -> None:
    config = NotificationConfig(console=False, webhook_urls=[url], outbox_path=outbox,
                                retry_initial_delay=0.05, retry_max_delay=0.2,
                                storm_threshold=1000)
    dispatcher = NotificationDispatcher(config)
    await dispatcher.start()
    for i in range(count):  # one evaluation cycle
        alert = Alert.new(rule_name="crash", title=f"alert {i}", message="", labels={"i": str(i)},
                          severity=AlertSeverity.CRITICAL, alert_type=AlertType.SYSTEM,
                          started_at=1.0, channels=[NotificationChannel.WEBHOOK])
        alert.id = f"a{i:03d}"
        dispatcher.on_alert_event(alert, AlertEvent(alert.id, AlertEventKind.FIRED, at=2.0))
    await asyncio.sleep(0)  # the cycle returns to the loop: the group commit starts
    while len(dispatcher.outbox.items()) < count:  # ... and ends on the committer thread
        await asyncio.sleep(0.005)
    print("QUEUED", dispatcher.outbox.pending_count(), flush=True)
    while True:  # until SIGKILL; the log helps when the test fails
        await asyncio.sleep(1.0)
        for record in dispatcher.attempts()[-3:]:
            print("attempt", record.alert_id, record.outcome, record.detail, flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
