"""Environment variables otel_botmon reads: a value it cannot use is reported once, naming
the variable, the value (unless it may be a secret) and what is used instead; settings
that would break exporting are refused."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otel_botmon import _env, cli, telemetry
from otel_botmon.demo import runner


@pytest.fixture(autouse=True)
def _fresh_warnings(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    _env.reset_warnings()
    caplog.set_level(logging.WARNING, logger="otel_botmon")
    yield
    _env.reset_warnings()


def _warnings_about(caplog: pytest.LogCaptureFixture, name: str) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.levelno == logging.WARNING and name in r.getMessage()]


def _configure_twice() -> telemetry.Telemetry:
    telemetry.configure("env-a", set_global=False)
    return telemetry.configure("env-b", set_global=False)  # new settings: a rebuild


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.one_of(
    st.sampled_from(["true", "TRUE", " True ", "false", "False", "", "maybe", "1", "yes", "0"]),
    st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=6),
))
def test_sdk_disabled_is_true_only_for_true_and_other_values_are_reported_once(
    value: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
) -> None:
    _env.reset_warnings()
    caplog.clear()
    monkeypatch.setenv("OTEL_SDK_DISABLED", value)
    tel = _configure_twice()
    try:
        assert tel.enabled is (value.strip().lower() != "true")
        reported = _warnings_about(caplog, "OTEL_SDK_DISABLED")
        if value.strip().lower() in ("", "true", "false"):
            assert reported == []
        else:
            assert len(reported) == 1
            assert repr(value) in reported[0] and "using false" in reported[0]
    finally:
        tel.shutdown()


def test_trade_metrics_banana_is_reported_once_and_lean_is_used(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BOTMON_TRADE_METRICS", "banana")
    tel = _configure_twice()
    assert tel.trade_metrics is not None  # the lean aggregation
    (message,) = _warnings_about(caplog, "BOTMON_TRADE_METRICS")
    assert "'banana'" in message and "'lean' or 'sdk'" in message and "using 'lean'" in message


@pytest.mark.parametrize("value", ["sdk", " SDK "])
def test_trade_metrics_sdk_is_taken_silently(
    value: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BOTMON_TRADE_METRICS", value)
    assert telemetry.configure("env-a", set_global=False).trade_metrics is None
    assert _warnings_about(caplog, "BOTMON_TRADE_METRICS") == []


def test_a_bad_export_interval_is_reported_once(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "abc")
    _configure_twice()
    (message,) = _warnings_about(caplog, "OTEL_METRIC_EXPORT_INTERVAL")
    assert "'abc'" in message and "milliseconds" in message and "using 60000" in message


@pytest.mark.parametrize("value", ["abc", "0", "-2", "inf", "nan"])
def test_a_bad_demo_time_scale_is_reported_and_1_is_used(
    value: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[float] = []

    async def fake_run_demo(options: runner.DemoOptions, out: object) -> object:
        seen.append(options.time_scale)
        return type("Result", (), {"trades": 1})()

    monkeypatch.setattr(runner, "run_demo", fake_run_demo)
    monkeypatch.setenv("BOTMON_DEMO_TIME_SCALE", value)
    assert cli.main(["demo", "--no-browser", "--duration", "1"]) == 0
    assert cli.main(["demo", "--no-browser", "--duration", "1"]) == 0
    assert seen == [1.0, 1.0]
    (message,) = _warnings_about(caplog, "BOTMON_DEMO_TIME_SCALE")
    assert repr(value) in message and "using 1.0" in message


def test_a_good_demo_time_scale_is_taken_and_the_flag_wins(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[float] = []

    async def fake_run_demo(options: runner.DemoOptions, out: object) -> object:
        seen.append(options.time_scale)
        return type("Result", (), {"trades": 1})()

    monkeypatch.setattr(runner, "run_demo", fake_run_demo)
    monkeypatch.setenv("BOTMON_DEMO_TIME_SCALE", "0.25")
    cli.main(["demo", "--no-browser"])
    cli.main(["demo", "--no-browser", "--time-scale", "3"])
    assert seen == [0.25, 3.0]
    assert _warnings_about(caplog, "BOTMON_DEMO_TIME_SCALE") == []


@pytest.mark.parametrize("headers", [
    "authorization Bearer sekrit-token-9", "x-api-key:sekrit-token-9",
    "authorization=Bearer sekrit-token-9,sekrit-token-9", 'authorization="sekrit-token-9"',
])
@pytest.mark.parametrize("variable", [
    "OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
])
def test_malformed_otlp_headers_are_refused_without_showing_them(
    headers: str, variable: str, caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv(variable, headers)
    with pytest.raises(telemetry.ConfigurationError, match=variable) as info:
        telemetry.configure(otlp_endpoint="http://127.0.0.1:9", set_global=False)
    assert "sekrit" not in str(info.value)
    assert "sekrit" not in caplog.text


def test_well_formed_otlp_headers_are_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20abc, x-org = 7")
    tel = telemetry.configure(otlp_endpoint="http://127.0.0.1:9", set_global=False)
    assert tel.otlp_endpoint == "http://127.0.0.1:9"


def test_a_secret_variables_value_is_never_shown(caplog: pytest.LogCaptureFixture) -> None:
    for name in _env.SECRET_VARIABLES:
        _env.warn_bad_value(name, "sekrit-token-9", "something else", "nothing")
    assert len(_warnings_about(caplog, "_")) == len(_env.SECRET_VARIABLES)
    assert "sekrit" not in caplog.text
