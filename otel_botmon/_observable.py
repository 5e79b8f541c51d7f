"""One observable instrument per metric, fed by any number of live sources.

The OpenTelemetry SDK keeps the callbacks of the *first* registration of an instrument
name on a meter and silently drops those passed to later registrations. Two
``HealthChecker`` objects in one process (a user's and the ``SystemMonitor``'s, or one
per test) would therefore lose each other's gauges if each created its own instrument.
``ObservableFanout`` registers the instrument once with the telemetry state, which
registers it again on every meter ``configure()`` builds (``otel_botmon._state``), and
lets each owner add a weakly held source to it.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from opentelemetry.metrics import CallbackOptions, Meter, Observation

from otel_botmon import _fork
from otel_botmon._internal import report_internal_error
from otel_botmon._state import STATE, ObservableRegistration
from otel_botmon.conventions import InstrumentKind, MetricSpec

Source = Callable[[], Iterable[Observation]]


def create_observable(meter: Meter, spec: MetricSpec, callback: Source) -> Any:
    """Create the asynchronous instrument ``spec`` asks for on ``meter``.

    Raises ``ValueError`` when ``spec`` is not an observable metric of the contract.
    """
    if not spec.observable:
        raise ValueError(f"{spec.name} is not an observable metric in conventions.py")

    def observe(_options: CallbackOptions) -> Iterable[Observation]:
        return callback()

    if spec.kind is InstrumentKind.GAUGE:
        return meter.create_observable_gauge(
            spec.name, [observe], unit=spec.unit, description=spec.description
        )
    if spec.kind is InstrumentKind.COUNTER:
        return meter.create_observable_counter(
            spec.name, [observe], unit=spec.unit, description=spec.description
        )
    if spec.kind is InstrumentKind.UP_DOWN_COUNTER:
        return meter.create_observable_up_down_counter(
            spec.name, [observe], unit=spec.unit, description=spec.description
        )
    raise ValueError(f"{spec.name}: no observable instrument for kind {spec.kind.value}")


def _create(meter: Meter, spec: MetricSpec, callback: Callable[[CallbackOptions],
            Iterable[Observation]]) -> Any:
    return create_observable(meter, spec, lambda: callback(CallbackOptions()))


class ObservableFanout:
    """The instrument for ``spec`` on the current telemetry meter, reading every source.

    Sources are held weakly (bound methods through ``weakref.WeakMethod``), so an owner
    that is garbage-collected simply stops reporting. A source that raises is reported
    through ``report_internal_error`` and skipped; the other sources still report.
    """

    def __init__(self, spec: MetricSpec) -> None:
        self._spec = spec
        self._lock = threading.Lock()
        self._sources: list[weakref.ref[Any] | weakref.WeakMethod[Any]] = []
        self._registration: ObservableRegistration | None = None
        _fork.register(self)

    def _after_fork_in_child(self) -> None:
        """A collection on another thread may have held the lock at the fork."""
        self._lock = threading.Lock()

    def add(self, source: Source) -> None:
        """Report ``source``'s observations (idempotent) and make sure the instrument exists."""
        ref: weakref.ref[Any] | weakref.WeakMethod[Any]
        ref = weakref.WeakMethod(source) if hasattr(source, "__self__") else weakref.ref(source)
        with self._lock:
            # Drop the refs of collected owners so the list stays as long as the live ones.
            self._sources = [r for r in self._sources if r() is not None]
            if ref not in self._sources:
                self._sources.append(ref)
        self.ensure_registered()

    def remove(self, source: Source) -> None:
        """Stop reporting ``source`` (no error when it was never added)."""
        with self._lock:
            self._sources = [r for r in self._sources if r() not in (None, source)]

    def ensure_registered(self) -> None:
        """Register the instrument (once: the state moves it onto every new meter)."""
        with self._lock:
            if self._registration is not None:
                return
            spec = self._spec
            self._registration = ObservableRegistration(
                lambda meter, callback: _create(meter, spec, callback), self._observe)
        STATE.observe(self._registration)

    def _observe(self) -> list[Observation]:
        with self._lock:
            sources = [r() for r in self._sources]
        observations: list[Observation] = []
        for source in sources:
            if source is None:
                continue
            try:
                observations.extend(source())
            except Exception as exc:  # a broken source must not hide the others
                report_internal_error(f"observe.{self._spec.name}", exc)
        return observations
