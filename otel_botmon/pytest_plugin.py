"""otel_botmon's pytest plugin: the ``capture_telemetry`` fixture.

Registered through the ``pytest11`` entry point, so installing otel_botmon is enough;
with plugin auto-loading disabled, add ``-p otel_botmon.pytest_plugin``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from otel_botmon.testing import TelemetryCapture

__all__ = ["capture_telemetry"]


@pytest.fixture
def capture_telemetry() -> Iterator[TelemetryCapture]:
    """otel_botmon spans and metrics recorded during the test, kept in memory."""
    from otel_botmon.testing import capture  # imported when a test asks for it

    with capture() as captured:
        yield captured
