"""configure(): resource, OTEL_* variables, readers, views, idempotence, shutdown."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator

import pytest

from otel_botmon import conventions as conv
from otel_botmon import telemetry


def test_resource_carries_bot_identity() -> None:
    tel = telemetry.configure(
        "grid-bot", service_version="1.2.3", bot_name="grid-1", exchange="binance",
        strategy="grid", set_global=False,
    )
    attrs = tel.resource.attributes
    assert attrs["service.name"] == "grid-bot"
    assert attrs["service.version"] == "1.2.3"
    assert attrs[conv.BOT_NAME] == "grid-1"
    assert attrs[conv.BOT_EXCHANGE] == "binance"
    assert attrs[conv.BOT_STRATEGY] == "grid"
    assert attrs["host.name"] == socket.gethostname()


def test_service_name_defaults_then_env_then_argument(monkeypatch: pytest.MonkeyPatch) -> None:
    tel = telemetry.configure(set_global=False)
    assert tel.resource.attributes["service.name"] == "trading-bot"
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-env")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=paper,team=quant")
    tel = telemetry.configure(set_global=False)
    assert tel.resource.attributes["service.name"] == "from-env"
    assert tel.resource.attributes["deployment.environment"] == "paper"
    tel = telemetry.configure("from-arg", set_global=False)
    assert tel.resource.attributes["service.name"] == "from-arg"
    assert tel.resource.attributes["team"] == "quant"


def test_configure_twice_with_same_settings_returns_the_same_pipeline() -> None:
    first = telemetry.configure("a", set_global=False)
    generation = telemetry.generation()
    assert telemetry.configure("a", set_global=False) is first
    assert telemetry.generation() == generation


def test_reconfigure_rebuilds_and_instruments_follow() -> None:
    first = telemetry.configure("a", set_global=False)
    telemetry.instrument(conv.TRADES).add(1)
    second = telemetry.configure("b", set_global=False)
    assert second is not first
    telemetry.instrument(conv.TRADES).add(2)
    data = second.metric_reader.get_metrics_data()
    points = [
        p for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics
        if m.name == conv.TRADES.name for p in m.data.data_points
    ]
    assert [p.value for p in points] == [2]


def test_duration_histograms_use_second_buckets_with_two_seconds() -> None:
    tel = telemetry.configure(set_global=False)
    telemetry.instrument(conv.TRADE_DURATION).record(0.3)
    data = tel.metric_reader.get_metrics_data()
    (metric,) = [  # other tests' observable instruments may report here too
        m for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics
        if m.name == conv.TRADE_DURATION.name
    ]
    bounds = tuple(metric.data.data_points[0].explicit_bounds)
    assert bounds == conv.DURATION_BUCKETS_S
    assert bounds[0] == 0.001 and bounds[-1] == 10.0 and 2.0 in bounds


@pytest.mark.parametrize("protocol", ["zipkin", "http/json"])
def test_unknown_protocol_is_rejected(protocol: str) -> None:
    with pytest.raises(ValueError, match="otlp_protocol must be one of"):
        telemetry.configure(otlp_endpoint="http://127.0.0.1:4318", otlp_protocol=protocol)


def test_malformed_headers_are_rejected_without_echoing_values() -> None:
    with pytest.raises(ValueError, match="item 1 of 1 is not") as info:
        telemetry.configure(otlp_endpoint="http://127.0.0.1:4318", otlp_headers="authorization")
    assert "s3cret" not in str(info.value)


def test_non_positive_export_interval_is_rejected() -> None:
    with pytest.raises(telemetry.ConfigurationError, match="export_interval_s must be > 0"):
        telemetry.configure(export_interval_s=0)


@pytest.mark.parametrize("interval", [float("inf"), float("nan"), 1e300, "30", True])
def test_an_export_interval_no_thread_can_wait_is_rejected(interval: object) -> None:
    with pytest.raises(telemetry.ConfigurationError, match="export_interval_s must be > 0"):
        telemetry.configure(otlp_endpoint="http://127.0.0.1:9", export_interval_s=interval)  # type: ignore[arg-type]


@pytest.mark.parametrize("raw", ["1e400", "inf", "1e16", "nan", "-1", "soon"])
def test_an_unusable_env_export_interval_warns_and_keeps_pushing(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, raw: str,
) -> None:
    # "1e400" reached the push thread's wait() and killed it with an OverflowError:
    # no metric was exported for the life of the process
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", raw)
    tel = telemetry.configure(otlp_endpoint="http://127.0.0.1:9", set_global=False)
    (pusher,) = tel.pushers
    assert pusher.interval_s == 60.0
    assert any("OTEL_METRIC_EXPORT_INTERVAL" in r.getMessage() and raw in r.getMessage()
               for r in caplog.records)
    tel.shutdown(timeout_s=2)


@pytest.mark.parametrize(("protocol", "endpoint"), [
    ("http/protobuf", "not a url"), ("http/protobuf", "127.0.0.1:4318"),
    ("http/protobuf", "ftp://collector"), ("http/protobuf", "http://127.0.0.1:99999"),
    ("http/protobuf", "http://:4318"), ("grpc", "collector :4317"), ("grpc", "https://"),
])
def test_an_env_endpoint_that_is_no_url_is_named(
    monkeypatch: pytest.MonkeyPatch, protocol: str, endpoint: str,
) -> None:
    # before: accepted, and every export failed in the log ("No connection adapters")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
    with pytest.raises(telemetry.ConfigurationError,
                       match=r"^OTEL_EXPORTER_OTLP_ENDPOINT must be http\(s\)://host"):
        telemetry.configure(set_global=False)


@pytest.mark.parametrize(("protocol", "endpoint"), [
    ("http/protobuf", "http://127.0.0.1:9"), ("http/protobuf", "https://otlp.example/v1"),
    ("grpc", "127.0.0.1:9"), ("grpc", "http://[::1]:9"),
])
def test_endpoints_the_exporters_take_are_accepted(protocol: str, endpoint: str) -> None:
    tel = telemetry.configure(otlp_endpoint=endpoint, otlp_protocol=protocol, set_global=False)
    assert tel.otlp_endpoint == endpoint
    tel.shutdown(timeout_s=2)


def test_an_env_protocol_error_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "banana")
    with pytest.raises(telemetry.ConfigurationError,
                       match=r"^OTEL_EXPORTER_OTLP_PROTOCOL must be one of"):
        telemetry.configure(set_global=False)


def test_otlp_reader_honours_env_endpoint_and_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "1234")
    tel = telemetry.configure(set_global=False)
    assert tel.otlp_endpoint == "http://127.0.0.1:9"
    assert tel.otlp_protocol == "grpc"
    (pusher,) = tel.pushers
    assert pusher.interval_s == 1.234
    assert pusher.reader is tel.metric_reader  # no second aggregation on the hot path
    tel.shutdown(timeout_s=2)


def test_sdk_disabled_records_nothing_but_reader_still_works(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    tel = telemetry.configure(set_global=False)
    assert tel.enabled is False
    telemetry.instrument(conv.TRADES).add(1)
    with telemetry.get_tracer().start_as_current_span("x") as span:
        assert not span.is_recording()
    data = tel.metric_reader.get_metrics_data()
    assert data is None or not any(
        sm.metrics for rm in data.resource_metrics for sm in rm.scope_metrics
    )


@pytest.fixture
def blackhole() -> Iterator[int]:
    """A loopback socket that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                accepted.append(conn)
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield int(server.getsockname()[1])
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    server.close()


def test_shutdown_is_bounded_when_the_endpoint_never_answers(blackhole: int) -> None:
    tel = telemetry.configure(
        otlp_endpoint=f"http://127.0.0.1:{blackhole}", export_interval_s=0.05, set_global=False
    )
    with telemetry.get_tracer().start_as_current_span("stuck"):
        telemetry.instrument(conv.TRADES).add(1)
    started = time.monotonic()
    tel.shutdown(timeout_s=1.0)
    assert time.monotonic() - started < 2.0
    assert telemetry.get_telemetry() is None


def test_existing_application_providers_are_left_in_place() -> None:
    script = textwrap.dedent(
        """
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        import otel_botmon.telemetry as t
        app = TracerProvider()
        trace.set_tracer_provider(app)
        tel = t.configure("bot")
        assert trace.get_tracer_provider() is app
        assert tel.tracer_provider is not app
        with trace.get_tracer("app").start_as_current_span("parent") as parent:
            with t.get_tracer().start_as_current_span("child") as child:
                assert child.get_span_context().trace_id == parent.get_span_context().trace_id
        print("ok")
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_after_shutdown_the_installed_global_providers_are_not_used() -> None:
    # OpenTelemetry lets the global providers be set once, so after shutdown() they are
    # still ours, shut down: instrumentation must go quiet, not warn on every call.
    script = textwrap.dedent(
        """
        import io, logging
        stream = io.StringIO()
        logging.basicConfig(stream=stream, level=logging.WARNING)
        from otel_botmon import conventions as conv, telemetry as t
        t.configure("bot")
        t.instrument(conv.TRADES).add(1)
        t.shutdown()
        t.instrument(conv.TRADES).add(1)
        with t.get_tracer().start_as_current_span("after") as span:
            assert not span.is_recording()
        print(repr(stream.getvalue()))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "''"


def test_rate_limit_gauges_report_when_a_response_came_before_configure() -> None:
    # A bot's client loads markets before configure(): the gauges were first bound to
    # OpenTelemetry's default global proxy. Installing configure()'s provider as the
    # global one must not leave that earlier registration (with a callback of no
    # pipeline) in place of this pipeline's: the SDK keeps the first one of a name.
    script = textwrap.dedent(
        """
        import otel_botmon as botmon
        from otel_botmon.instrument.ratelimit import record_ratelimit_headers
        from otel_botmon.testing import capture
        record_ratelimit_headers({"X-MBX-USED-WEIGHT-1M": "5"}, exchange="binance")
        with capture("test"):  # a test capture before the bot's own configure()
            record_ratelimit_headers({"X-MBX-USED-WEIGHT-1M": "6"}, exchange="binance")
        tel = botmon.configure("bot", exchange="binance")
        record_ratelimit_headers({"X-MBX-USED-WEIGHT-1M": "7"}, exchange="binance")
        data = tel.metric_reader.get_metrics_data()
        got = {m.name: [p.value for p in m.data.data_points]
               for rm in (data.resource_metrics if data else ())
               for sm in rm.scope_metrics for m in sm.metrics}
        print(got.get("botmon.exchange.ratelimit.used"))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[7.0]"
