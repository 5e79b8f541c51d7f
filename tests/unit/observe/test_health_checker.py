"""HealthChecker: the seed's API, concurrency, bad input and the health gauges."""

from __future__ import annotations

import asyncio
import gc
import math
import time
from typing import Any

import pytest

from otel_botmon.conventions import HEALTH_CHECK_DURATION, HEALTH_STATUS
from otel_botmon.observe.health import (
    HealthChecker,
    HealthComponent,
    HealthStatus,
    parse_check_result,
)


def healthy(message: str = "ok", **metrics: Any) -> dict[str, Any]:
    return {"status": HealthStatus.HEALTHY, "message": message, "metrics": metrics}


async def test_seed_example_registers_and_reports_healthy() -> None:
    health_checker = HealthChecker()

    async def check_component_status() -> bool:
        return True

    async def check_custom_component(component: HealthComponent) -> dict[str, Any]:
        """Custom health check function."""
        try:
            is_healthy = await check_component_status()
            if is_healthy:
                return {
                    "status": HealthStatus.HEALTHY,
                    "message": "Component is operating normally",
                    "metrics": {"response_time": 150},
                }
            return {"status": HealthStatus.CRITICAL, "message": "Component is not responding"}
        except Exception as e:
            return {"status": HealthStatus.CRITICAL, "message": f"Health check failed: {e!s}"}

    health_checker.register_health_check("my_component", check_custom_component)
    results = await health_checker.force_check()

    result = results["my_component"]
    assert result.status is HealthStatus.HEALTHY
    assert result.message == "Component is operating normally"
    assert result.metrics == {"response_time": 150}
    assert health_checker.get_component_health("my_component") == result
    assert health_checker.overall_status() is HealthStatus.HEALTHY


async def test_check_function_receives_its_component() -> None:
    seen: list[HealthComponent] = []

    async def check(component: HealthComponent) -> dict[str, Any]:
        seen.append(component)
        return healthy(f"run {len(component.history) + 1}")

    checker = HealthChecker()
    registered = checker.register_health_check("db", check, interval_s=7.0, timeout_s=2.0)
    await checker.force_check()
    await checker.force_check()

    assert seen == [registered, registered]
    assert (registered.name, registered.interval_s, registered.timeout_s) == ("db", 7.0, 2.0)
    assert registered.last_result is not None
    assert registered.last_result.message == "run 2"


async def test_history_is_bounded_and_oldest_first() -> None:
    runs = 0

    async def check(component: HealthComponent) -> dict[str, Any]:
        nonlocal runs
        runs += 1
        return healthy(f"run {runs}")

    checker = HealthChecker(history_size=3)
    checker.register_health_check("c", check)
    for _ in range(5):
        await checker.run_check("c")

    assert [r.message for r in checker.get_history("c")] == ["run 3", "run 4", "run 5"]


async def test_not_yet_checked_is_unknown() -> None:
    async def check(component: HealthComponent) -> dict[str, Any]:
        return healthy()

    checker = HealthChecker()
    checker.register_health_check("later", check)

    assert checker.get_component_health("later").status is HealthStatus.UNKNOWN
    assert checker.get_all_health()["later"].message == "not checked yet"
    assert checker.overall_status() is HealthStatus.UNKNOWN


def test_overall_status_is_the_worst_component() -> None:
    assert HealthStatus.worst([HealthStatus.HEALTHY, HealthStatus.DEGRADED]) is (
        HealthStatus.DEGRADED)
    assert HealthStatus.worst([HealthStatus.CRITICAL, HealthStatus.UNKNOWN]) is (
        HealthStatus.CRITICAL)
    assert HealthStatus.worst([HealthStatus.HEALTHY, HealthStatus.UNKNOWN]) is (
        HealthStatus.UNKNOWN)
    assert HealthChecker().overall_status() is HealthStatus.UNKNOWN


def test_unknown_component_error_names_the_registered_ones() -> None:
    async def check(component: HealthComponent) -> dict[str, Any]:
        return healthy()

    checker = HealthChecker()
    checker.register_health_check("api", check)
    with pytest.raises(KeyError, match=r"'nope'.*registered: api"):
        checker.get_component_health("nope")


# --- bad input at registration and construction ---------------------------------------


def test_duplicate_name_is_rejected() -> None:
    async def check(component: HealthComponent) -> dict[str, Any]:
        return healthy()

    checker = HealthChecker()
    checker.register_health_check("api", check)
    with pytest.raises(ValueError, match="'api' is already registered"):
        checker.register_health_check("api", check)


def test_sync_function_is_rejected() -> None:
    def check(component: HealthComponent) -> dict[str, Any]:
        return healthy()

    with pytest.raises(TypeError, match="'sync' must be an async function"):
        HealthChecker().register_health_check("sync", check)  # type: ignore[arg-type]


def test_object_with_async_call_is_accepted() -> None:
    class Check:
        async def __call__(self, component: HealthComponent) -> dict[str, Any]:
            return healthy()

    HealthChecker().register_health_check("obj", Check())


@pytest.mark.parametrize("name", ["", "   ", None])
def test_empty_name_is_rejected(name: Any) -> None:
    async def check(component: HealthComponent) -> dict[str, Any]:
        return healthy()

    with pytest.raises(ValueError, match="non-empty string"):
        HealthChecker().register_health_check(name, check)


@pytest.mark.parametrize("bad", [0, -1.0, math.nan, math.inf])
def test_invalid_intervals_are_rejected(bad: float) -> None:
    async def check(component: HealthComponent) -> dict[str, Any]:
        return healthy()

    with pytest.raises(ValueError, match="interval_s"):
        HealthChecker(default_interval_s=bad)
    with pytest.raises(ValueError, match="timeout_s"):
        HealthChecker(default_timeout_s=bad)
    with pytest.raises(ValueError, match="interval_s of 'x'"):
        HealthChecker().register_health_check("x", check, interval_s=bad)
    with pytest.raises(ValueError, match="timeout_s of 'x'"):
        HealthChecker().register_health_check("x", check, timeout_s=bad)


def test_invalid_history_size_is_rejected() -> None:
    with pytest.raises(ValueError, match="history_size"):
        HealthChecker(history_size=0)


# --- faults inside checks -------------------------------------------------------------


async def test_raising_check_is_critical_with_the_reason() -> None:
    async def check(component: HealthComponent) -> dict[str, Any]:
        raise ConnectionError("exchange refused")

    checker = HealthChecker()
    checker.register_health_check("api", check)
    result = await checker.run_check("api")

    assert result.status is HealthStatus.CRITICAL
    assert result.message == "check 'api' raised ConnectionError: exchange refused"


async def test_secrets_in_exception_text_are_redacted() -> None:
    async def check(component: HealthComponent) -> dict[str, Any]:
        raise RuntimeError("GET https://api.x.com/order?signature=deadbeef01 failed")

    checker = HealthChecker()
    checker.register_health_check("api", check)
    result = await checker.run_check("api")

    assert "deadbeef01" not in result.message
    assert "REDACTED" in result.message


@pytest.mark.parametrize(
    ("returned", "why"),
    [
        (None, "expected a dict with 'status', got NoneType"),
        ({"message": "hi"}, "'status' is missing"),
        ({"status": "splendid"}, "'status' 'splendid' is not a HealthStatus"),
        ({"status": HealthStatus.HEALTHY, "message": 42}, "'message' must be a str"),
        ({"status": HealthStatus.HEALTHY, "metrics": [1]}, "'metrics' must be a dict"),
    ],
)
async def test_malformed_result_is_critical_saying_what(returned: Any, why: str) -> None:
    async def check(component: HealthComponent) -> Any:
        return returned

    checker = HealthChecker()
    checker.register_health_check("odd", check)
    result = await checker.run_check("odd")

    assert result.status is HealthStatus.CRITICAL
    assert result.message.startswith("check 'odd' returned a malformed result: ")
    assert why in result.message


def test_status_strings_and_bare_statuses_are_accepted() -> None:
    assert parse_check_result("c", {"status": "DEGRADED"})[0] is HealthStatus.DEGRADED
    assert parse_check_result("c", {"status": "healthy"})[0] is HealthStatus.HEALTHY
    assert parse_check_result("c", HealthStatus.CRITICAL)[0] is HealthStatus.CRITICAL


async def test_hanging_check_times_out_without_delaying_the_others() -> None:
    async def hangs(component: HealthComponent) -> dict[str, Any]:
        await asyncio.sleep(60)
        return healthy()

    async def quick(component: HealthComponent) -> dict[str, Any]:
        return healthy()

    checker = HealthChecker()
    checker.register_health_check("hangs", hangs, timeout_s=0.2)
    checker.register_health_check("quick", quick)
    started = time.monotonic()
    results = await checker.force_check()
    elapsed = time.monotonic() - started

    assert results["hangs"].status is HealthStatus.CRITICAL
    assert results["hangs"].message == "check 'hangs' timed out after 0.2 s"
    assert results["quick"].status is HealthStatus.HEALTHY
    assert results["quick"].duration_s < 0.2  # did not wait for the hanging one
    assert elapsed < 1.5


async def test_check_that_ignores_cancellation_is_not_started_twice() -> None:
    release = asyncio.Event()
    starts = 0

    async def stubborn(component: HealthComponent) -> dict[str, Any]:
        nonlocal starts
        starts += 1
        while not release.is_set():
            try:
                await release.wait()
            except asyncio.CancelledError:
                continue  # misbehaves on purpose
        return healthy()

    checker = HealthChecker()
    checker.register_health_check("stubborn", stubborn, timeout_s=0.05)
    first = await checker.run_check("stubborn")
    second = await checker.run_check("stubborn")
    release.set()
    await asyncio.sleep(0)

    assert "timed out after 0.05 s" in first.message
    assert second.status is HealthStatus.CRITICAL
    assert "still hanging" in second.message
    assert starts == 1


# --- running in the background --------------------------------------------------------


async def test_checks_run_on_their_own_intervals_concurrently(eventually: Any) -> None:
    slow_runs = fast_runs = 0

    async def slow(component: HealthComponent) -> dict[str, Any]:
        nonlocal slow_runs
        slow_runs += 1
        await asyncio.sleep(3.0)
        return healthy()

    async def fast(component: HealthComponent) -> dict[str, Any]:
        nonlocal fast_runs
        fast_runs += 1
        return healthy()

    checker = HealthChecker()
    checker.register_health_check("slow", slow, interval_s=0.05, timeout_s=5.0)
    checker.register_health_check("fast", fast, interval_s=0.05)
    await checker.start()
    try:
        await eventually(lambda: fast_runs >= 5, timeout=2.5)
        assert slow_runs == 1
        assert checker.get_component_health("slow").status is HealthStatus.UNKNOWN
    finally:
        await checker.stop()
    assert not checker.running


async def test_stop_cancels_running_checks_and_keeps_results(eventually: Any) -> None:
    cancelled = asyncio.Event()
    ran = asyncio.Event()

    async def quick(component: HealthComponent) -> dict[str, Any]:
        ran.set()
        return healthy()

    async def hangs(component: HealthComponent) -> dict[str, Any]:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return healthy()

    checker = HealthChecker()
    checker.register_health_check("quick", quick, interval_s=10)
    checker.register_health_check("hangs", hangs, interval_s=10, timeout_s=30)
    await checker.start()
    await asyncio.wait_for(ran.wait(), 5)
    await checker.stop()

    await asyncio.wait_for(cancelled.wait(), 1)
    assert checker.get_component_health("quick").status is HealthStatus.HEALTHY


async def test_check_registered_while_running_starts_at_once(eventually: Any) -> None:
    async def quick(component: HealthComponent) -> dict[str, Any]:
        return healthy()

    checker = HealthChecker()
    await checker.start()
    try:
        checker.register_health_check("late", quick, interval_s=60)
        await eventually(lambda: checker.get_component_health("late").status
                         is HealthStatus.HEALTHY, timeout=2)
    finally:
        await checker.stop()


async def test_unregister_stops_and_forgets_the_check() -> None:
    async def quick(component: HealthComponent) -> dict[str, Any]:
        return healthy()

    checker = HealthChecker()
    checker.register_health_check("gone", quick)
    await checker.start()
    assert checker.unregister_health_check("gone") is True
    assert checker.unregister_health_check("gone") is False
    await checker.stop()
    assert checker.get_all_health() == {}


async def test_force_check_while_a_run_is_in_flight_shares_it() -> None:
    started = asyncio.Event()
    release = asyncio.Event()
    runs = 0

    async def check(component: HealthComponent) -> dict[str, Any]:
        nonlocal runs
        runs += 1
        started.set()
        await release.wait()
        return healthy(f"run {runs}")

    checker = HealthChecker()
    checker.register_health_check("c", check)
    first = asyncio.ensure_future(checker.run_check("c"))
    await started.wait()
    forced = asyncio.ensure_future(checker.force_check())
    await asyncio.sleep(0)
    release.set()

    assert (await first).message == "run 1"
    assert (await forced)["c"].message == "run 1"
    assert runs == 1


# --- metrics --------------------------------------------------------------------------


async def test_status_gauge_and_duration_histogram(telemetry: Any) -> None:
    async def ok(component: HealthComponent) -> dict[str, Any]:
        return healthy()

    async def slowish(component: HealthComponent) -> dict[str, Any]:
        return {"status": HealthStatus.DEGRADED, "message": "slow"}

    async def broken(component: HealthComponent) -> dict[str, Any]:
        raise RuntimeError("down")

    async def pending(component: HealthComponent) -> dict[str, Any]:
        return healthy()

    checker = HealthChecker()
    for name, check in (("g-ok", ok), ("g-slowish", slowish), ("g-broken", broken)):
        checker.register_health_check(name, check)
    await checker.force_check()
    checker.register_health_check("g-pending", pending)

    metrics = telemetry.metrics()
    mine = ("g-ok", "g-slowish", "g-broken", "g-pending")  # other live checkers may report too
    values = {p.attributes["health.component"]: p.value
              for p in metrics[HEALTH_STATUS.name].data.data_points}
    assert {name: values.get(name) for name in mine} == (
        {"g-ok": 0, "g-slowish": 1, "g-broken": 2, "g-pending": 3})
    durations = {p.attributes["health.component"]: p.count
                 for p in metrics[HEALTH_CHECK_DURATION.name].data.data_points}
    assert {name: durations.get(name) for name in mine} == (
        {"g-ok": 1, "g-slowish": 1, "g-broken": 1, "g-pending": None})


async def test_two_checkers_both_report_status(telemetry: Any) -> None:
    async def ok(component: HealthComponent) -> dict[str, Any]:
        return healthy()

    first, second = HealthChecker(), HealthChecker()
    first.register_health_check("first-a", ok)
    second.register_health_check("second-b", ok)
    await first.force_check()
    await second.force_check()

    assert telemetry.metric_point(HEALTH_STATUS.name, health_component="first-a").value == 0
    assert telemetry.metric_point(HEALTH_STATUS.name, health_component="second-b").value == 0


async def test_check_blocking_the_event_loop_past_its_timeout_is_critical() -> None:
    async def blocks(component: HealthComponent) -> dict[str, Any]:
        time.sleep(0.3)  # a synchronous call inside an async check
        return healthy()

    checker = HealthChecker()
    checker.register_health_check("blocks", blocks, timeout_s=0.1)
    result = await checker.run_check("blocks")

    assert result.status is HealthStatus.CRITICAL
    assert "past its 0.1 s timeout, blocking the event loop" in result.message


def test_status_prints_as_its_value() -> None:
    assert f"Overall health: {HealthStatus.DEGRADED}" == "Overall health: degraded"
    assert HealthStatus.CRITICAL.gauge_value == 2


async def test_a_discarded_checker_stops_reporting(telemetry: Any) -> None:
    async def ok(component: HealthComponent) -> dict[str, Any]:
        return healthy()

    checker = HealthChecker()
    checker.register_health_check("discarded-one", ok)
    await checker.force_check()
    assert telemetry.metric_point(HEALTH_STATUS.name, health_component="discarded-one").value == 0

    del checker
    gc.collect()

    assert telemetry.metric_points(HEALTH_STATUS.name, health_component="discarded-one") == []
