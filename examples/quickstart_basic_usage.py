"""Guide: Quick Start / Basic Usage (runs for an hour; Ctrl+C to stop)."""
# ruff: noqa: I001, W293  (the guide's snippet, kept verbatim)

import asyncio
from otel_botmon import SystemMonitor, MonitoringConfig, NotificationConfig

# Configure monitoring
config = MonitoringConfig(
    health_check_interval=30.0,
    metrics_collection_interval=5.0,
    notification_config=NotificationConfig(
        email_from="bot@yourcompany.com",
        email_to=["admin@yourcompany.com"]
    )
)

# Initialize system monitor
system_monitor = SystemMonitor(config)

async def main():
    # Start monitoring
    await system_monitor.start()
    
    # Your application code here
    await asyncio.sleep(3600)  # Run for 1 hour
    
    # Stop monitoring
    await system_monitor.stop()

asyncio.run(main())
