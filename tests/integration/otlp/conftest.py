"""Fixtures for the OTLP integration tests: receiver, rotel collector, fake exchange."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from otel_botmon import redaction
from otel_botmon.instrument.httpx import uninstrument_httpx
from tests.integration.otlp.fake_exchange import FakeExchange
from tests.otlp_receiver import OtlpReceiver, RotelCollector, rotel_collector


@pytest.fixture(autouse=True)
def _uninstrumented() -> Iterator[None]:
    saved = redaction._secrets, redaction._extra_keys
    yield
    uninstrument_httpx()
    redaction.forget_secrets()
    redaction._secrets, redaction._extra_keys = saved
    redaction._forget_cached()


@pytest.fixture
def otlp_receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as receiver:
        yield receiver


@pytest.fixture
def rotel(otlp_receiver: OtlpReceiver, tmp_path: Path) -> Iterator[RotelCollector]:
    with rotel_collector(otlp_receiver.endpoint, tmp_path / "rotel") as collector:
        yield collector


@pytest.fixture
def exchange_server() -> Iterator[FakeExchange]:
    with FakeExchange() as server:
        yield server


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[
        tuple[OtlpReceiver, RotelCollector]]:
    with OtlpReceiver() as receiver, rotel_collector(
            receiver.endpoint, tmp_path_factory.mktemp("rotel")) as rotel:
        yield receiver, rotel
