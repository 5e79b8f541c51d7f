"""Fixtures for the exchange, httpx and redaction tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from otel_botmon import redaction
from otel_botmon.instrument import _values
from otel_botmon.instrument.httpx import uninstrument_httpx
from tests.integration.otlp.fake_exchange import FakeExchange


@pytest.fixture(autouse=True)
def _isolated_state() -> Iterator[None]:
    """Fresh warn-once bookkeeping, no registered secrets, httpx left uninstrumented."""
    _values.reset_warnings()
    saved = redaction._secrets, redaction._secret_pattern, redaction._extra_keys
    redaction.forget_secrets()
    yield
    uninstrument_httpx()
    # Put back what other parts of the suite registered (e.g. notification secrets).
    redaction.forget_secrets()
    redaction._secrets, redaction._secret_pattern, redaction._extra_keys = saved
    _values.reset_warnings()


@pytest.fixture
def exchange_server() -> Iterator[FakeExchange]:
    with FakeExchange() as server:
        yield server


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
