"""Fixtures: a running SystemMonitor with its dashboard on a free loopback port."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from otel_botmon.dashboard.server import MonitoringDashboard
from otel_botmon.monitor import MonitoringConfig, SystemMonitor

TOKEN = "s3cret-dashboard-token"


@dataclass
class Live:
    monitor: SystemMonitor
    dashboard: MonitoringDashboard
    client: httpx.AsyncClient

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.dashboard.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.dashboard.port}/ws"


def fast_config() -> MonitoringConfig:
    return MonitoringConfig(
        metrics_collection_interval=0.2, alert_check_interval=0.2, health_check_interval=5.0,
        default_alert_rules=False,  # a busy CI host would fire the CPU rules
    )


async def _live(token: str | None) -> AsyncIterator[Live]:
    monitor = SystemMonitor(fast_config())
    dashboard = MonitoringDashboard(monitor, port=0, access_token=token, push_interval_s=0.2)
    await monitor.start()
    await dashboard.start()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{dashboard.port}") as client:
        yield Live(monitor, dashboard, client)
    await dashboard.stop()
    await monitor.stop()
    monitor.close()


@pytest.fixture
async def live() -> AsyncIterator[Live]:
    """An open dashboard (no access token)."""
    async for item in _live(None):
        yield item


@pytest.fixture
async def live_token() -> AsyncIterator[Live]:
    """A dashboard that requires ``TOKEN`` for mutations and the WebSocket."""
    async for item in _live(TOKEN):
        yield item
