"""The InfluxDB exporter writes to VictoriaMetrics' InfluxDB v2 write API, survives it
going away and recovers when it returns; values are read back through PromQL."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricExportResult
from opentelemetry.sdk.resources import Resource

from otel_botmon import conventions as conv
from otel_botmon import telemetry
from otel_botmon.exporters.influxdb import InfluxDBMetricExporter
from tests.integration.fleet.conftest import StartBot, VictoriaMetrics
from tests.services import LOOPBACK, free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _poll(what: str, probe: Callable[[], Any], timeout: float = 20.0) -> Any:
    """Call ``probe`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s")
        time.sleep(0.2)


def _value(vm: VictoriaMetrics, expr: str) -> float | None:
    result = vm.query(expr)
    return float(result[0]["value"][1]) if result else None


def test_values_written_in_process_are_read_back_exactly(
    victoria_metrics: VictoriaMetrics,
) -> None:
    tel = telemetry.configure(
        "vm-values", bot_name="values-bot", set_global=False,
        influxdb={"url": victoria_metrics.url, "token": "vm-token-not-checked", "org": "o",
                  "bucket": "b", "export_interval_s": 0.2},
    )
    attrs = {conv.TRADING_SYMBOL: "BTCUSDT", conv.TRADING_OUTCOME: "filled"}
    telemetry.instrument(conv.TRADES).add(3, attrs)
    for seconds in (0.004, 0.3, 0.3, 1.5):
        telemetry.instrument(conv.TRADE_DURATION).record(seconds, attrs)
    telemetry.instrument(conv.PNL_REALIZED).add(-12.5, {conv.TRADING_SYMBOL: "BTCUSDT"})
    assert tel.force_flush(timeout_s=5.0)

    selector = '{bot.name="values-bot",trading.symbol="BTCUSDT"}'
    assert _poll("trades", lambda: _value(victoria_metrics, f"botmon.trades_value{selector}")) == 3
    assert _value(victoria_metrics, f"botmon.pnl.realized_value{selector}") == -12.5
    assert _value(victoria_metrics, f"botmon.trade.duration_count{selector}") == 4
    assert _value(victoria_metrics, f"botmon.trade.duration_sum{selector}") == pytest.approx(2.104)
    # Buckets carry `le`, so PromQL quantiles work on the InfluxDB data too.
    buckets = victoria_metrics.query(f'botmon.trade.duration_bucket{selector}')
    by_le = {series["metric"]["le"]: float(series["value"][1]) for series in buckets}
    assert by_le["0.005"] == 1 and by_le["0.5"] == 3 and by_le["2.0"] == 4 and by_le["+Inf"] == 4
    median = _value(
        victoria_metrics,
        f"histogram_quantile(0.5, sum by (le) (botmon.trade.duration_bucket{selector}))",
    )
    assert median is not None and 0.25 < median <= 0.5
    tel.shutdown()


def _scrape_value(port: int, metric: str, label: str = "") -> float:
    """Sum of the samples of ``metric`` on a bot's /metrics whose labels contain
    ``label`` (0 when there are none)."""
    text = httpx.get(f"http://{LOOPBACK}:{port}/metrics", timeout=5).text
    pattern = re.compile(rf"^{re.escape(metric)}(\{{[^}}]*\}})? (\S+)$", re.M)
    return sum(
        float(match.group(2)) for match in pattern.finditer(text)
        if label in (match.group(1) or "")
    )


def test_bot_keeps_trading_while_victoriametrics_is_down_and_exports_again_after(
    victoria_metrics: VictoriaMetrics, start_bot: StartBot
) -> None:
    metrics_port = free_port()
    bot = start_bot(
        "vm-bot", prometheus_port=metrics_port, round_interval=0.05,
        influxdb=json.dumps({
            "url": victoria_metrics.url, "token": "vm-token-not-checked", "org": "o",
            "bucket": "b",
            "export_interval_s": 0.2, "timeout_s": 1.0,
            "retry_initial_backoff_s": 0.1, "retry_max_backoff_s": 0.5,
        }),
    )
    trades = 'sum(botmon.trades_value{bot.name="vm-bot"})'
    before_outage = _poll("first export", lambda: _value(victoria_metrics, trades))

    victoria_metrics.stop()
    traded_at_stop = _scrape_value(metrics_port, "botmon_trades_total")
    # The exporter notices (and counts) the failed writes...
    _poll("failed writes counted", lambda: _scrape_value(
        metrics_port, "botmon_internal_errors_total", 'botmon_component="exporters.influxdb"'))
    # ...while the bot trades on at its own pace.
    _poll("trading during the outage",
          lambda: _scrape_value(metrics_port, "botmon_trades_total") > traded_at_stop + 40)
    assert bot.running()

    victoria_metrics.start()  # same port, same data directory
    after = _poll(
        "export after recovery",
        lambda: (v := _value(victoria_metrics, trades)) is not None and v > before_outage + 40
        and v,
    )
    assert after > before_outage
    assert bot.running()


def test_export_stays_bounded_while_victoriametrics_is_down_and_the_backlog_lands_after(
    victoria_metrics: VictoriaMetrics,
) -> None:
    exporter = InfluxDBMetricExporter(
        victoria_metrics.url, "vm-token-not-checked", "o", "b", timeout_s=1.0,
        retry_initial_backoff_s=0.1, retry_max_backoff_s=0.3,
    )
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader], resource=Resource({"bot.name": "down"}))
    counter = provider.get_meter("t").create_counter(conv.TRADES.name)
    victoria_metrics.stop()
    slowest = 0.0
    for _ in range(20):
        # VictoriaMetrics keeps one sample per millisecond: give each collection its own.
        collected_ms = time.time_ns() // 1_000_000
        while time.time_ns() // 1_000_000 == collected_ms:
            pass
        counter.add(1)
        data = reader.get_metrics_data()
        assert data is not None
        started = time.perf_counter()
        assert exporter.export(data) is MetricExportResult.SUCCESS
        slowest = max(slowest, time.perf_counter() - started)
    # A write that waited on the dead server would take the 1 s timeout: export() only queues.
    assert slowest < 0.5, f"export() took {slowest:.3f}s with the server down"
    _poll("failed writes", lambda: exporter.stats().failed_writes > 0)

    victoria_metrics.start()
    assert exporter.force_flush(timeout_millis=10_000)
    stats = exporter.stats()
    assert stats.healthy and stats.dropped_lines == 0 and stats.written_lines == 20
    # VictoriaMetrics makes ingested rows searchable a few at a time: wait for the last one.
    _poll("backlog", lambda: _value(
        victoria_metrics, 'max(botmon.trades_value{bot.name="down"})') == 20)
    exporter.shutdown()
    provider.shutdown()
