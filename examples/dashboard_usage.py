"""Guide: Dashboard Usage / Accessing the Dashboard.

The guide's snippet awaits at top level: run it with
``python examples/run_example.py examples/dashboard_usage.py``; the dashboard serves
while the script runs (a minute here).
"""

import asyncio

from otel_botmon import MonitoringDashboard, SystemMonitor

system_monitor = SystemMonitor()
await system_monitor.start()

dashboard = MonitoringDashboard(system_monitor, port=8001)
await dashboard.start()

print("Open http://localhost:8001 in your browser")
await asyncio.sleep(60)
await dashboard.stop()
await system_monitor.stop()
