"""Fixtures for the trade-instrumentation tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from otel_botmon.instrument import _values


@pytest.fixture(autouse=True)
def _fresh_warnings() -> Iterator[None]:
    """Each test sees the 'warned once' bookkeeping from scratch."""
    _values.reset_warnings()
    yield
    _values.reset_warnings()


class Metrics:
    """Exact-attribute lookups into the in-memory reader."""

    def __init__(self, telemetry: Any) -> None:
        self._telemetry = telemetry

    def attribute_sets(self, name: str) -> list[dict[str, Any]]:
        return [dict(p.attributes) for p in self._telemetry.points(name)]

    def point(self, name: str, attrs: dict[str, Any]) -> Any:
        """The data point of ``name`` whose attributes are exactly ``attrs``."""
        for p in self._telemetry.points(name):
            if dict(p.attributes) == attrs:
                return p
        raise AssertionError(f"{name}: no point with {attrs}; have {self.attribute_sets(name)}")


@pytest.fixture
def metrics(telemetry: Any) -> Metrics:
    return Metrics(telemetry)
