"""Secrets never leave through metric attributes, alert text, labels, the store or logs."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import stat
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otel_botmon import conventions as conv
from otel_botmon import telemetry as botmon_telemetry
from otel_botmon.alerting.manager import AlertManager
from otel_botmon.alerting.model import AlertSeverity
from otel_botmon.custom_metrics import Metric, MetricsCollector, MetricType
from otel_botmon.instrument.exchange import exchange_call, record_api_call
from otel_botmon.redaction import REDACTED

SIGNATURE = "c0ffee" * 8
API_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
SIGNED_PATH = f"/api/v3/order?symbol=BTCUSDT&timestamp=1700000000000&signature={SIGNATURE}"


def everything_exported(tel: Any) -> str:
    """Every metric attribute and every span of the pipeline, as one text."""
    data = tel.metric_reader.get_metrics_data()
    texts = [repr(dict(point.attributes))
             for rm in data.resource_metrics for sm in rm.scope_metrics
             for metric in sm.metrics for point in metric.data.data_points]
    texts += [span.to_json() for span in tel.spans()]
    return "\n".join(texts)


def test_record_api_call_with_a_signed_url_keeps_the_signature_out_of_metrics(
    telemetry: Any,
) -> None:
    record_api_call(SIGNED_PATH, 12.5, 200)
    record_api_call(SIGNED_PATH.replace("c0ffee", "beef00"), 10.0, 200)
    exported = everything_exported(telemetry)
    assert SIGNATURE not in exported and "beef00" not in exported
    # one series for the endpoint, not one per signature
    assert telemetry.metric_attribute_sets(conv.EXCHANGE_REQUESTS.name) == [
        {conv.EXCHANGE_NAME: "binance", conv.EXCHANGE_ENDPOINT: "/api/v3/order",
         conv.HTTP_RESPONSE_STATUS_CODE: 200}
    ]


def test_exchange_call_endpoint_with_a_key_in_its_path_is_redacted(telemetry: Any) -> None:
    with exchange_call(exchange="binance", endpoint=f"/sapi/x?apiKey={API_KEY}"):
        pass
    with exchange_call(exchange="binance", endpoint=f"/stream/listenKey={API_KEY}"):
        pass
    exported = everything_exported(telemetry)
    assert API_KEY not in exported
    assert f"listenKey={REDACTED}" in exported


def test_custom_metric_tags_are_redacted_by_name_and_by_value(telemetry: Any) -> None:
    metrics = MetricsCollector()
    metrics.register_metric(Metric("bot.calls", MetricType.COUNTER))
    metrics.record_metric("bot.calls", 1, {"api_key": API_KEY, "url": SIGNED_PATH})
    exported = everything_exported(telemetry)
    assert API_KEY not in exported and SIGNATURE not in exported


def _alert_with_secrets(store: Path, secret: str, label_name: str) -> tuple[str, AlertManager]:
    manager = AlertManager(store=store, clock=lambda: 1_700_000_000.0)
    alert_id = asyncio.run(manager.create_custom_alert(
        title=f"order failed: signature={secret}",
        message=f"POST https://api.binance.com{SIGNED_PATH[:-len(SIGNATURE)]}{secret} -> 400",
        severity=AlertSeverity.CRITICAL,
        labels={label_name: secret, "endpoint": f"/api?token={secret}", "symbol": "BTCUSDT"},
    ))
    return alert_id, manager


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(secret=st.text(alphabet="0123456789abcdefABCDEF", min_size=16, max_size=64),
       label_name=st.sampled_from(["api_key", "apiSecret", "X-MBX-APIKEY", "password",
                                   "listenKey", "passphrase"]))
def test_alert_text_and_labels_are_redacted_before_they_are_stored_logged_or_shown(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, secret: str, label_name: str,
) -> None:
    caplog.clear()
    store = tmp_path / f"alerts-{secret[:8]}.db"
    with caplog.at_level(logging.INFO, logger="otel_botmon"):
        alert_id, manager = _alert_with_secrets(store, secret, label_name)
    alert = manager.get_alert(alert_id)
    assert alert is not None
    shown = repr(alert.to_dict(with_events=True))
    assert secret not in shown
    assert alert.labels[label_name] == REDACTED and alert.labels["symbol"] == "BTCUSDT"
    assert "alert fired" in caplog.text and secret not in caplog.text
    manager.close()
    for path in store.parent.glob(f"{store.name}*"):
        assert secret.encode() not in path.read_bytes(), path


def test_the_alert_store_file_is_private(tmp_path: Path) -> None:
    store = tmp_path / "alerts.db"
    _alert_id, manager = _alert_with_secrets(store, "f" * 20, "api_key")
    try:
        for path in tmp_path.glob("alerts.db*"):
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
    finally:
        manager.close()


def test_a_store_file_left_readable_by_an_older_version_is_tightened(tmp_path: Path) -> None:
    store = tmp_path / "alerts.db"
    sqlite3.connect(store).close()
    os.chmod(store, 0o644)
    manager = AlertManager(store=store)
    manager.close()
    assert stat.S_IMODE(os.stat(store).st_mode) == 0o600


def test_configure_scrubs_signed_urls_from_httpx_log_lines(
    caplog: pytest.LogCaptureFixture,
) -> None:
    botmon_telemetry.configure("log-test", set_global=False)
    client = httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(200)))
    with caplog.at_level(logging.DEBUG):
        client.get(f"https://api.binance.com{SIGNED_PATH}&apiKey={API_KEY}")
    client.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert lines, "httpx logged no request line"
    assert all(SIGNATURE not in line and API_KEY not in line for line in lines)
    assert any(f"signature={REDACTED}" in line for line in lines)


def test_a_logged_traceback_is_redacted_too(caplog: pytest.LogCaptureFixture) -> None:
    botmon_telemetry.configure("log-test", set_global=False)
    logger = logging.getLogger("otel_botmon")
    with caplog.at_level(logging.ERROR, logger="otel_botmon"):
        try:
            raise RuntimeError(f"failed for url 'https://h/p?signature={SIGNATURE}'")
        except RuntimeError:
            logger.exception("export failed")
    assert "signature=REDACTED" in caplog.text
    assert SIGNATURE not in caplog.text
