"""The InfluxDB exporter batches, retries, bounds its buffer and never blocks export()."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    InMemoryMetricReader,
    MetricExportResult,
    MetricsData,
)

from otel_botmon import conventions as conv
from otel_botmon import telemetry
from otel_botmon.exporters.influxdb import InfluxDBMetricExporter, InfluxDBSettings
from otel_botmon.redaction import redact_text
from tests.services import free_port
from tests.unit.fleet.influx_fake import FakeInfluxDB

TOKEN = "s3cr3t-t0ken-value"
FAST_RETRY: dict[str, Any] = {"retry_initial_backoff_s": 0.05, "retry_max_backoff_s": 0.2}


@pytest.fixture
def fake() -> Iterator[FakeInfluxDB]:
    with FakeInfluxDB() as server:
        yield server


def _metrics(count: int = 1) -> MetricsData:
    """MetricsData holding ``count`` counter series (one line each)."""
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    counter = provider.get_meter("t").create_counter(conv.TRADES.name)
    for i in range(count):
        counter.add(1, {conv.TRADING_SYMBOL: f"SYM{i}"})
    data = reader.get_metrics_data()
    provider.shutdown()
    assert data is not None
    return data


def _exporter(url: str, **options: Any) -> InfluxDBMetricExporter:
    return InfluxDBMetricExporter(url, TOKEN, "my-org", "bots", **{**FAST_RETRY, **options})


def test_writes_line_protocol_with_token_org_and_bucket(fake: FakeInfluxDB) -> None:
    exporter = _exporter(fake.url)
    assert exporter.export(_metrics(3)) is MetricExportResult.SUCCESS
    assert exporter.force_flush(5000)
    [write] = fake.writes
    assert write.headers["authorization"] == f"Token {TOKEN}"
    assert write.query["org"] == ["my-org"] and write.query["bucket"] == ["bots"]
    assert write.query["precision"] == ["ns"]
    assert sorted(line.split(" ")[0].split(",")[-1] for line in write.lines) == [
        f"trading.symbol=SYM{i}" for i in range(3)
    ]
    assert all(line.startswith("botmon.trades,") for line in write.lines)
    assert exporter.stats().written_lines == 3
    exporter.shutdown()


def test_gzip_compresses_the_request_body(fake: FakeInfluxDB) -> None:
    exporter = _exporter(fake.url, gzip=True)
    exporter.export(_metrics(2))
    assert exporter.force_flush(5000)
    [write] = fake.writes
    assert write.headers.get("content-encoding") == "gzip" and len(write.lines) == 2
    exporter.shutdown()


def test_lines_are_sent_in_batches_of_batch_size(fake: FakeInfluxDB) -> None:
    exporter = _exporter(fake.url, batch_size=4)
    exporter.export(_metrics(10))
    assert exporter.force_flush(5000)
    assert [len(write.lines) for write in fake.writes] == [4, 4, 2]
    exporter.shutdown()


def test_server_errors_are_retried_until_the_write_succeeds(fake: FakeInfluxDB) -> None:
    fake.failures = [503, 500]
    exporter = _exporter(fake.url)
    exporter.export(_metrics(2))
    fake.wait_for_lines(lambda lines: len(lines) == 2)
    assert exporter.force_flush(5000)  # the exporter has seen the server's answer
    stats = exporter.stats()
    assert stats.failed_writes == 2 and stats.written_lines == 2 and stats.healthy
    assert stats.dropped_lines == 0
    exporter.shutdown()


def test_retry_after_is_honoured(fake: FakeInfluxDB) -> None:
    fake.failures = [429]
    exporter = _exporter(fake.url)
    started = time.monotonic()
    exporter.export(_metrics(1))
    fake.wait_for_lines(lambda lines: len(lines) == 1)
    # Retry-After: 1 is capped at retry_max_backoff_s (0.2 s here), never ignored.
    assert time.monotonic() - started >= 0.15
    exporter.shutdown()


def test_a_rejected_batch_is_dropped_not_retried(fake: FakeInfluxDB) -> None:
    fake.failures = [400]
    exporter = _exporter(fake.url)
    exporter.export(_metrics(2))
    assert exporter.force_flush(5000)
    stats = exporter.stats()
    assert stats.dropped_lines == 2 and stats.failed_writes == 1
    assert stats.last_error is not None and stats.last_error.startswith("HTTP 400")
    exporter.export(_metrics(1))  # the next batch goes through
    fake.wait_for_lines(lambda lines: len(lines) == 1)
    exporter.shutdown()


def test_export_never_waits_for_an_unreachable_server() -> None:
    exporter = _exporter(f"http://127.0.0.1:{free_port()}", max_buffer_lines=50, batch_size=10)
    started = time.perf_counter()
    for _ in range(20):
        assert exporter.export(_metrics(10)) is MetricExportResult.SUCCESS
    assert time.perf_counter() - started < 1.0
    deadline = time.monotonic() + 5
    while exporter.stats().failed_writes == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    stats = exporter.stats()
    assert not stats.healthy and stats.buffered_lines <= 50
    assert stats.dropped_lines >= 200 - 50  # the oldest lines went first
    started = time.perf_counter()
    exporter.shutdown(timeout_millis=500)
    assert time.perf_counter() - started < 2.0


def test_buffered_lines_are_written_when_the_server_comes_back(fake: FakeInfluxDB) -> None:
    fake.failures = [503] * 5
    exporter = _exporter(fake.url)
    exporter.export(_metrics(1))
    exporter.export(_metrics(2))
    lines = fake.wait_for_lines(lambda lines: len(lines) == 3)
    # the server has the lines; the exporter learns it when the response arrives
    assert exporter.force_flush(5000)
    assert len(lines) == 3 and exporter.stats().healthy
    exporter.shutdown()


def test_shutdown_is_bounded_by_its_timeout_when_the_server_hangs(fake: FakeInfluxDB) -> None:
    fake.delay_s = 3.0
    exporter = _exporter(fake.url, timeout_s=10.0)
    exporter.export(_metrics(1))
    time.sleep(0.1)  # let the writer start its (hanging) request
    started = time.perf_counter()
    exporter.shutdown(timeout_millis=300)
    assert time.perf_counter() - started < 1.0
    assert exporter.export(_metrics(1)) is MetricExportResult.FAILURE


def test_force_flush_gives_up_after_its_timeout() -> None:
    exporter = _exporter(f"http://127.0.0.1:{free_port()}")
    exporter.export(_metrics(1))
    started = time.perf_counter()
    assert exporter.force_flush(timeout_millis=200) is False
    assert time.perf_counter() - started < 1.0
    exporter.shutdown(timeout_millis=200)


def test_the_token_never_shows_in_repr_stats_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    settings = InfluxDBSettings("http://user:pw@127.0.0.1:1", TOKEN, "o", "b")
    assert TOKEN not in repr(settings) and "pw" not in repr(settings)
    exporter = InfluxDBMetricExporter.from_settings(
        {"url": f"http://127.0.0.1:{free_port()}", "token": TOKEN, "org": "o", "bucket": "b",
         **FAST_RETRY})
    assert TOKEN not in repr(exporter)
    exporter.export(_metrics(1))
    deadline = time.monotonic() + 5
    while exporter.stats().failed_writes == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    exporter.shutdown(timeout_millis=200)
    assert exporter.stats().failed_writes >= 1
    assert TOKEN not in str(exporter.stats())
    assert TOKEN not in redact_text(f"a message quoting {TOKEN}")  # registered as a secret
    assert caplog.records and all(TOKEN not in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"url": "influx:8086"}, "url"),
        ({"url": "ftp://h"}, "url"),
        ({"bucket": " "}, "bucket"),
        ({"org": ""}, "org"),
        ({"batch_size": 0}, "batch_size"),
        ({"timeout_s": -1}, "timeout_s"),
        ({"export_interval_s": float("nan")}, "export_interval_s"),
        ({"max_buffer_lines": 10, "batch_size": 20}, "max_buffer_lines"),
        ({"resource_attributes": "service.name"}, "resource_attributes"),
    ],
)
def test_bad_settings_are_rejected_naming_the_field(changes: dict[str, Any], message: str) -> None:
    fields = {"url": "http://localhost:8086", "token": "t", "org": "o", "bucket": "b", **changes}
    with pytest.raises(ValueError, match=message):
        InfluxDBSettings(**fields)


def test_settings_from_a_mapping_name_unknown_and_missing_keys() -> None:
    with pytest.raises(ValueError, match="batchsize"):
        InfluxDBSettings.coerce({"url": "http://h:1", "token": "", "org": "o", "bucket": "b",
                                 "batchsize": 5})
    with pytest.raises(ValueError, match="bucket"):
        InfluxDBSettings.coerce({"url": "http://h:1", "token": "", "org": "o"})
    with pytest.raises(TypeError, match="InfluxDBSettings or a mapping"):
        InfluxDBSettings.coerce("http://h:1")  # type: ignore[arg-type]
    settings = InfluxDBSettings.coerce({"url": "http://h:1", "token": "", "org": "o",
                                        "bucket": "b", "batch_size": 5})
    assert settings.batch_size == 5 and InfluxDBSettings.coerce(settings) is settings


def test_configure_with_influxdb_exports_the_bot_metrics(fake: FakeInfluxDB) -> None:
    tel = telemetry.configure(
        "influx-bot", bot_name="i1", set_global=False,
        influxdb={"url": fake.url, "token": TOKEN, "org": "o", "bucket": "b",
                  "export_interval_s": 0.1},
    )
    telemetry.instrument(conv.TRADES).add(1, {conv.TRADING_SYMBOL: "BTCUSDT"})
    lines = fake.wait_for_lines(
        lambda lines: any(line.startswith("botmon.trades,") for line in lines))
    trade_line = next(line for line in lines if line.startswith("botmon.trades,"))
    assert "bot.name=i1" in trade_line and "service.name=influx-bot" in trade_line
    assert tel.shutdown(timeout_s=5.0)


def test_configure_again_with_another_token_rebuilds_the_pipeline() -> None:
    # settings objects hide the token from repr, but a new token is a new pipeline
    settings = InfluxDBSettings(url="http://127.0.0.1:9", token="first-token-1", org="o",
                                bucket="b")
    first = telemetry.configure("influx-bot", set_global=False, influxdb=settings)
    try:
        assert telemetry.configure("influx-bot", set_global=False,
                                   influxdb=dataclasses.replace(settings)) is first
        second = telemetry.configure(
            "influx-bot", set_global=False,
            influxdb=dataclasses.replace(settings, token="second-token-2"))
        assert second is not first and first._closed and not second._closed
    finally:
        telemetry.shutdown(timeout_s=5.0)


def test_bad_influxdb_settings_leave_the_running_pipeline_alone() -> None:
    running = telemetry.configure("influx-bot", set_global=False)
    try:
        with pytest.raises(ValueError, match="bucket"):
            telemetry.configure("influx-bot", set_global=False,
                                influxdb={"url": "http://127.0.0.1:9", "token": "t-123",
                                          "org": "o"})
        assert telemetry.get_telemetry() is running and not running._closed
    finally:
        telemetry.shutdown(timeout_s=5.0)
