"""otel_botmon.testing: the capture users import in their own tests."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from otel_botmon import telemetry
from otel_botmon.instrument.trading import record_position_closed, trade
from otel_botmon.testing import TelemetryCapture, capture

REPO = Path(__file__).resolve().parents[3]


def test_capture_records_spans_and_metrics_in_memory() -> None:
    with capture() as cap:
        with trade(symbol="BTCUSDT", side="BUY", quantity=2, price=10.0):
            pass
        record_position_closed("BTCUSDT", 3.0)

        assert isinstance(cap, TelemetryCapture)
        assert cap.span("trade BTCUSDT").attributes["trading.outcome"] == "filled"
        assert cap.metric_value("botmon.trades", trading_outcome="filled") == 1
        assert cap.metric_value("botmon.trade.notional", {"trading.side": "BUY"}) == 20.0
        assert cap.metric_value("botmon.trades", trading_outcome="error") == 0
        assert cap.metric_count("botmon.trade.duration", trading_symbol="BTCUSDT") == 1
        assert cap.metric_value("botmon.pnl.realized") == 3.0
        assert {"botmon.trades", "botmon.positions.closed"} <= cap.metric_names()
    assert telemetry.get_telemetry() is None  # shut down on exit


def test_span_lookup_names_what_was_there() -> None:
    with capture() as cap:
        with trade(symbol="ETHUSDT"):
            pass
        names = r"found 0; finished span names: \['trade ETHUSDT'\]"
        with pytest.raises(AssertionError, match=names):
            cap.span("trade BTCUSDT")
        cap.clear_spans()
        assert cap.spans() == []


def test_capture_ignores_otel_variables_that_would_send_or_disable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")

    with capture() as cap:
        assert cap.telemetry.otlp_endpoint is None
        with trade(symbol="BTCUSDT"):
            pass
        assert len(cap.spans()) == 1

    assert os.environ["OTEL_SDK_DISABLED"] == "true"  # restored afterwards


def test_fixture_works_as_a_pytest_plugin_in_a_users_project(tmp_path: Path) -> None:
    (tmp_path / "test_user_bot.py").write_text(textwrap.dedent("""
        from otel_botmon.instrument.trading import trade

        @trade(side="BUY")
        def buy(symbol, quantity):
            return "ok"

        def test_buy_is_recorded(capture_telemetry):
            assert buy("BTCUSDT", 0.5) == "ok"
            span = capture_telemetry.span("trade BTCUSDT")
            assert span.attributes["trading.quantity"] == 0.5
            assert capture_telemetry.metric_value(
                "botmon.trades", trading_symbol="BTCUSDT", trading_side="BUY"
            ) == 1

        def test_each_test_starts_empty(capture_telemetry):
            assert capture_telemetry.spans() == []
            assert capture_telemetry.metric_value("botmon.trades") == 0
    """))
    # The import form works whether or not the plugin is also registered another way.
    (tmp_path / "conftest.py").write_text(
        "from otel_botmon.testing import capture_telemetry  # noqa: F401\n"
    )
    # Only the plugin under test: autoloading every installed plugin costs seconds.
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_user_bot.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout
