"""Component health checks: the seed guide's ``HealthChecker`` as OpenTelemetry gauges.

Each registered check is an ``async def check(component)`` returning
``{'status': HealthStatus, 'message': str, 'metrics': dict}``. Once started, every check
runs in its own asyncio task on its own interval, bounded by its own timeout, so one
slow or failing check never delays another. The latest result of every component is
exported as ``botmon.health.status{health.component}`` (0 healthy, 1 degraded,
2 critical, 3 unknown) and every run's duration as ``botmon.health.check.duration``.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import math
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from opentelemetry.metrics import Observation

from otel_botmon import _fork, telemetry
from otel_botmon._internal import report_internal_error
from otel_botmon._observable import ObservableFanout
from otel_botmon.conventions import (
    HEALTH_CHECK_DURATION,
    HEALTH_COMPONENT,
    HEALTH_STATUS,
    HealthValue,
)
from otel_botmon.redaction import redact_text


class HealthStatus(str, Enum):
    """Health of one component, or of the whole bot.

    Ordered by urgency for ``worst()``: HEALTHY < UNKNOWN < DEGRADED < CRITICAL (a
    component nobody could check yet is more worrying than a healthy one, but less
    than one known to be degraded).
    """

    HEALTHY = "healthy"
    DEGRADED = "degraded"
    CRITICAL = "critical"
    UNKNOWN = "unknown"

    def __str__(self) -> str:
        # f"{status}" prints "healthy" (like 3.11's StrEnum), as the guide's
        # print(f"Overall health: {status.overall_health}") expects.
        return self.value

    @property
    def gauge_value(self) -> int:
        """The value of ``botmon.health.status`` for this status."""
        return HealthValue[self.name].value

    @property
    def rank(self) -> int:
        return _URGENCY.index(self)

    @classmethod
    def worst(cls, statuses: Iterable[HealthStatus]) -> HealthStatus:
        """The most urgent of ``statuses``; UNKNOWN when there are none."""
        ranked = sorted(statuses, key=lambda s: s.rank)
        return ranked[-1] if ranked else cls.UNKNOWN


_URGENCY = (HealthStatus.HEALTHY, HealthStatus.UNKNOWN, HealthStatus.DEGRADED,
            HealthStatus.CRITICAL)


@dataclass(frozen=True)
class HealthCheckResult:
    """One run of one health check."""

    component: str
    status: HealthStatus
    message: str
    metrics: Mapping[str, Any] = field(default_factory=dict)
    checked_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    duration_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (ISO-8601 UTC time, the status as its string value)."""
        return {
            "component": self.component,
            "status": self.status.value,
            "message": self.message,
            "metrics": dict(self.metrics),
            "checked_at": self.checked_at.isoformat(),
            "duration_s": self.duration_s,
        }


CheckFunction = Callable[["HealthComponent"], Awaitable[Any]]


@dataclass(eq=False)
class HealthComponent:
    """A registered check as its function sees it (the ``component`` argument).

    ``history`` is a ring buffer of the most recent results, newest last.
    """

    name: str
    interval_s: float
    timeout_s: float
    check: CheckFunction = field(repr=False)
    history: deque[HealthCheckResult] = field(repr=False, default_factory=deque)
    consecutive_failures: int = 0
    # The run in progress (shared by concurrent callers) and a timed-out run that
    # ignored its cancellation.
    _running: asyncio.Task[HealthCheckResult] | None = field(
        default=None, init=False, repr=False)
    _abandoned: asyncio.Task[Any] | None = field(default=None, init=False, repr=False)

    @property
    def last_result(self) -> HealthCheckResult | None:
        return self.history[-1] if self.history else None

    @property
    def status(self) -> HealthStatus:
        last = self.last_result
        return last.status if last else HealthStatus.UNKNOWN


def _check_interval(what: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} must be a number of seconds, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{what} must be a finite number of seconds > 0, got {value!r}")
    return float(value)


def _is_async_callable(fn: object) -> bool:
    if inspect.iscoroutinefunction(fn):
        return True
    call = getattr(type(fn), "__call__", None)  # noqa: B004 - objects with async __call__
    return call is not None and inspect.iscoroutinefunction(call)


class HealthChecker:
    """Runs registered health checks and keeps their results.

    ``default_interval_s`` and ``default_timeout_s`` apply to checks registered without
    their own; ``history_size`` bounds each component's result history. Invalid values
    raise ``ValueError`` here, not later in a background task.

    A check that raises, returns something malformed or outlives its timeout yields a
    CRITICAL result whose message names the check and the reason; nothing is raised to
    the caller. A timed-out check is cancelled; one that makes a *blocking* call stalls
    the whole event loop (no timeout can interrupt that), so it is reported CRITICAL
    afterwards: blocking work belongs in ``asyncio.to_thread``.
    """

    def __init__(
        self,
        *,
        default_interval_s: float = 30.0,
        default_timeout_s: float = 10.0,
        history_size: int = 100,
    ) -> None:
        self.default_interval_s = _check_interval("default_interval_s", default_interval_s)
        self.default_timeout_s = _check_interval("default_timeout_s", default_timeout_s)
        if isinstance(history_size, bool) or not isinstance(history_size, int) or history_size < 1:
            raise ValueError(f"history_size must be an int >= 1, got {history_size!r}")
        self.history_size = history_size
        self._components: dict[str, HealthComponent] = {}
        self._loops: dict[str, asyncio.Task[None]] = {}
        self._running = False
        self._loop_thread: int | None = None
        _STATUS_GAUGE.add(self._observe_status)
        _fork.register(self)

    def _after_fork_in_child(self) -> None:
        """The check tasks ran in the parent's event loop: unless the fork came from that
        loop's thread they are gone, and ``start()`` in the child starts new ones."""
        if not _fork.loop_survived(self._loop_thread):
            self._running = False
            self._loops = {}
            self._loop_thread = None

    # --- registration -------------------------------------------------------------

    def register_health_check(
        self,
        name: str,
        check: CheckFunction,
        *,
        interval_s: float | None = None,
        timeout_s: float | None = None,
    ) -> HealthComponent:
        """Register ``check`` under ``name`` and return its component.

        Raises ``ValueError`` for an empty or duplicate name or an invalid interval or
        timeout, and ``TypeError`` when ``check`` is not an async function (or an object
        with an ``async def __call__``). When the checker is already running the check
        starts right away.
        """
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"health check name must be a non-empty string, got {name!r}")
        if name in self._components:
            raise ValueError(f"health check {name!r} is already registered")
        if not _is_async_callable(check):
            raise TypeError(
                f"health check {name!r} must be an async function "
                f"(async def check(component)), got {check!r}"
            )
        component = HealthComponent(
            name=name,
            interval_s=_check_interval(
                f"interval_s of {name!r}",
                self.default_interval_s if interval_s is None else interval_s,
            ),
            timeout_s=_check_interval(
                f"timeout_s of {name!r}",
                self.default_timeout_s if timeout_s is None else timeout_s,
            ),
            check=check,
            history=deque(maxlen=self.history_size),
        )
        self._components[name] = component
        if self._running:
            self._start_loop(component)
        return component

    def unregister_health_check(self, name: str) -> bool:
        """Forget ``name`` and stop its task; False when it was not registered."""
        component = self._components.pop(name, None)
        loop_task = self._loops.pop(name, None)
        if loop_task is not None:
            loop_task.cancel()
        return component is not None

    @property
    def components(self) -> dict[str, HealthComponent]:
        """The registered components by name (a copy)."""
        return dict(self._components)

    # --- results ------------------------------------------------------------------

    def get_component_health(self, name: str) -> HealthCheckResult:
        """The latest result of ``name``; UNKNOWN "not checked yet" before its first run.

        Raises ``KeyError`` naming the registered components when ``name`` is unknown.
        """
        component = self._component(name)
        return component.last_result or _not_checked(name)

    def get_all_health(self) -> dict[str, HealthCheckResult]:
        """The latest result of every registered component."""
        return {name: c.last_result or _not_checked(name) for name, c in self._components.items()}

    def get_history(self, name: str) -> list[HealthCheckResult]:
        """Up to ``history_size`` results of ``name``, oldest first."""
        return list(self._component(name).history)

    def overall_status(self) -> HealthStatus:
        """The worst component status; UNKNOWN when no check is registered."""
        return HealthStatus.worst(c.status for c in self._components.values())

    # --- running ------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._running

    async def start(self) -> None:
        """Start one task per check in the running loop (idempotent)."""
        if self._running:
            return
        self._running = True
        self._loop_thread = threading.get_ident()
        _STATUS_GAUGE.ensure_registered()
        for component in self._components.values():
            self._start_loop(component)

    async def stop(self) -> None:
        """Cancel every check task and wait for them; results are kept."""
        self._running = False
        tasks: list[asyncio.Future[Any]] = list(self._loops.values())
        self._loops.clear()
        loop = asyncio.get_running_loop()
        for component in self._components.values():
            # The loop tasks await their runs through shield(); cancel the runs too so
            # no check keeps its socket or thread busy after stop().
            run = component._running
            if run is not None and not run.done() and run.get_loop() is loop:
                tasks.append(run)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def run_check(self, name: str) -> HealthCheckResult:
        """Run ``name``'s check now and return its result (KeyError when unknown).

        If a run of that check is already in progress, its result is returned instead
        of starting a second one.
        """
        return await self._run(self._component(name))

    async def force_check(self) -> dict[str, HealthCheckResult]:
        """Run every check now, concurrently, and return the fresh results by name."""
        components = list(self._components.values())
        results = await asyncio.gather(*(self._run(c) for c in components))
        return {c.name: r for c, r in zip(components, results, strict=True)}

    # --- internals ----------------------------------------------------------------

    def _component(self, name: str) -> HealthComponent:
        try:
            return self._components[name]
        except KeyError:
            known = ", ".join(sorted(self._components)) or "none"
            raise KeyError(f"no health check named {name!r} (registered: {known})") from None

    def _start_loop(self, component: HealthComponent) -> None:
        task = asyncio.get_running_loop().create_task(
            self._loop(component), name=f"botmon-health-{component.name}"
        )
        self._loops[component.name] = task

    async def _loop(self, component: HealthComponent) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            try:
                await self._run(component)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the loop itself must survive anything
                report_internal_error("observe.health", exc)
            # Start-to-start scheduling: a check's own duration does not drift its period.
            next_at = max(next_at + component.interval_s, loop.time())
            await asyncio.sleep(next_at - loop.time())

    async def _run(self, component: HealthComponent) -> HealthCheckResult:
        running = component._running
        if running is not None and not running.done() and (
            running.get_loop() is asyncio.get_running_loop()
        ):
            return await asyncio.shield(running)
        task = asyncio.get_running_loop().create_task(self._execute(component))
        component._running = task
        return await asyncio.shield(task)

    async def _execute(self, component: HealthComponent) -> HealthCheckResult:
        started = time.perf_counter()
        status, message, metrics = await self._call_check(component)
        duration = time.perf_counter() - started
        result = HealthCheckResult(
            component=component.name, status=status, message=message,
            metrics=metrics, duration_s=duration,
        )
        component.history.append(result)
        component.consecutive_failures = (
            component.consecutive_failures + 1 if status is HealthStatus.CRITICAL else 0
        )
        self._record_duration(component.name, duration)
        return result

    async def _call_check(
        self, component: HealthComponent
    ) -> tuple[HealthStatus, str, Mapping[str, Any]]:
        name, timeout = component.name, component.timeout_s
        abandoned = component._abandoned
        if abandoned is not None and abandoned.get_loop() is not asyncio.get_running_loop():
            # Left behind in a loop that is gone (stop() then start() in a new loop).
            component._abandoned = abandoned = None
        if abandoned is not None and not abandoned.done():
            # Starting another copy next to one that ignores cancellation would pile up
            # hung coroutines; report the hang again instead.
            return (HealthStatus.CRITICAL,
                    f"check {name!r} is still hanging after it timed out and was cancelled",
                    {})
        started = time.perf_counter()
        try:
            task = asyncio.ensure_future(component.check(component))
        except Exception as exc:
            return HealthStatus.CRITICAL, f"check {name!r} raised {_describe(exc)}", {}
        try:
            done, _ = await asyncio.wait({task}, timeout=timeout)
        except asyncio.CancelledError:
            if not task.done() or task.cancelled():
                task.cancel()
                raise
            # The check finished in the loop step that cancelled us (stop() right after
            # it returned): its result is complete, so it is kept rather than lost.
            done = {task}
        elapsed = time.perf_counter() - started
        if done and elapsed > timeout:
            # Finished, yet after its timeout: only possible when the check kept the
            # event loop from running the timeout, i.e. it made a blocking call.
            return (HealthStatus.CRITICAL,
                    f"check {name!r} took {elapsed:.2f} s, past its {timeout:g} s timeout, "
                    f"blocking the event loop (run blocking calls via asyncio.to_thread)", {})
        if not done:
            task.cancel()
            task.add_done_callback(_consume)
            component._abandoned = task
            return (HealthStatus.CRITICAL,
                    f"check {name!r} timed out after {timeout:g} s", {})
        if task.cancelled():
            return HealthStatus.CRITICAL, f"check {name!r} was cancelled", {}
        error = task.exception()
        if error is not None:
            return HealthStatus.CRITICAL, f"check {name!r} raised {_describe(error)}", {}
        try:
            return parse_check_result(name, task.result())
        except Exception as exc:  # a result object whose own methods raise
            return _malformed(name, f"reading it raised {_describe(exc)}")

    def _record_duration(self, name: str, duration: float) -> None:
        try:
            _STATUS_GAUGE.ensure_registered()
            telemetry.instrument(HEALTH_CHECK_DURATION).record(
                duration, {HEALTH_COMPONENT: name}
            )
        except Exception as exc:
            report_internal_error("observe.health", exc)

    def _observe_status(self) -> list[Observation]:
        return [
            Observation(c.status.gauge_value, {HEALTH_COMPONENT: name})
            for name, c in list(self._components.items())
        ]


_STATUS_GAUGE = ObservableFanout(HEALTH_STATUS)


def observe_health_status(source: Callable[[], Iterable[Observation]]) -> None:
    """Add ``source``'s observations to ``botmon.health.status`` at every collection.

    For a component whose status is known without running a check (a heartbeat read in a
    loop with no asyncio, as in Freqtrade). ``source`` is held weakly: pass a bound method
    of an object that lives as long as the component does.
    """
    _STATUS_GAUGE.add(source)


def parse_check_result(name: str, raw: object) -> tuple[HealthStatus, str, Mapping[str, Any]]:
    """Turn what a check returned into (status, message, metrics).

    Accepts a mapping with ``status`` (a ``HealthStatus`` or its name or value as a
    string) and optional ``message`` (str) and ``metrics`` (mapping), or a bare
    ``HealthStatus``. Anything else is CRITICAL with a message saying what was wrong.
    """
    if isinstance(raw, HealthStatus):
        return raw, "", {}
    if not isinstance(raw, Mapping):
        return _malformed(name, f"expected a dict with 'status', got {type(raw).__name__}")
    if "status" not in raw:
        return _malformed(name, f"'status' is missing (keys: {sorted(map(str, raw))})")
    status = _parse_status(raw["status"])
    if status is None:
        return _malformed(name, f"'status' {raw['status']!r} is not a HealthStatus")
    message = raw.get("message", "")
    if message is None:
        message = ""
    if not isinstance(message, str):
        return _malformed(name, f"'message' must be a str, got {type(message).__name__}")
    metrics = raw.get("metrics") or {}
    if not isinstance(metrics, Mapping):
        return _malformed(name, f"'metrics' must be a dict, got {type(metrics).__name__}")
    return status, message, dict(metrics)


def _parse_status(value: object) -> HealthStatus | None:
    if isinstance(value, HealthStatus):
        return value
    if isinstance(value, str):
        key = value.strip()
        for status in HealthStatus:
            if key.lower() == status.value:
                return status
    return None


def _malformed(name: str, why: str) -> tuple[HealthStatus, str, Mapping[str, Any]]:
    return HealthStatus.CRITICAL, f"check {name!r} returned a malformed result: {why}", {}


def _not_checked(name: str) -> HealthCheckResult:
    return HealthCheckResult(component=name, status=HealthStatus.UNKNOWN,
                             message="not checked yet")


def _describe(exc: BaseException) -> str:
    # Exception text can carry secrets (a URL with a signature, a token): scrub it.
    text = redact_text(str(exc))
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _consume(task: asyncio.Future[Any]) -> None:
    # Retrieve the outcome of an abandoned check so asyncio does not log
    # "exception was never retrieved" for it.
    with contextlib.suppress(asyncio.CancelledError, Exception):
        task.exception()
