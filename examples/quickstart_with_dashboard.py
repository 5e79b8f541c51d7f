"""Guide: Quick Start / With Dashboard.

As in the guide, ``main()`` returns right after starting, so the dashboard stops when
the script ends; keep the loop running (e.g. ``await asyncio.Event().wait()``) to use it.
"""
# ruff: noqa: I001  (the guide's snippet, kept verbatim)

import asyncio

from otel_botmon import SystemMonitor, MonitoringDashboard

# Initialize monitoring
system_monitor = SystemMonitor()
dashboard = MonitoringDashboard(system_monitor, port=8001)

async def main():
    await system_monitor.start()
    await dashboard.start()  # Dashboard at http://localhost:8001

asyncio.run(main())
