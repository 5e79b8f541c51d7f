"""The address a bot's /metrics binds to is an option (``prometheus_host``), documented
where fleets are set up: loopback by default, any address when Prometheus runs elsewhere."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from otel_botmon import telemetry
from otel_botmon.exporters.prometheus import PrometheusServingReader

ROOT = Path(__file__).resolve().parents[3]


def _reader(tel: telemetry.Telemetry) -> PrometheusServingReader:
    [reader] = [r for r in tel.extra_readers if isinstance(r, PrometheusServingReader)]
    return reader


def test_metrics_bind_to_loopback_by_default() -> None:
    tel = telemetry.configure("bind-bot", prometheus_port=0, set_global=False)
    try:
        assert _reader(tel).url.startswith("http://127.0.0.1:")
    finally:
        tel.shutdown()


def test_prometheus_host_chooses_the_bind_address() -> None:
    # 127.0.0.2 is loopback too on Linux, yet a different address from 127.0.0.1
    tel = telemetry.configure("bind-bot", prometheus_port=0, prometheus_host="127.0.0.2",
                              set_global=False)
    try:
        reader = _reader(tel)
        assert reader.url == f"http://127.0.0.2:{reader.port}/metrics"
        assert httpx.get(reader.url, timeout=5).status_code == 200
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{reader.port}/metrics", timeout=2)
    finally:
        tel.shutdown()


@pytest.mark.parametrize("doc", ["README.md", "collector/README.md"])
def test_the_option_is_documented(doc: str) -> None:
    text = (ROOT / doc).read_text()
    assert "prometheus_host=" in text and "127.0.0.1" in text
