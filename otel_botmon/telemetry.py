"""``configure()`` and ``shutdown()``: the OpenTelemetry SDK pipeline of otel_botmon.

``configure()`` builds a TracerProvider and a MeterProvider that share one Resource.
It always attaches an :class:`InMemoryMetricReader` (``Telemetry.metric_reader``) that the
bundled alert evaluator and dashboard read, so everything works with no backend; when an
OTLP endpoint is configured (argument or ``OTEL_EXPORTER_OTLP_ENDPOINT``) the same spans
and metrics are exported over http/protobuf or grpc.

Providers installed by the application
    otel_botmon always records into the providers ``configure()`` built. It installs them
    as the global OpenTelemetry providers only when the application has not installed its
    own (the global is still the API's proxy) and ``set_global`` is true. When the
    application already has global providers, otel_botmon leaves them untouched and logs
    one INFO line; trace context still propagates between the two (it lives in
    ``contextvars``, not in a provider), so botmon spans join the application's traces.

Calling ``configure()`` again with the same arguments returns the running instance; with
different arguments it shuts the old pipeline down (bounded) and builds a new one.
Instrumentation holds proxies (``otel_botmon._state``) that every change of providers
re-points, so it records into the new providers from its next call on.
"""

from __future__ import annotations

import atexit
import logging
import math
import os
import re
import socket
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from opentelemetry import metrics as metrics_api
from opentelemetry import trace as trace_api
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricReader
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from otel_botmon import _env, _fork, _internal
from otel_botmon import conventions as conv
from otel_botmon.__about__ import __version__
from otel_botmon._log_redaction import install_log_redaction
from otel_botmon._state import STATE, ProxyInstrument, ProxyTracer
from otel_botmon.exporters.handoff import (
    HandoffMetricExporter,
    HandoffSpanExporter,
    ShedWhenBacklogged,
)
from otel_botmon.exporters.push import MetricPusher
from otel_botmon.exporters.span_export import CompactSpanExport
from otel_botmon.exporters.temporality import with_preferred_temporality
from otel_botmon.redaction import RedactingSpanExporter, RedactingSpanProcessor

logger = logging.getLogger("otel_botmon")

_DEFAULT_SERVICE_NAME = "trading-bot"
_DEFAULT_EXPORT_TIMEOUT_S = 5.0
_PROTOCOLS = ("http/protobuf", "grpc")
# Environment variables that change what configure() builds (part of its identity).
_ENV_SETTINGS = (
    _env.OTEL_SDK_DISABLED, _env.OTEL_SERVICE_NAME, _env.OTEL_RESOURCE_ATTRIBUTES,
    _env.OTEL_EXPORTER_OTLP_HEADERS, _env.OTEL_METRIC_EXPORT_INTERVAL,
    _env.BOTMON_TRADE_METRICS,
)
BOTMON_TRADE_METRICS = _env.BOTMON_TRADE_METRICS


@dataclass
class Telemetry:
    """The running pipeline: providers, the always-on in-memory reader, exporters."""

    tracer_provider: trace_api.TracerProvider
    meter_provider: metrics_api.MeterProvider
    metric_reader: InMemoryMetricReader
    resource: Resource
    enabled: bool = True
    otlp_endpoint: str | None = None
    otlp_protocol: str | None = None
    extra_readers: list[MetricReader] = field(default_factory=list)
    pushers: list[MetricPusher] = field(default_factory=list)
    """Exporters fed from ``metric_reader`` on their own intervals (OTLP, InfluxDB)."""
    trade_metrics: Any = None
    """The lean trade aggregation (``instrument._trade_metrics``), None on the SDK path."""
    _key: tuple[Any, ...] = ()
    _closed: bool = False
    _handoffs: list[Any] = field(default_factory=list)

    def force_flush(self, timeout_s: float = 5.0) -> bool:
        """Export what is buffered now, within ``timeout_s`` overall (each step gets what
        the previous ones left). Returns False when it did not finish in time."""
        if not self.enabled:
            return True
        deadline = time.monotonic() + timeout_s

        def left_ms() -> int:
            return max(0, int((deadline - time.monotonic()) * 1000))

        ok = True
        if isinstance(self.tracer_provider, TracerProvider):
            ok = self.tracer_provider.force_flush(left_ms()) and ok
        if isinstance(self.meter_provider, MeterProvider):
            ok = bool(self.meter_provider.force_flush(left_ms())) and ok
        for pusher in self.pushers:
            ok = pusher.force_flush(left_ms() / 1000) and ok
        for handoff in self._handoffs:  # the OTLP sender threads, after the processors
            ok = handoff.force_flush(left_ms()) and ok
        return ok and time.monotonic() <= deadline

    def _after_fork_in_child(self) -> None:
        """Repair what the SDK leaves broken in a forked child (see otel_botmon._fork):
        metric storage locks, and the parent's points (the child is a new instance)."""
        self.resource = _fork.child_resource(self.resource)
        if isinstance(self.meter_provider, MeterProvider):
            _fork.renew_metric_sdk_locks(self.meter_provider, forget_points=True)
        _fork.renew_locks(getattr(self.tracer_provider, "_active_span_processor", None))
        _fork.flush_when_worker_exits(self, lambda: self.force_flush(_DEFAULT_EXPORT_TIMEOUT_S))

    def shutdown(self, timeout_s: float = 5.0) -> bool:
        """Flush and stop exporters, waiting at most ``timeout_s`` seconds.

        An exporter stuck on an unresponsive endpoint cannot hold the process: the work
        runs in a daemon thread that is abandoned after the timeout (a warning is logged
        and False returned). Safe to call more than once.
        """
        if self._closed:
            return True
        self._closed = True
        for observer in tuple(STATE.observers):
            try:
                observer.retiring(self)
            except Exception as exc:  # a test helper must not stop the shutdown
                logger.warning("otel_botmon: pipeline observer failed: %s", exc)
        _forget(self)

        def work() -> None:
            try:
                if isinstance(self.tracer_provider, TracerProvider):
                    self.tracer_provider.shutdown()
                for pusher in self.pushers:
                    pusher.shutdown(timeout_s)
                if isinstance(self.meter_provider, MeterProvider):
                    self.meter_provider.shutdown(timeout_millis=timeout_s * 1000)
            except Exception as exc:  # exporters may raise on a dead endpoint
                logger.warning("otel_botmon: error while shutting down telemetry: %s", exc)

        worker = threading.Thread(target=work, name="botmon-shutdown", daemon=True)
        worker.start()
        worker.join(timeout_s)
        if worker.is_alive():
            logger.warning(
                "otel_botmon: telemetry shutdown did not finish within %.1f s; "
                "abandoning unexported data", timeout_s,
            )
            return False
        return True


class ConfigurationError(ValueError):
    """A setting of :func:`configure` (an argument or an ``OTEL_*`` variable) that cannot
    work; the message names it and says what is expected."""


# The process-wide state (current pipeline, installed providers, observers, proxies)
# lives in one object: otel_botmon._state.STATE.


def configure(
    service_name: str | None = None,
    *,
    service_version: str | None = None,
    bot_name: str | None = None,
    exchange: str | None = None,
    strategy: str | None = None,
    otlp_endpoint: str | None = None,
    otlp_protocol: str | None = None,
    otlp_headers: Mapping[str, str] | str | None = None,
    export_interval_s: float | None = None,
    prometheus_port: int | None = None,
    prometheus_host: str = "127.0.0.1",
    influxdb: Any = None,
    span_processors: Sequence[SpanProcessor] = (),
    metric_readers: Sequence[MetricReader] = (),
    resource_attributes: Mapping[str, str] | None = None,
    set_global: bool = True,
) -> Telemetry:
    """Build (or return) the process's telemetry pipeline.

    Explicit arguments win over the standard ``OTEL_*`` environment variables:
    ``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_EXPORTER_OTLP_ENDPOINT``,
    ``OTEL_EXPORTER_OTLP_PROTOCOL`` (``http/protobuf`` default, or ``grpc``),
    ``OTEL_EXPORTER_OTLP_HEADERS``, ``OTEL_METRIC_EXPORT_INTERVAL`` (milliseconds) and
    ``OTEL_SDK_DISABLED`` (then every provider is a no-op and nothing is exported).

    ``prometheus_port`` serves ``/metrics`` for scraping (the ``prometheus`` extra);
    ``influxdb`` (an ``otel_botmon.exporters.influxdb.InfluxDBSettings`` or a dict of its
    fields) adds an InfluxDB exporter. ``span_processors`` and ``metric_readers`` add
    your own (the testing fixture uses them).

    Raises ConfigurationError (a ValueError), naming the argument or the environment
    variable, for an unknown protocol, an endpoint that is not an http(s) URL with a
    host, or an export interval that is not a positive finite number of seconds the
    platform can wait.
    """
    endpoint = otlp_endpoint or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or None
    protocol = (
        otlp_protocol or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf"
    ).strip().lower()
    if protocol not in _PROTOCOLS:
        source = "otlp_protocol" if otlp_protocol else "OTEL_EXPORTER_OTLP_PROTOCOL"
        raise ConfigurationError(
            f"{source} must be one of {', '.join(_PROTOCOLS)}, got {protocol!r}")
    if endpoint is not None:
        _check_endpoint(
            endpoint, protocol, "otlp_endpoint" if otlp_endpoint else "OTEL_EXPORTER_OTLP_ENDPOINT")
        if otlp_headers is None:
            _check_env_headers()
    if export_interval_s is not None and not _valid_interval_s(export_interval_s):
        raise ConfigurationError(
            f"export_interval_s must be > 0 and finite (seconds, at most {_MAX_WAIT_S:.0f}), "
            f"got {export_interval_s!r}"
        )
    if influxdb is not None:
        # validated before anything running is touched; compared by value (token too)
        from otel_botmon.exporters.influxdb import InfluxDBSettings

        influxdb = InfluxDBSettings.coerce(influxdb)

    observers = tuple(STATE.observers)
    if observers:
        span_processors = (*span_processors, *(o.span_processor for o in observers))
    key = (
        service_name, service_version, bot_name, exchange, strategy, endpoint, protocol,
        _headers_key(otlp_headers), export_interval_s, prometheus_port, prometheus_host,
        influxdb, tuple(map(id, span_processors)), tuple(map(id, metric_readers)),
        tuple(sorted((resource_attributes or {}).items())), set_global,
        tuple(os.environ.get(name, "") for name in _ENV_SETTINGS),
    )
    # Signed URLs in HTTP client log lines (httpx logs each at INFO): scrubbed from now on.
    install_log_redaction()
    with STATE.lock:
        running = STATE.current
        if running is not None and not running._closed:
            if running._key == key:
                return running  # type: ignore[no-any-return]
            logger.info("otel_botmon: configure() called with new settings; rebuilding")
            running.shutdown()
        resource = _build_resource(
            service_name, service_version, bot_name, exchange, strategy, resource_attributes
        )
        disabled = _sdk_disabled()
        if disabled:
            tel = _disabled_telemetry(resource)
        else:
            tel = _build(
                resource, endpoint, protocol, otlp_headers, export_interval_s,
                prometheus_port, prometheus_host, influxdb, span_processors, metric_readers,
            )
        tel._key = key
        STATE.current = tel
        STATE.rebind()
        if set_global and not disabled:
            # After the rebind: instruments bound earlier to OpenTelemetry's default
            # global proxy (recorded before any configure()) are created on the new
            # provider when it becomes the global one, and the SDK keeps the first
            # registration of a name; ours, with this pipeline's callbacks, come first.
            _install_global(tel)
        _register_atexit()
        # A worker of a multiprocessing pool that configures telemetry itself (spawn,
        # forkserver) exports what it holds as it exits, as forked ones do.
        _fork.flush_when_this_worker_exits(tel, _flush_unless_closed)
        for observer in observers:
            observer.built(tel)
        return tel


def _flush_unless_closed(tel: Any) -> None:
    if not tel._closed:
        tel.force_flush(_DEFAULT_EXPORT_TIMEOUT_S)


def add_observer(observer: Any) -> None:
    """Register a pipeline observer (see ``_observers``; used by otel_botmon.testing)."""
    with STATE.lock:
        STATE.observers.append(observer)


def remove_observer(observer: Any) -> None:
    """Unregister a pipeline observer; no error when it was not registered."""
    with STATE.lock:
        if observer in STATE.observers:
            STATE.observers.remove(observer)


def shutdown(timeout_s: float = 5.0) -> bool:
    """Shut down the current pipeline (if any) within ``timeout_s`` seconds."""
    tel = STATE.current
    if tel is None:
        return True
    return bool(tel.shutdown(timeout_s))


def get_telemetry() -> Telemetry | None:
    """The pipeline ``configure()`` built, or None before it (or after ``shutdown()``)."""
    current: Telemetry | None = STATE.current
    return current


def generation() -> int:
    """A number that changes whenever the providers change (otel_botmon itself needs it
    no more: its instruments are proxies that follow the change)."""
    return STATE.version


def _providers() -> tuple[trace_api.TracerProvider, metrics_api.MeterProvider]:
    """The providers otel_botmon records into now: ``configure()``'s, else the global
    ones (no-op when the global one is otel_botmon's own, shut-down provider:
    OpenTelemetry lets the global be set only once)."""
    tel = STATE.current
    if tel is not None:
        return tel.tracer_provider, tel.meter_provider
    tracer_provider = trace_api.get_tracer_provider()
    if tracer_provider is STATE.installed_tracer_provider:
        tracer_provider = trace_api.NoOpTracerProvider()
    meter_provider = metrics_api.get_meter_provider()
    if meter_provider is STATE.installed_meter_provider:
        meter_provider = metrics_api.NoOpMeterProvider()
    return tracer_provider, meter_provider


STATE.resolve = _providers


def get_tracer() -> trace_api.Tracer:
    """otel_botmon's tracer: records into ``configure()``'s provider, else the global
    one (a no-op tracer after ``shutdown()`` when the global one is otel_botmon's own).
    The same object across ``configure()`` calls: it follows the current providers."""
    return tracer()


def tracer() -> ProxyTracer:
    """otel_botmon's proxy tracer (see :func:`get_tracer`)."""
    return STATE.tracer(conv.INSTRUMENTATION_SCOPE, __version__)


def get_meter() -> metrics_api.Meter:
    """otel_botmon's meter: from ``configure()``'s provider, else the global one
    (a no-op meter when that is otel_botmon's own, shut-down provider). A meter of the
    current providers: instruments made on it do not follow a later ``configure()``."""
    return _providers()[1].get_meter(conv.INSTRUMENTATION_SCOPE, __version__)


def instrument(spec: conv.MetricSpec) -> ProxyInstrument:
    """The synchronous instrument for ``spec``: a proxy, made once, that records into
    the current meter's instrument (it follows ``configure()`` and ``shutdown()``)."""
    found = STATE._instruments.get(spec.name)
    if found is not None:
        return found
    if spec.observable:
        raise ValueError(f"{spec.name} is observable; register a callback instead")
    return STATE.instrument(spec.name, lambda meter: _create_instrument(meter, spec))


def proxy_instrument(key: str, factory: Any) -> ProxyInstrument:
    """A proxy for an instrument of one's own (``factory(meter)`` makes it on each meter)."""
    return STATE.instrument(key, factory)


def _create_instrument(meter: metrics_api.Meter, spec: conv.MetricSpec) -> Any:
    if spec.observable:
        raise ValueError(f"{spec.name} is observable; register a callback instead")
    kind = spec.kind
    name, unit, description = spec.name, spec.unit, spec.description
    if kind is conv.InstrumentKind.COUNTER:
        return meter.create_counter(name, unit, description)
    if kind is conv.InstrumentKind.UP_DOWN_COUNTER:
        return meter.create_up_down_counter(name, unit, description)
    if kind is conv.InstrumentKind.HISTOGRAM:
        return meter.create_histogram(name, unit, description)
    return meter.create_gauge(name, unit, description)


# --- building -------------------------------------------------------------------------


def _build_resource(
    service_name: str | None,
    service_version: str | None,
    bot_name: str | None,
    exchange: str | None,
    strategy: str | None,
    extra: Mapping[str, str] | None,
) -> Resource:
    attrs: dict[str, str] = {"host.name": socket.gethostname()}
    if service_version is not None:
        attrs["service.version"] = service_version
    if bot_name:
        attrs[conv.BOT_NAME] = bot_name
    if exchange:
        attrs[conv.BOT_EXCHANGE] = exchange
    if strategy:
        attrs[conv.BOT_STRATEGY] = strategy
    attrs.update(extra or {})
    # Resource.create() merges OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME, with
    # the attributes given here taking precedence over the environment.
    resource = Resource.create(attrs)
    name = service_name or os.environ.get("OTEL_SERVICE_NAME") or None
    current = resource.attributes.get("service.name")
    if name is None and (current is None or str(current).startswith("unknown_service")):
        name = _DEFAULT_SERVICE_NAME
    if name is not None:
        resource = resource.merge(Resource({"service.name": name}))
    if "service.version" not in resource.attributes:
        resource = resource.merge(Resource({"service.version": __version__}))
    return resource


def _cardinality_limits() -> dict[Any, int]:
    """The same attribute-set cap for every instrument class (bounded memory)."""
    from opentelemetry.sdk import metrics as sdk_metrics

    classes = (
        sdk_metrics.Counter, sdk_metrics.UpDownCounter, sdk_metrics.Histogram,
        sdk_metrics._Gauge, sdk_metrics.ObservableCounter, sdk_metrics.ObservableUpDownCounter,
        sdk_metrics.ObservableGauge,
    )
    return {cls: conv.CARDINALITY_LIMIT for cls in classes}


def _views() -> list[View]:
    views = []
    for spec in conv.ALL_METRICS:
        if spec.kind is not conv.InstrumentKind.HISTOGRAM:
            continue
        bounds = conv.SLIPPAGE_BUCKETS_BP if spec.unit == "bp" else conv.DURATION_BUCKETS_S
        views.append(
            View(
                instrument_name=spec.name,
                aggregation=ExplicitBucketHistogramAggregation(boundaries=bounds),
                aggregation_cardinality_limit=conv.CARDINALITY_LIMIT,
            )
        )
    return views


def _build(
    resource: Resource,
    endpoint: str | None,
    protocol: str,
    headers: Mapping[str, str] | str | None,
    export_interval_s: float | None,
    prometheus_port: int | None,
    prometheus_host: str,
    influxdb: Any,
    span_processors: Sequence[SpanProcessor],
    metric_readers: Sequence[MetricReader],
) -> Telemetry:
    memory_reader = InMemoryMetricReader(cardinality_limits=_cardinality_limits())
    readers: list[MetricReader] = [memory_reader, *metric_readers]
    handoffs: list[Any] = []  # what sends on its own thread: flushed after the processors
    tracer_provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    # Every processor and exporter sees spans only after redaction (signed URLs in
    # exception messages, captured API-key headers): otel_botmon.redaction.
    for processor in span_processors:
        tracer_provider.add_span_processor(RedactingSpanProcessor(processor))
    interval_s = _export_interval_s(export_interval_s)
    pushers: list[MetricPusher] = []
    if endpoint:
        span_exporter, metric_exporter = _otlp_exporters(endpoint, protocol, headers)
        # Nothing the bot does may wait on the network: see exporters/handoff.py and
        # exporters/span_export.py.
        span_processor, span_sender = _otlp_span_export(span_exporter, protocol)
        tracer_provider.add_span_processor(span_processor)
        # deltas where the exporter prefers them (OTEL_EXPORTER_OTLP_METRICS_
        # TEMPORALITY_PREFERENCE), computed on the sender thread from cumulative data
        metric_exporter = HandoffMetricExporter(with_preferred_temporality(metric_exporter))
        handoffs += [span_sender, metric_exporter]
        if influxdb is not None and _influxdb_interval_s(influxdb) in (None, interval_s):
            # One collection on the shared interval feeds both exporters.
            metric_exporter = _fanout_with_influxdb(metric_exporter, influxdb)
            influxdb = None
        pushers.append(
            MetricPusher(memory_reader, metric_exporter, interval_s, _DEFAULT_EXPORT_TIMEOUT_S)
        )
    if prometheus_port is not None:
        from otel_botmon.exporters.prometheus import start_prometheus_reader

        # capped as the in-memory reader: one lean trade aggregation serves both
        readers.append(start_prometheus_reader(prometheus_port, host=prometheus_host,
                                               cardinality_limits=_cardinality_limits()))
    if influxdb is not None:
        pushers.append(_influxdb_pusher(memory_reader, influxdb, interval_s))
    meter_provider = MeterProvider(
        metric_readers=readers, resource=resource, views=_views(), shutdown_on_exit=False
    )
    trade_metrics = _lean_trade_metrics(meter_provider, readers, resource)
    tel = Telemetry(
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        metric_reader=memory_reader,
        resource=resource,
        otlp_endpoint=endpoint,
        otlp_protocol=protocol if endpoint else None,
        extra_readers=readers[1:],
        pushers=pushers,
        trade_metrics=trade_metrics,
        _handoffs=handoffs,
    )
    _fork.register(tel)
    return tel


def _lean_trade_metrics(
    meter_provider: MeterProvider, readers: Sequence[MetricReader], resource: Resource
) -> Any:
    """The one aggregation a trade's metrics go to, collected with every reader; None
    (the SDK's instruments) when ``BOTMON_TRADE_METRICS=sdk`` or a reader wants deltas."""
    if _env.read_choice(BOTMON_TRADE_METRICS, ("lean", "sdk"), "lean") == "sdk":
        return None
    from otel_botmon.instrument._trade_metrics import TradeMetrics

    lean = TradeMetrics(resource)
    consumer = meter_provider._measurement_consumer
    hooked: list[MetricReader] = []
    for reader in readers:
        if not lean.hook(reader, consumer.collect):
            for done in hooked:  # all readers or none: one source of truth per pipeline
                done._set_collect_callback(cast(Any, consumer.collect))
            return None
        hooked.append(reader)
    return lean


def _otlp_span_export(exporter: Any, protocol: str) -> tuple[SpanProcessor, Any]:
    """The span processor in front of the OTLP exporter, and what sends on its own
    thread (flushed by :meth:`Telemetry.force_flush` after the processors). Redaction
    runs on that thread, not on the bot's.

    Over HTTP one thread batches, redacts, encodes and posts (exporters/span_export.py):
    spans wait as flat tuples (few objects for the garbage collector, which runs on the
    bot's thread), encoded straight to request bytes (otlp_spans.py). Over gRPC the
    SDK's batch processor hands redacted batches to a sender thread (handoff.py); while
    that sender is stuck and its queue full, spans are dropped before anything keeps
    them alive (kept spans cost the bot's thread garbage-collector time).
    """
    if protocol != "grpc":
        sender = CompactSpanExport(exporter)
        return sender, sender
    handoff = HandoffSpanExporter(exporter)
    batches = BatchSpanProcessor(
        RedactingSpanExporter(handoff), export_timeout_millis=_DEFAULT_EXPORT_TIMEOUT_S * 1000)
    return ShedWhenBacklogged(batches, handoff), handoff


_MAX_WAIT_S = threading.TIMEOUT_MAX
"""The longest interval a thread can wait for (longer ones overflow ``time_t``)."""


def _valid_interval_s(value: object) -> bool:
    return (
        isinstance(value, (int, float)) and not isinstance(value, bool)
        and math.isfinite(value) and 0 < value <= _MAX_WAIT_S
    )


def _export_interval_s(explicit: float | None) -> float:
    """The push interval: argument, else ``OTEL_METRIC_EXPORT_INTERVAL`` (ms), else 60 s."""
    if explicit is not None:
        return explicit
    # inf or 1e400 reached the push thread's wait() and killed it (OverflowError)
    return _env.read_positive_float(
        _env.OTEL_METRIC_EXPORT_INTERVAL, 60.0, scale=1e-3, maximum=_MAX_WAIT_S,
        unit=" of milliseconds",
    )


def _check_endpoint(endpoint: str, protocol: str, source: str) -> None:
    """ValueError naming ``source`` unless ``endpoint`` is an OTLP URL the exporters can
    send to (before, a typo was accepted and every export failed in the log)."""
    from urllib.parse import urlsplit

    from otel_botmon.redaction import redact_text

    expected = ("http(s)://host[:port] (or host:port for grpc)" if protocol == "grpc"
                else "http(s)://host[:port][/path]")
    text = endpoint.strip() if isinstance(endpoint, str) else ""
    if protocol == "grpc" and text and "://" not in text:
        text = "http://" + text
    try:
        parts = urlsplit(text)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        port_ok = False
    if (
        not port_ok or parts.scheme not in ("http", "https") or not parts.hostname
        or any(c.isspace() for c in text)
    ):
        shown = redact_text(endpoint) if isinstance(endpoint, str) else type(endpoint).__name__
        raise ConfigurationError(f"{source} must be {expected}, got {shown!r}")


def _otlp_exporters(
    endpoint: str, protocol: str, headers: Mapping[str, str] | str | None
) -> tuple[Any, Any]:
    parsed_headers = _parse_headers(headers) if headers is not None else None
    timeout = _DEFAULT_EXPORT_TIMEOUT_S
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
            OTLPMetricExporter as GrpcMetricExporter,
        )
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcSpanExporter,
        )

        target = endpoint.split("://", 1)[-1].rstrip("/")
        insecure = not endpoint.startswith("https://")
        return (
            GrpcSpanExporter(
                endpoint=target, insecure=insecure, headers=parsed_headers, timeout=timeout
            ),
            GrpcMetricExporter(
                endpoint=target, insecure=insecure, headers=parsed_headers, timeout=timeout
            ),
        )
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
        OTLPMetricExporter as HttpMetricExporter,
    )

    from otel_botmon.exporters.otlp_answers import read_answers
    from otel_botmon.exporters.otlp_http import OTLPSpanExporter as HttpSpanExporter
    from otel_botmon.exporters.otlp_http import lean_transport

    base = endpoint.rstrip("/")
    exporters = []
    for cls, url, signal in ((HttpSpanExporter, f"{base}/v1/traces", "spans"),
                             (HttpMetricExporter, f"{base}/v1/metrics", "metrics")):
        transport = lean_transport(url)
        extra = {} if transport is None else {"_transport": transport}
        exporter = cls(endpoint=url, headers=parsed_headers, timeout=timeout, **extra)
        read_answers(exporter, signal)  # type: ignore[arg-type]  # partial success, Retry-After
        exporters.append(exporter)
    return exporters[0], exporters[1]


def _influxdb_interval_s(settings: Any) -> float | None:
    from otel_botmon.exporters.influxdb import InfluxDBSettings

    return InfluxDBSettings.coerce(settings).export_interval_s


def _fanout_with_influxdb(otlp_exporter: Any, settings: Any) -> Any:
    from otel_botmon.exporters.fanout import FanoutMetricExporter
    from otel_botmon.exporters.influxdb import InfluxDBMetricExporter

    # InfluxDB first: its export() only queues, while OTLP's waits on the network.
    return FanoutMetricExporter([InfluxDBMetricExporter.from_settings(settings), otlp_exporter])


def _influxdb_pusher(
    reader: InMemoryMetricReader, settings: Any, interval_s: float
) -> MetricPusher:
    from otel_botmon.exporters.influxdb import InfluxDBMetricExporter, InfluxDBSettings

    settings = InfluxDBSettings.coerce(settings)
    exporter = InfluxDBMetricExporter.from_settings(settings)
    return MetricPusher(
        reader, exporter, settings.export_interval_s or interval_s, _DEFAULT_EXPORT_TIMEOUT_S,
        name="botmon-influxdb-push",
    )


# What the SDK's exporters accept in OTEL_EXPORTER_OTLP_*HEADERS: a token, "=", then
# printable ASCII but '"', ',', ';' and backslash. The SDK logs any other item whole,
# and an item is often "authorization=Bearer <token>" with a typo in it.
_ENV_HEADER_ITEM = re.compile(
    r"[!#$%&'*+.^_`|~0-9A-Za-z-]+[ \t]*=[ \x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*")
_HEADER_ITEM = re.compile(r"[^=]+=.*", re.DOTALL)  # otlp_headers: any value, given as is
_HEADER_VARIABLES = (
    _env.OTEL_EXPORTER_OTLP_HEADERS, "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
)


def _bad_header_item(headers: str, item_pattern: re.Pattern[str]) -> str | None:
    """Which item of the comma-separated ``headers`` is not ``name=value`` (e.g. "item 2
    of 3"), or None. Never the item's text: it may hold a token."""
    items = headers.split(",")
    for position, item in enumerate(items, 1):
        if item.strip() and not item_pattern.fullmatch(item.strip()):
            return f"item {position} of {len(items)}"
    return None


def _check_env_headers() -> None:
    """ConfigurationError naming the variable when an OTLP headers variable that the
    exporters will read is malformed (they would log the item, secret and all, and
    export without it)."""
    for name in _HEADER_VARIABLES:
        bad = _bad_header_item(os.environ.get(name, ""), _ENV_HEADER_ITEM)
        if bad is not None:
            raise ConfigurationError(
                f"{name} must be name=value pairs separated by commas (values URL-encoded); "
                f"{bad} is not (its text is not shown: it may hold a secret)"
            )


def _parse_headers(headers: Mapping[str, str] | str) -> dict[str, str]:
    if isinstance(headers, Mapping):
        return dict(headers)
    bad = _bad_header_item(headers, _HEADER_ITEM)
    if bad is not None:
        raise ConfigurationError(
            "otlp_headers must be 'name=value' pairs separated by commas; "
            f"{bad} is not (its text is not shown: it may hold a secret)"
        )
    parsed: dict[str, str] = {}
    for item in headers.split(","):
        if item.strip():
            name, _, value = item.partition("=")
            parsed[name.strip()] = value.strip()
    return parsed


def _headers_key(headers: Mapping[str, str] | str | None) -> Any:
    if isinstance(headers, Mapping):
        return tuple(sorted(headers.items()))
    return headers


def _sdk_disabled() -> bool:
    return _env.read_bool(_env.OTEL_SDK_DISABLED)


def _disabled_telemetry(resource: Resource) -> Telemetry:
    # The in-memory reader stays usable (it reports no metrics) so code that reads it,
    # like the alert evaluator, needs no special case.
    reader = InMemoryMetricReader()
    MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    return Telemetry(
        tracer_provider=trace_api.NoOpTracerProvider(),
        meter_provider=metrics_api.NoOpMeterProvider(),
        metric_reader=reader,
        resource=resource,
        enabled=False,
    )


def _install_global(tel: Telemetry) -> None:
    installed = False
    if isinstance(trace_api.get_tracer_provider(), trace_api.ProxyTracerProvider):
        trace_api.set_tracer_provider(tel.tracer_provider)
        STATE.installed_tracer_provider = tel.tracer_provider
        installed = True
    if type(metrics_api.get_meter_provider()).__name__ == "_ProxyMeterProvider":
        metrics_api.set_meter_provider(tel.meter_provider)
        STATE.installed_meter_provider = tel.meter_provider
        installed = True
    if not installed:
        logger.info(
            "otel_botmon: the application already installed global OpenTelemetry "
            "providers; leaving them in place and recording botmon telemetry into its own"
        )


def _forget(tel: Telemetry) -> None:
    with STATE.lock:
        if STATE.current is tel:
            STATE.current = None
            STATE.rebind()


def _register_atexit() -> None:
    if not STATE.atexit_registered:
        atexit.register(shutdown, _DEFAULT_EXPORT_TIMEOUT_S)
        STATE.atexit_registered = True


def _count_internal_error(component: str, error_type: str) -> None:
    instrument(conv.INTERNAL_ERRORS).add(
        1, {conv.INTERNAL_COMPONENT: component, conv.ERROR_TYPE: error_type})


_internal.set_error_counter(_count_internal_error)
