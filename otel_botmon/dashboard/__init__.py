"""The web dashboard: REST API, WebSocket pushes and a self-contained page.

``MonitoringDashboard`` imports no web framework until ``start()``; the app itself needs
the ``dashboard`` extra (FastAPI and uvicorn).
"""

from otel_botmon.dashboard.server import MonitoringDashboard

__all__ = ["MonitoringDashboard"]
