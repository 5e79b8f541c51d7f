"""A SystemMonitor and its dashboard served from a background event loop.

Selenium and blocking HTTP clients need the server to run while the test thread
blocks, so the monitor and the dashboard live in their own thread and loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from otel_botmon.dashboard.server import MonitoringDashboard
from otel_botmon.monitor import MonitoringConfig, SystemMonitor

T = TypeVar("T")


class LiveDashboard:
    """Start with ``with LiveDashboard(...) as live:``; ``live.url`` is the base URL."""

    def __init__(
        self, config: MonitoringConfig | None = None, access_token: str | None = None,
        push_interval_s: float = 0.5, start_monitor: bool = True,
        **dashboard_options: Any,
    ) -> None:
        self.config = config or MonitoringConfig(
            metrics_collection_interval=0.5, alert_check_interval=0.5,
            health_check_interval=5.0,
        )
        self.access_token = access_token
        self.push_interval_s = push_interval_s
        self.start_monitor = start_monitor
        self.dashboard_options = dashboard_options
        """Extra ``MonitoringDashboard`` arguments (``allowed_hosts=...``)."""
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.monitor: SystemMonitor
        self.dashboard: MonitoringDashboard

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run ``coro`` on the server's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.dashboard.port}"

    def __enter__(self) -> LiveDashboard:
        self._thread.start()

        async def start() -> None:
            self.monitor = SystemMonitor(self.config)
            self.dashboard = MonitoringDashboard(
                self.monitor, port=0, access_token=self.access_token,
                push_interval_s=self.push_interval_s, **self.dashboard_options,
            )
            if self.start_monitor:
                await self.monitor.start()
            await self.dashboard.start()

        self.call(start())
        return self

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            await self.dashboard.stop()
            await self.monitor.stop()
            self.monitor.close()

        try:
            self.call(stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            self.loop.close()
