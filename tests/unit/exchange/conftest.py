"""Fixtures for the exchange, httpx and redaction tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from otel_botmon import redaction
from otel_botmon.instrument import _http, _values
from otel_botmon.instrument.httpx import uninstrument_httpx
from tests.integration.otlp.fake_exchange import FakeExchange


@pytest.fixture(autouse=True)
def _isolated_state() -> Iterator[None]:
    """Fresh warn-once bookkeeping, no registered secrets, httpx left uninstrumented."""
    _values.reset_warnings()
    _http._remembered.clear()
    saved = redaction._secrets, redaction._extra_keys
    redaction.forget_secrets()
    yield
    uninstrument_httpx()
    # Put back what other parts of the suite registered (e.g. notification secrets).
    redaction.forget_secrets()
    redaction._secrets, redaction._extra_keys = saved
    redaction._forget_cached()
    _values.reset_warnings()


@pytest.fixture
def exchange_server() -> Iterator[FakeExchange]:
    with FakeExchange() as server:
        yield server
