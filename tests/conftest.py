"""Shared fixtures: an isolated, in-memory telemetry pipeline per test (otel_botmon.testing)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Iterator

import pytest

from otel_botmon import _internal
from otel_botmon import telemetry as botmon_telemetry
from otel_botmon.testing import TelemetryCapture, capture

_OTEL_ENV = (
    "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES", "OTEL_METRIC_EXPORT_INTERVAL",
    "OTEL_SDK_DISABLED",
)


@pytest.fixture(autouse=True)
def _clean_otel_environ(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in _OTEL_ENV:
        monkeypatch.delenv(name, raising=False)
    yield
    botmon_telemetry.shutdown(timeout_s=5.0)
    _internal.reset_internal_errors()


@pytest.fixture
def telemetry() -> Iterator[TelemetryCapture]:
    """``otel_botmon.testing``'s capture with the bot identity these tests assert on.

    The same object users get from ``capture_telemetry``; ``metrics`` is another name for
    it in tests that read only metrics.
    """
    with capture("test-bot", bot_name="test", exchange="binance", strategy="unit") as cap:
        yield cap


@pytest.fixture
def metrics(telemetry: TelemetryCapture) -> TelemetryCapture:
    """The same capture as ``telemetry`` (``metric_point``, ``metric_attribute_sets``)."""
    return telemetry


@pytest.fixture
def artifacts_dir() -> str:
    """Where tests keep files worth looking at after a run (screenshots, logs)."""
    path = os.path.join(os.path.dirname(os.path.dirname(__file__)), "test-artifacts")
    os.makedirs(path, exist_ok=True)
    return path


Eventually = Callable[..., Awaitable[float]]


@pytest.fixture
def eventually() -> Eventually:
    """``await eventually(predicate, timeout=...)``: seconds until ``predicate()`` held
    (polling with a deadline instead of sleeping).

    Fails the test with the predicate's name when it does not hold within ``timeout``.
    """

    async def wait(predicate: Callable[[], object], timeout: float = 5.0,
                   interval: float = 0.01) -> float:
        started = time.monotonic()
        while not predicate():
            if time.monotonic() - started > timeout:
                pytest.fail(f"{getattr(predicate, '__name__', predicate)} did not hold "
                            f"within {timeout} s")
            await asyncio.sleep(interval)
        return time.monotonic() - started

    return wait
