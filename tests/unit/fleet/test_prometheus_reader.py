"""The Prometheus reader serves /metrics with the names dashboards and rules rely on."""

from __future__ import annotations

import socket

import httpx
import pytest
from opentelemetry.sdk.metrics import MeterProvider

from otel_botmon import conventions as conv
from otel_botmon import telemetry
from otel_botmon.exporters.prometheus import PrometheusServingReader, start_prometheus_reader
from tests.forking import guard_child
from tests.services import LOOPBACK


def _scrape(url: str) -> str:
    response = httpx.get(url, timeout=5)
    response.raise_for_status()
    return response.text


def test_reader_serves_metrics_on_an_ephemeral_port() -> None:
    reader = start_prometheus_reader(0)
    provider = MeterProvider(metric_readers=[reader])
    try:
        assert isinstance(reader, PrometheusServingReader)
        assert reader.port > 0 and reader.url == f"http://{LOOPBACK}:{reader.port}/metrics"
        counter = provider.get_meter("t").create_counter(conv.TRADES.name, unit=conv.TRADES.unit)
        counter.add(2, {conv.TRADING_SYMBOL: "BTCUSDT"})
        text = _scrape(reader.url)
        assert 'botmon_trades_total{' in text and 'trading_symbol="BTCUSDT"' in text
    finally:
        provider.shutdown()


def test_shutdown_stops_the_server_and_frees_the_port() -> None:
    reader = start_prometheus_reader(0)
    provider = MeterProvider(metric_readers=[reader])
    port = reader.port
    provider.shutdown()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://{LOOPBACK}:{port}/metrics", timeout=2)
    again = start_prometheus_reader(port)  # the port is free again
    again.shutdown()


def test_port_in_use_raises_an_error_naming_the_address() -> None:
    with socket.socket() as busy:
        busy.bind((LOOPBACK, 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(OSError, match=f"{LOOPBACK}:{port}"):
            start_prometheus_reader(port)


@pytest.mark.parametrize("port", [-1, 65536, "9464", True, 1.5])
def test_invalid_port_is_rejected(port: object) -> None:
    with pytest.raises(ValueError, match="prometheus_port"):
        start_prometheus_reader(port)  # type: ignore[arg-type]


def test_two_readers_in_one_process_do_not_share_metrics() -> None:
    first, second = start_prometheus_reader(0), start_prometheus_reader(0)
    one = MeterProvider(metric_readers=[first])
    two = MeterProvider(metric_readers=[second])
    try:
        one.get_meter("t").create_counter("botmon.trades").add(1)
        two.get_meter("t").create_counter("botmon.exchange.requests").add(1)
        assert "botmon_exchange_requests_total" not in _scrape(first.url)
        assert "botmon_trades_total" not in _scrape(second.url)
    finally:
        one.shutdown()
        two.shutdown()


def test_configure_with_prometheus_port_serves_the_bot_metrics() -> None:
    tel = telemetry.configure("prom-bot", bot_name="p1", prometheus_port=0, set_global=False)
    readers = [r for r in tel.extra_readers if isinstance(r, PrometheusServingReader)]
    assert len(readers) == 1
    telemetry.instrument(conv.TRADE_DURATION).record(0.2, {conv.TRADING_SYMBOL: "ETHUSDT"})
    text = _scrape(readers[0].url)
    assert 'botmon_trade_duration_seconds_bucket{' in text
    assert 'le="0.25"' in text
    # The bot's identity is on every series (as remote write puts it), not only target_info.
    [count_line] = [line for line in text.splitlines()
                    if line.startswith("botmon_trade_duration_seconds_count{")]
    assert 'bot_name="p1"' in count_line
    assert 'service_instance_id' not in count_line  # other resource attributes stay apart
    tel.shutdown()


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_leaves_the_port_to_the_parent_and_shuts_down_at_once() -> None:
    """A child forked while /metrics is served does not keep the port (the parent could
    not serve it again, a scrape waited for nobody) nor wait, in its own shutdown, for
    the server thread it does not have (every child's exit took the whole timeout)."""
    import os
    import time

    tel = telemetry.configure("prom-fork", prometheus_port=0, set_global=False)
    reader = tel.extra_readers[0]
    assert isinstance(reader, PrometheusServingReader)
    port = reader.port
    _scrape(reader.url)
    to_child, from_parent = os.pipe()
    to_parent, from_child = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            guard_child(30)
            os.close(from_parent)
            os.close(to_parent)
            started = time.monotonic()
            done = telemetry.shutdown(timeout_s=10.0)
            os.write(from_child, f"{done} {time.monotonic() - started:.2f}".encode())
            os.read(to_child, 1)  # lives on until the parent has served again
            code = 0
        finally:
            os._exit(code)
    try:
        done, took = os.read(to_parent, 64).decode().split()
        assert done == "True" and float(took) < 2.0, (done, took)
        tel.shutdown()
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://{LOOPBACK}:{port}/metrics", timeout=2)
        # OSError "address already in use" while the child held the socket
        again = telemetry.configure("prom-fork", prometheus_port=port, set_global=False)
        _scrape(f"http://{LOOPBACK}:{port}/metrics")
        again.shutdown()
    finally:
        os.close(from_parent)  # the child reads end-of-file and exits
        _, status = os.waitpid(pid, 0)
        os.close(to_child)
        os.close(to_parent)
        os.close(from_child)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
