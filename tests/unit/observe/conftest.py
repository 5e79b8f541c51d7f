"""Fixtures for the observer tests: polling with a deadline instead of sleeping."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest

Eventually = Callable[..., Awaitable[float]]


@pytest.fixture
def eventually() -> Eventually:
    """``await eventually(predicate, timeout=...)``: seconds until ``predicate()`` held.

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
