"""Fixtures for the notify unit tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from otel_botmon import redaction
from tests.unit.notify.fakes import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(autouse=True)
def _forget_secrets() -> Iterator[None]:
    yield
    redaction.forget_secrets()
