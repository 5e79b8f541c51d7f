"""The database check against a real InfluxDB: healthy, critical when stopped, healthy again."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from otel_botmon.conventions import HEALTH_STATUS
from otel_botmon.observe.checks import InfluxDBCheck
from otel_botmon.observe.health import HealthChecker, HealthStatus

pytestmark = pytest.mark.integration

INTERVAL_S = 0.5


async def test_influxdb_outage_and_recovery(
    influxdb: Any, telemetry: Any, eventually: Any
) -> None:
    check = InfluxDBCheck(influxdb.url, request_timeout_s=2.0)
    checker = HealthChecker()
    component = checker.register_health_check("influxdb-under-test", check, interval_s=INTERVAL_S)

    def status() -> HealthStatus:
        return component.status

    await checker.start()
    try:
        await eventually(lambda: status() is HealthStatus.HEALTHY, timeout=5)
        assert telemetry.metric_point(
            HEALTH_STATUS.name, health_component="influxdb-under-test"
        ).value == 0
        assert "answered /ping" in checker.get_component_health("influxdb-under-test").message

        await asyncio.to_thread(influxdb.stop)
        took = await eventually(lambda: status() is HealthStatus.CRITICAL, timeout=5)
        # Within one interval, plus slack for a loaded CI machine.
        assert took <= INTERVAL_S + 0.5, f"critical only after {took:.2f} s"
        message = checker.get_component_health("influxdb-under-test").message
        assert f"InfluxDB at {influxdb.url} did not answer /ping" in message
        assert "Connection refused" in message
        assert telemetry.metric_point(
            HEALTH_STATUS.name, health_component="influxdb-under-test"
        ).value == 2

        await asyncio.to_thread(influxdb.start)  # same port
        await eventually(lambda: status() is HealthStatus.HEALTHY, timeout=10)
        assert telemetry.metric_point(
            HEALTH_STATUS.name, health_component="influxdb-under-test"
        ).value == 0
    finally:
        await checker.stop()
        check.close()


async def test_influxdb_check_never_shows_the_token(influxdb: Any) -> None:
    check = InfluxDBCheck(influxdb.url, token="user:s3cr3t-token-value")
    influxdb.stop()

    result = await check(None)  # type: ignore[arg-type]

    assert result["status"] is HealthStatus.CRITICAL
    assert "s3cr3t" not in result["message"]
    assert "s3cr3t" not in repr(check)
    check.close()
