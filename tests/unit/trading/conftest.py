"""Fixtures for the trade-instrumentation tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from otel_botmon.instrument import _values


@pytest.fixture(autouse=True)
def _fresh_warnings() -> Iterator[None]:
    """Each test sees the 'warned once' bookkeeping from scratch."""
    _values.reset_warnings()
    yield
    _values.reset_warnings()
