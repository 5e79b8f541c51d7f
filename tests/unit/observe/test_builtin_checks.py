"""Built-in checks that need no server: the trading-engine heartbeat and system resources."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import pytest

from otel_botmon.observe.checks import SystemResourcesCheck, TradingEngineCheck
from otel_botmon.observe.health import HealthChecker, HealthStatus
from otel_botmon.observe.host import HostObserver, HostSample


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


async def verdict(check: Any) -> dict[str, Any]:
    result: dict[str, Any] = await check(None)
    return result


# --- trading engine heartbeat ---------------------------------------------------------


async def test_heartbeat_goes_stale_under_a_controlled_clock() -> None:
    clock = FakeClock()
    engine = TradingEngineCheck(max_age_s=60, clock=clock)
    engine.heartbeat()

    clock.advance(10)
    assert (await verdict(engine))["status"] is HealthStatus.HEALTHY
    clock.advance(25)  # 35 s: beyond half the limit
    late = await verdict(engine)
    assert late["status"] is HealthStatus.DEGRADED
    assert late["message"] == "trading engine heartbeat is late: 35.0 s old (limit 60 s)"
    clock.advance(30)  # 65 s
    stale = await verdict(engine)
    assert stale["status"] is HealthStatus.CRITICAL
    assert stale["message"] == "trading engine heartbeat is stale: 65.0 s old (limit 60 s)"
    assert stale["metrics"] == {"heartbeat_age_s": 65.0, "heartbeats": 1}

    engine.heartbeat()
    assert (await verdict(engine))["status"] is HealthStatus.HEALTHY


async def test_no_heartbeat_at_all_turns_critical_after_max_age() -> None:
    clock = FakeClock()
    engine = TradingEngineCheck(max_age_s=30, clock=clock)

    assert (await verdict(engine))["status"] is HealthStatus.UNKNOWN
    clock.advance(31)
    silent = await verdict(engine)
    assert silent["status"] is HealthStatus.CRITICAL
    assert "no heartbeat from the trading engine in 31 s" in silent["message"]


async def test_heartbeat_check_through_the_checker_gauge(telemetry: Any) -> None:
    clock = FakeClock()
    engine = TradingEngineCheck(max_age_s=5, clock=clock)
    checker = HealthChecker()
    checker.register_health_check("heartbeat-under-test", engine)
    engine.heartbeat()
    clock.advance(6)

    await checker.force_check()

    assert telemetry.metric_point(
        "botmon.health.status", health_component="heartbeat-under-test"
    ).value == 2


@pytest.mark.parametrize("bad", [0, -1, math.nan])
def test_heartbeat_max_age_must_be_positive(bad: float) -> None:
    with pytest.raises(ValueError, match="max_age_s"):
        TradingEngineCheck(max_age_s=bad)


# --- system resources -----------------------------------------------------------------


def sample(cpu: float = 10.0, memory: float = 20.0, **disks: float) -> HostSample:
    return HostSample(
        taken_at=datetime.now(UTC), monotonic=0.0, cpu_percent=cpu,
        memory_percent=memory, disk_percent={"/" + k if k != "root" else "/": v
                                             for k, v in (disks or {"root": 30.0}).items()},
        network_bytes_sent=0, network_bytes_received=0, process_cpu_percent=1.0,
        process_memory_bytes=1,
    )


@pytest.mark.parametrize(
    ("reading", "expected", "text"),
    [
        (sample(), HealthStatus.HEALTHY, "cpu 10%, memory 20%, disk / 30%"),
        (sample(cpu=80), HealthStatus.DEGRADED, "cpu 80.0% > warning 75%"),
        (sample(cpu=91), HealthStatus.CRITICAL, "cpu 91.0% > critical 90%"),
        (sample(memory=85), HealthStatus.DEGRADED, "memory 85.0% > warning 80%"),
        (sample(memory=96), HealthStatus.CRITICAL, "memory 96.0% > critical 95%"),
        (sample(root=30, data=88), HealthStatus.DEGRADED, "disk /data 88.0% > warning 85%"),
        (sample(root=97), HealthStatus.CRITICAL, "disk / 97.0% > critical 95%"),
    ],
)
def test_system_resources_use_the_seed_thresholds(
    reading: HostSample, expected: HealthStatus, text: str
) -> None:
    result = SystemResourcesCheck().evaluate(reading)

    assert result["status"] is expected
    assert text in result["message"]


def test_system_resources_worst_level_wins() -> None:
    result = SystemResourcesCheck().evaluate(sample(cpu=80, memory=99))

    assert result["status"] is HealthStatus.CRITICAL
    assert result["message"] == "cpu 80.0% > warning 75%; memory 99.0% > critical 95%"


def test_system_resources_custom_thresholds() -> None:
    check = SystemResourcesCheck(cpu_warning=5, cpu_critical=50)

    assert check.evaluate(sample(cpu=10))["status"] is HealthStatus.DEGRADED


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"cpu_warning": 95.0}, r"cpu_warning \(95.0\) must be below cpu_critical"),
        ({"memory_critical": 120.0}, "memory_critical must be a percentage"),
        ({"disk_warning": -5.0}, "disk_warning must be a finite number > 0"),
        ({"cpu_critical": math.inf}, "cpu_critical"),
    ],
)
def test_system_resources_invalid_thresholds(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SystemResourcesCheck(**kwargs)


async def test_system_resources_reads_the_shared_observer_sample() -> None:
    observer = HostObserver(interval_s=60)
    shared = observer.latest()

    result = await verdict(SystemResourcesCheck(observer=observer))

    assert result["metrics"]["cpu_percent"] == shared.cpu_percent
    assert result["metrics"]["memory_percent"] == shared.memory_percent
