"""OTLP/HTTP straight to a local receiver: the OTEL_* variables reach the wire."""

from __future__ import annotations

import pytest

from otel_botmon import conventions as conv
from otel_botmon import telemetry
from tests.otlp_receiver import OtlpReceiver


def test_env_endpoint_headers_and_service_name_reach_the_receiver(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with OtlpReceiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-tenant=desk-7,x-team=quant")
        monkeypatch.setenv("OTEL_SERVICE_NAME", "env-bot")
        tel = telemetry.configure(set_global=False)
        with telemetry.get_tracer().start_as_current_span("trade BTCUSDT"):
            telemetry.instrument(conv.TRADES).add(1, {conv.TRADING_OUTCOME: "filled"})
        assert tel.force_flush(timeout_s=10)
        receiver.wait_for(lambda r: "trade BTCUSDT" in r.span_names()
                          and conv.TRADES.name in r.metric_names())
        assert receiver.request_headers
        for headers in receiver.request_headers:
            assert headers["x-tenant"] == "desk-7"
            assert headers["x-team"] == "quant"
        resource, _scope, _span = receiver.spans()[0]
        assert resource["service.name"] == "env-bot"
        tel.shutdown(timeout_s=5)
