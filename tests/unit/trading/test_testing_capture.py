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


class _Bot:
    """A bot that configures otel_botmon itself when it starts, as the README shows."""

    def start(self) -> None:
        telemetry.configure("my-bot", bot_name="alpha", exchange="binance", set_global=False)

    def stop(self) -> None:
        telemetry.shutdown()


def test_capture_keeps_capturing_when_the_code_under_test_calls_configure() -> None:
    with capture() as cap:
        with trade(symbol="BTCUSDT"):  # before the bot's own configure()
            pass
        bot = _Bot()
        bot.start()
        assert cap.telemetry.resource.attributes["bot.name"] == "alpha"
        with trade(symbol="BTCUSDT"):
            pass
        assert len(cap.spans("trade BTCUSDT")) == 2
        assert cap.metric_value("botmon.trades", trading_outcome="filled") == 2
        bot.stop()  # its shutdown() does not take the recorded data with it
        assert cap.metric_value("botmon.trades", trading_outcome="filled") == 2
        bot.start()
        with trade(symbol="ETHUSDT"):
            pass
        assert cap.metric_value("botmon.trades", trading_outcome="filled") == 3
        assert cap.metric_point("botmon.trades", trading_symbol="ETHUSDT",
                                trading_outcome="filled").value == 1
        assert len(cap.spans()) == 3
    assert telemetry.get_telemetry() is None  # the bot's pipeline is shut down too


def test_the_fixture_keeps_capturing_across_a_configure_call(
    capture_telemetry: TelemetryCapture,
) -> None:
    _Bot().start()
    record_position_closed("BTCUSDT", 5.0)
    assert capture_telemetry.metric_value("botmon.pnl.realized") == 5.0


def test_metric_point_matches_attributes_exactly() -> None:
    with capture() as cap:
        with trade(symbol="BTCUSDT", side="BUY"):
            pass
        point = cap.metric_point(
            "botmon.trades", {"trading.symbol": "BTCUSDT", "trading.side": "BUY"},
            trading_outcome="filled",
        )
        assert point.value == 1
        with pytest.raises(AssertionError, match="no point with exactly"):
            cap.metric_point("botmon.trades", trading_symbol="BTCUSDT")  # a subset only
        assert cap.metric_attribute_sets("botmon.trades") == [
            {"trading.symbol": "BTCUSDT", "trading.side": "BUY", "trading.outcome": "filled"}
        ]


def test_capture_works_where_pytest_cannot_be_imported() -> None:
    code = textwrap.dedent("""
        import sys
        sys.modules["pytest"] = None  # any 'import pytest' now fails
        from otel_botmon.instrument.trading import trade
        from otel_botmon.testing import capture
        with capture() as cap:
            with trade(symbol="BTCUSDT"):
                pass
            print(cap.metric_value("botmon.trades"), len(cap.spans()))
    """)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1.0", "1"]


def test_the_fixture_is_registered_by_the_installed_plugin(tmp_path: Path) -> None:
    (tmp_path / "test_plain.py").write_text(textwrap.dedent("""
        def test_no_conftest_needed(capture_telemetry):
            assert capture_telemetry.spans() == []
    """))
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "-p", "otel_botmon.pytest_plugin", "test_plain.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    from importlib.metadata import entry_points

    plugins = {ep.name: ep.value for ep in entry_points(group="pytest11")}
    assert plugins.get("otel_botmon") == "otel_botmon.pytest_plugin"
