"""The one process-wide telemetry state, and proxies that follow it.

``configure()`` and ``shutdown()`` change which providers otel_botmon records into. Code
that records (trades, exchange calls, HTTP clients, health checks, alert gauges, custom
metrics) holds **proxies** created once: a :class:`ProxyInstrument` forwards ``add`` /
``record`` / ``set`` to the real instrument of the current meter, a :class:`ProxyTracer`
forwards to the current tracer, and an :class:`ObservableRegistration` is registered
again on every new meter. When the state changes, :meth:`TelemetryState.rebind` points
every proxy at the new providers (the OpenTelemetry API's ``_ProxyMeter`` pattern), so
nothing polls a generation counter on the bot's call path: a proxy's ``add`` *is* the
real instrument's bound method.

Imports only the OpenTelemetry API (no SDK, nothing of otel_botmon above ``_fork``).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from opentelemetry import metrics as metrics_api
from opentelemetry import trace as trace_api
from opentelemetry.metrics import CallbackOptions, Meter, Observation

from otel_botmon import _fork
from otel_botmon.__about__ import __version__
from otel_botmon.conventions import INSTRUMENTATION_SCOPE

__all__ = ["STATE", "ObservableRegistration", "ProxyInstrument", "ProxyMeterProvider",
           "ProxyTracer", "ProxyTracerProvider", "TelemetryState"]

Factory = Callable[[Meter], Any]


class ProxyInstrument:
    """A synchronous instrument that records into the current meter's instrument.

    ``factory(meter)`` creates the real one; it runs again whenever the providers change.
    """

    def __init__(self, factory: Factory) -> None:
        self._factory = factory
        self._real: Any = None

    def _bind(self, meter: Meter) -> None:
        real = self._factory(meter)
        self._real = real
        # Bound methods copied onto the proxy: recording costs one call, as without it.
        for name in ("add", "record", "set"):
            method = getattr(real, name, None)
            if method is not None:
                setattr(self, name, method)

    def __getattr__(self, name: str) -> Any:  # only for names _bind did not set
        return getattr(self._real, name)


class ProxyTracer(trace_api.Tracer):
    """otel_botmon's tracer: forwards to the current provider's tracer."""

    def __init__(self, name: str, version: str | None) -> None:
        self._name = name
        self._version = version
        self._real: trace_api.Tracer = trace_api.NoOpTracer()

    def _bind(self, provider: trace_api.TracerProvider) -> None:
        real = provider.get_tracer(self._name, self._version)
        self._real = real
        self.start_span = real.start_span  # type: ignore[method-assign]
        self.start_as_current_span = real.start_as_current_span  # type: ignore[method-assign]

    def start_span(self, *args: Any, **kwargs: Any) -> trace_api.Span:
        return self._real.start_span(*args, **kwargs)

    def start_as_current_span(self, *args: Any, **kwargs: Any) -> Any:
        return self._real.start_as_current_span(*args, **kwargs)


class ObservableRegistration:
    """An observable instrument registered on every meter the state moves to.

    ``create(meter, callback)`` registers it; ``callback()`` yields the observations.
    Kept alive by its owner (the state holds it weakly). With ``versioned`` the callback
    gets the state version its meter was bound at (``callback(version)``), so values of
    one pipeline can be kept out of the next one's collections.
    """

    def __init__(self, create: Callable[[Meter, Callable[[CallbackOptions],
                                                        Iterable[Observation]]], Any],
                 callback: Callable[..., Iterable[Observation]],
                 versioned: bool = False) -> None:
        self._create = create
        self._callback = callback
        self._versioned = versioned
        self._keep: Any = None

    def _observe(self, _options: CallbackOptions) -> Iterable[Observation]:
        return self._callback()

    def _bind(self, meter: Meter) -> None:
        if not self._versioned:
            self._keep = self._create(meter, self._observe)
            return
        version = STATE.version

        def observe(_options: CallbackOptions) -> Iterable[Observation]:
            return self._callback(version)

        self._keep = self._create(meter, observe)


class TelemetryState:
    """Everything ``configure()`` changes, in one object (``STATE``).

    ``current`` is the running pipeline (``telemetry.Telemetry``) or None; ``version``
    counts changes (for callers that want to know that one happened).
    """

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.current: Any = None
        self.version = 0
        self.atexit_registered = False
        # Test captures (otel_botmon.testing): see telemetry.configure().
        self.observers: list[Any] = []
        # The providers configure() installed as OpenTelemetry's globals, if it did.
        self.installed_tracer_provider: Any = None
        self.installed_meter_provider: Any = None
        # Set by telemetry: () -> the (tracer, meter) providers of the current state.
        self.resolve: Callable[[], tuple[trace_api.TracerProvider,
                                         metrics_api.MeterProvider]] = _global_providers
        self._instruments: dict[str, ProxyInstrument] = {}
        self._tracers: dict[tuple[str, str | None], ProxyTracer] = {}
        self._observables: weakref.WeakSet[ObservableRegistration] = weakref.WeakSet()
        self._listeners: list[Callable[[], None]] = []
        self._bound = False

    # --- proxies ----------------------------------------------------------------------

    def instrument(self, key: str, factory: Factory) -> ProxyInstrument:
        """The proxy for ``key`` (created by ``factory`` on each meter), made once."""
        found = self._instruments.get(key)
        if found is None:
            with self.lock:
                found = self._instruments.get(key)
                if found is None:
                    found = ProxyInstrument(factory)
                    found._bind(self._meter())
                    self._instruments[key] = found
        return found

    def tracer(self, name: str, version: str | None) -> ProxyTracer:
        key = (name, version)
        found = self._tracers.get(key)
        if found is None:
            with self.lock:
                found = self._tracers.get(key)
                if found is None:
                    found = ProxyTracer(name, version)
                    found._bind(self.resolve()[0])
                    self._tracers[key] = found
        return found

    def observe(self, registration: ObservableRegistration) -> None:
        """Register ``registration`` on the current meter and on every later one."""
        with self.lock:
            self._observables.add(registration)
            registration._bind(self._meter())

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` after every change of providers (under the state lock)."""
        with self.lock:
            self._listeners.append(listener)

    def _meter(self) -> Meter:
        return self.resolve()[1].get_meter(INSTRUMENTATION_SCOPE, __version__)

    # --- changes ----------------------------------------------------------------------

    def rebind(self) -> None:
        """Point every proxy at the current providers; call with ``lock`` held."""
        self.version += 1
        provider, meter_provider = self.resolve()
        meter = meter_provider.get_meter(INSTRUMENTATION_SCOPE, __version__)
        for tracer in self._tracers.values():
            tracer._bind(provider)
        for proxy in self._instruments.values():
            proxy._bind(meter)
        for registration in list(self._observables):
            registration._bind(meter)
        for listener in self._listeners:
            listener()

    def _after_fork_in_child(self) -> None:
        self.lock = threading.RLock()


def _global_providers() -> tuple[trace_api.TracerProvider, metrics_api.MeterProvider]:
    return trace_api.get_tracer_provider(), metrics_api.get_meter_provider()


class ProxyTracerProvider(trace_api.TracerProvider):
    """Hands out tracers that follow the state (for instrumentations that take a
    provider once, like the OpenTelemetry contrib HTTP instrumentations)."""

    def get_tracer(self, instrumenting_module_name: str,
                   instrumenting_library_version: str | None = None,
                   schema_url: str | None = None, attributes: Any = None) -> trace_api.Tracer:
        return STATE.tracer(instrumenting_module_name, instrumenting_library_version)


class _ProxyMeter(Meter):
    """A meter whose instruments follow the state (one proxy per scope and name)."""

    def __init__(self, name: str, version: str | None, schema_url: str | None) -> None:
        super().__init__(name, version, schema_url)

    def _scoped(self) -> Meter:
        return STATE.resolve()[1].get_meter(self.name, self.version, self.schema_url)

    def _sync(self, kind: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        name = kwargs.get("name", args[0] if args else "")
        return STATE.instrument(
            f"{self.name}|{kind}|{name}",
            lambda _meter: getattr(self._scoped(), kind)(*args, **kwargs))

    def _observable(self, kind: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        name = kwargs.pop("name", args[0] if args else "")
        rest = args[1:] if args else ()
        callbacks = list(kwargs.pop("callbacks", rest[0] if rest else None) or ())
        rest = rest[1:]

        def observe() -> Iterable[Observation]:
            found: list[Observation] = []
            for callback in callbacks:
                found.extend(callback(CallbackOptions()))
            return found

        registration = ObservableRegistration(
            lambda _meter, callback: getattr(self._scoped(), kind)(
                name, [callback], *rest, **kwargs), observe)
        STATE.observe(registration)
        return registration

    def create_counter(self, *args: Any, **kwargs: Any) -> Any:
        return self._sync("create_counter", args, kwargs)

    def create_up_down_counter(self, *args: Any, **kwargs: Any) -> Any:
        return self._sync("create_up_down_counter", args, kwargs)

    def create_histogram(self, *args: Any, **kwargs: Any) -> Any:
        return self._sync("create_histogram", args, kwargs)

    def create_gauge(self, *args: Any, **kwargs: Any) -> Any:
        return self._sync("create_gauge", args, kwargs)

    def create_observable_counter(self, *args: Any, **kwargs: Any) -> Any:
        return self._observable("create_observable_counter", args, kwargs)

    def create_observable_up_down_counter(self, *args: Any, **kwargs: Any) -> Any:
        return self._observable("create_observable_up_down_counter", args, kwargs)

    def create_observable_gauge(self, *args: Any, **kwargs: Any) -> Any:
        return self._observable("create_observable_gauge", args, kwargs)


class ProxyMeterProvider(metrics_api.MeterProvider):
    """Hands out meters whose instruments follow the state (see ProxyTracerProvider)."""

    def get_meter(self, name: str, version: str | None = None,
                  schema_url: str | None = None, attributes: Any = None) -> Meter:
        return _ProxyMeter(name, version, schema_url)


STATE = TelemetryState()
_fork.register(STATE)
TRACER_PROVIDER = ProxyTracerProvider()
METER_PROVIDER = ProxyMeterProvider()
