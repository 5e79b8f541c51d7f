import asyncio, sqlite3, sys
from otel_botmon.alerting.model import AlertSeverity
from otel_botmon.monitor import MonitoringConfig, SystemMonitor
from otel_botmon.notify import NotificationConfig
async def main(store):
    # receiver unreachable: rows stay pending
    m = SystemMonitor(MonitoringConfig(alert_store_path=store, default_alert_rules=False,
        notification_config=NotificationConfig(console=False, webhook_urls=["http://127.0.0.1:9/x"],
        storm_threshold=10**5, group_wait=0)))
    m.alert_manager.evaluator._gate.max_per_minute = 10**9
    await m.start()
    for i in range(30):
        await m.create_custom_alert(f"pre{i}", "m", AlertSeverity.CRITICAL)
    await m.stop(); m.close()
asyncio.run(main(sys.argv[1]))
c = sqlite3.connect(sys.argv[1]); c.execute("pragma wal_checkpoint(TRUNCATE)"); c.close()
