"""Host and process metrics from psutil, as OpenTelemetry observable instruments.

The SDK calls every observable callback once per metric reader per collection: with
the OTLP reader and the always-on in-memory reader that is twice per export. The
observer therefore takes one psutil sample per interval and every callback reads that
cached sample; a second reader adds no psutil calls.

Metrics (names from ``conventions``): ``system.cpu.utilization``,
``system.memory.utilization``, ``system.filesystem.utilization`` per mountpoint,
``system.network.io`` by direction, ``process.cpu.utilization``,
``process.memory.usage`` and, when started inside a running event loop,
``botmon.runtime.event_loop.lag``.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

import psutil
from opentelemetry.metrics import Meter, Observation

from otel_botmon import _fork
from otel_botmon._internal import report_internal_error
from otel_botmon._observable import ObservableFanout, create_observable
from otel_botmon.conventions import (
    EVENT_LOOP_LAG,
    PROCESS_CPU_UTILIZATION,
    PROCESS_MEMORY_USAGE,
    SYSTEM_CPU_UTILIZATION,
    SYSTEM_FILESYSTEM_UTILIZATION,
    SYSTEM_MEMORY_UTILIZATION,
    SYSTEM_NETWORK_IO,
    MetricSpec,
)

# Attribute keys come from the contract rows themselves, so they cannot drift from it.
_MOUNTPOINT = SYSTEM_FILESYSTEM_UTILIZATION.attributes[0]
_DIRECTION = SYSTEM_NETWORK_IO.attributes[0]
# Values of network.io.direction in the OpenTelemetry semantic conventions.
_TRANSMIT = "transmit"
_MIN_CPU_WINDOW_S = 0.05
_RECEIVE = "receive"


class HostSample(NamedTuple):
    """One psutil reading of the host and this process. Percentages are 0..100.

    Immutable, so every reader thread can share it (a named tuple: cheaper to build
    than a frozen dataclass, which matters once per tick).

    ``process_cpu_percent`` is relative to one core (it can exceed 100 on several
    cores). ``event_loop_lag_s`` is the worst lag measured over the last interval,
    None when the observer was not started inside an event loop.
    """

    taken_at: datetime
    monotonic: float
    cpu_percent: float
    memory_percent: float
    disk_percent: dict[str, float]
    network_bytes_sent: int
    network_bytes_received: int
    process_cpu_percent: float
    process_memory_bytes: int
    event_loop_lag_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view for the dashboard (ISO-8601 UTC time)."""
        return {
            "taken_at": self.taken_at.isoformat(),
            "cpu_percent": self.cpu_percent,
            "memory_percent": self.memory_percent,
            "disk_percent": dict(self.disk_percent),
            "network_bytes_sent": self.network_bytes_sent,
            "network_bytes_received": self.network_bytes_received,
            "process_cpu_percent": self.process_cpu_percent,
            "process_memory_bytes": self.process_memory_bytes,
            "event_loop_lag_s": self.event_loop_lag_s,
        }


def discover_mountpoints() -> tuple[str, ...]:
    """``/`` and the mountpoints of other physical filesystems, one per filesystem.

    Containers list bind-mounted files (``/etc/hosts``) of the host's disk and may hide
    an overlay root, so filesystems are told apart by ``st_dev`` and the shortest
    mountpoint of each is kept, with ``/`` always first.
    """
    partitions = sorted((p.mountpoint for p in psutil.disk_partitions(all=False)), key=len)
    candidates = ["/", *partitions]
    seen: set[int] = set()
    mountpoints: list[str] = []
    for mountpoint in candidates:
        try:
            device = os.stat(mountpoint).st_dev
        except OSError:
            continue
        if device not in seen:
            seen.add(device)
            mountpoints.append(mountpoint)
    return tuple(mountpoints) or ("/",)


def _busy_and_total(times: Any) -> tuple[float, float]:
    """(busy, total) CPU seconds of a ``psutil.cpu_times()`` reading, as psutil counts them.

    Guest time is already inside user/nice on Linux, and waiting on I/O is idle.
    """
    total = sum(times) - getattr(times, "guest", 0.0) - getattr(times, "guest_nice", 0.0)
    return total - times.idle - getattr(times, "iowait", 0.0), total


def _check_positive(what: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} must be a number of seconds, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{what} must be a finite number of seconds > 0, got {value!r}")
    return float(value)


@dataclass
class _LagWindow:
    """Lag measurements of the last interval, written by the loop, read by collectors."""

    span_s: float
    points: deque[tuple[float, float]] = field(default_factory=deque)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, now: float, lag: float) -> None:
        with self.lock:
            self.points.append((now, lag))
            while self.points and self.points[0][0] < now - self.span_s:
                self.points.popleft()

    def worst(self) -> float | None:
        if not self.points:  # no probe running: skip the lock
            return None
        with self.lock:
            return max((lag for _, lag in self.points), default=None)


class HostObserver:
    """Samples psutil at most once per ``interval_s`` and exports the sample as metrics.

    ``meter``: where to create the instruments; by default the current telemetry
    meter, followed to the new one after ``telemetry.configure()`` (by the event-loop
    probe, or the next time a fresh sample is taken). ``mountpoints``: filesystems to
    report; by default ``/`` and every other physical one. ``loop_lag_period_s``: how
    often the event-loop probe wakes up.

    Raises ``ValueError`` for a non-positive or non-finite interval or period.
    """

    def __init__(
        self,
        meter: Meter | None = None,
        interval_s: float = 5.0,
        *,
        mountpoints: Sequence[str] | None = None,
        loop_lag_period_s: float = 0.25,
    ) -> None:
        self.interval_s = _check_positive("interval_s", interval_s)
        self.loop_lag_period_s = _check_positive("loop_lag_period_s", loop_lag_period_s)
        self._meter = meter
        self._mountpoints = tuple(mountpoints) if mountpoints is not None else None
        self._process = psutil.Process()
        # process.cpu.utilization is a share of all CPUs (semantic conventions).
        self._cpu_count = max(psutil.cpu_count() or 1, 1)
        self._lock = threading.Lock()
        self._sample: HostSample | None = None
        self._primed_at: float | None = None
        self._cpu_times = (0.0, 0.0)
        self._started = False
        self._lag = _LagWindow(span_s=self.interval_s)
        self._lag_task: asyncio.Task[None] | None = None
        self._sources: list[tuple[MetricSpec, Callable[[], Iterable[Observation]]]] = [
            (SYSTEM_CPU_UTILIZATION, self._observe_cpu),
            (SYSTEM_MEMORY_UTILIZATION, self._observe_memory),
            (SYSTEM_FILESYSTEM_UTILIZATION, self._observe_filesystem),
            (SYSTEM_NETWORK_IO, self._observe_network),
            (PROCESS_CPU_UTILIZATION, self._observe_process_cpu),
            (PROCESS_MEMORY_USAGE, self._observe_process_memory),
            (EVENT_LOOP_LAG, self._observe_loop_lag),
        ]
        _fork.register(self)

    def _after_fork_in_child(self) -> None:
        """A forked child is another process: its own psutil handle (the parent's one
        reports the parent's CPU and memory), none of the parent's samples or CPU
        readings, and new locks (a collection on another thread of the parent may have
        held them at the fork: the child's collections would wait forever). The lag
        probe ran in the parent's event loop: the child's lag is unknown until probed."""
        self._lock = threading.Lock()
        self._process = psutil.Process()
        self._sample = None
        self._primed_at = None
        self._cpu_times = (0.0, 0.0)
        self._lag = _LagWindow(span_s=self.interval_s)
        self._lag_task = None

    # --- lifecycle ----------------------------------------------------------------

    @property
    def started(self) -> bool:
        return self._started

    def start(self) -> None:
        """Register the instruments and prime the CPU counters (idempotent).

        Called inside a running event loop, it also starts the event-loop lag probe.
        """
        if self._started:
            return
        self._started = True
        self._prime()
        if self._meter is not None:
            for spec, source in self._sources:
                create_observable(self._meter, spec, source)
        else:
            for spec, source in self._sources:
                _FANOUTS[spec.name].add(source)
        with contextlib.suppress(RuntimeError):  # no running loop: a sync bot
            loop = asyncio.get_running_loop()
            self._lag_task = loop.create_task(self._probe_loop_lag(), name="botmon-loop-lag")

    def stop(self) -> None:
        """Stop reporting (the instruments stay registered but observe nothing)."""
        self._started = False
        if self._meter is None:
            for spec, source in self._sources:
                _FANOUTS[spec.name].remove(source)
        if self._lag_task is not None:
            self._lag_task.cancel()
            self._lag_task = None

    # --- sampling -----------------------------------------------------------------

    def latest(self) -> HostSample:
        """The current sample, taking a new one if the cached one is older than the interval.

        Works without ``start()``. psutil errors propagate (they mean the host cannot be
        read at all); metric callbacks report them as internal errors instead.
        """
        sample = self._sample  # fast path without the lock: every callback lands here
        if sample is not None and time.monotonic() - sample.monotonic < self.interval_s:
            return sample
        with self._lock:
            sample = self._sample
            now = time.monotonic()
            if sample is None or now - sample.monotonic >= self.interval_s:
                sample = self._take_sample(now)
                self._sample = sample
        self._follow_telemetry()  # once per interval at most: only the slow path gets here
        return sample

    def sample_now(self) -> HostSample:
        """Take and cache a fresh sample regardless of its age."""
        with self._lock:
            self._sample = self._take_sample(time.monotonic())
            return self._sample

    def _prime(self) -> None:
        # CPU percentages compare against the previous reading; without one the first
        # value would be 0.0, so take that reading now and not in the first sample.
        with self._lock:
            if self._primed_at is None:
                self._prime_locked()

    def _prime_locked(self) -> None:
        self._cpu_times = _busy_and_total(psutil.cpu_times())
        self._process.cpu_percent(None)
        self._primed_at = time.monotonic()

    def _system_cpu_percent(self) -> float:
        # psutil.cpu_percent(None) keeps its "previous reading" in module state, so two
        # users in one process would shorten each other's window; keep our own.
        busy, total = _busy_and_total(psutil.cpu_times())
        last_busy, last_total = self._cpu_times
        self._cpu_times = (busy, total)
        if total <= last_total:
            return 0.0
        return min(100.0, max(0.0, (busy - last_busy) / (total - last_total) * 100.0))

    def _take_sample(self, now: float) -> HostSample:
        if self._primed_at is None:
            self._prime_locked()
        assert self._primed_at is not None
        window = time.monotonic() - self._primed_at
        if window < _MIN_CPU_WINDOW_S:
            # CPU percentages are deltas since priming; over a near-zero window they are
            # noise, so the very first sample waits (once) for a short real window.
            time.sleep(_MIN_CPU_WINDOW_S - window)
        if self._mountpoints is None:
            self._mountpoints = discover_mountpoints()
        disks: dict[str, float] = {}
        for mountpoint in self._mountpoints:
            try:
                disks[mountpoint] = psutil.disk_usage(mountpoint).percent
            except OSError:  # unmounted since discovery: report the others
                continue
        network = psutil.net_io_counters()
        process = self._process
        with process.oneshot():
            process_cpu = process.cpu_percent(None)
            process_rss = process.memory_info().rss
        return HostSample(
            taken_at=datetime.now(UTC),
            monotonic=now,
            cpu_percent=self._system_cpu_percent(),
            memory_percent=psutil.virtual_memory().percent,
            disk_percent=disks,
            network_bytes_sent=network.bytes_sent if network else 0,
            network_bytes_received=network.bytes_recv if network else 0,
            process_cpu_percent=process_cpu,
            process_memory_bytes=process_rss,
            event_loop_lag_s=self._lag.worst(),
        )

    # --- event-loop lag -----------------------------------------------------------

    async def _probe_loop_lag(self) -> None:
        loop = asyncio.get_running_loop()
        period = self.loop_lag_period_s
        while True:
            before = loop.time()
            await asyncio.sleep(period)
            after = loop.time()
            self._lag.add(after, max(0.0, after - before - period))
            self._follow_telemetry()

    def _follow_telemetry(self) -> None:
        # After telemetry.configure() builds new providers, register the instruments on
        # the new meter. Runs from the lag probe (async bots) and whenever a new sample
        # is taken for someone other than the old pipeline (sync bots, health checks).
        if self._meter is not None or not self._started:
            return
        try:
            for spec, _ in self._sources:
                _FANOUTS[spec.name].ensure_registered()
        except Exception as exc:
            report_internal_error("observe.host", exc)

    # --- callbacks (one per instrument, all reading the same sample) --------------

    def _current(self) -> HostSample | None:
        if not self._started:
            return None
        try:
            return self.latest()
        except Exception as exc:  # e.g. psutil.AccessDenied in a locked-down container
            report_internal_error("observe.host", exc)
            return None

    def _observe_cpu(self) -> list[Observation]:
        s = self._current()
        return [Observation(s.cpu_percent / 100.0)] if s else []

    def _observe_memory(self) -> list[Observation]:
        s = self._current()
        return [Observation(s.memory_percent / 100.0)] if s else []

    def _observe_filesystem(self) -> list[Observation]:
        s = self._current()
        if s is None:
            return []
        return [Observation(pct / 100.0, {_MOUNTPOINT: mp}) for mp, pct in s.disk_percent.items()]

    def _observe_network(self) -> list[Observation]:
        s = self._current()
        if s is None:
            return []
        return [
            Observation(s.network_bytes_sent, {_DIRECTION: _TRANSMIT}),
            Observation(s.network_bytes_received, {_DIRECTION: _RECEIVE}),
        ]

    def _observe_process_cpu(self) -> list[Observation]:
        s = self._current()
        return [Observation(s.process_cpu_percent / 100.0 / self._cpu_count)] if s else []

    def _observe_process_memory(self) -> list[Observation]:
        s = self._current()
        return [Observation(s.process_memory_bytes)] if s else []

    def _observe_loop_lag(self) -> list[Observation]:
        s = self._current()
        if s is None or s.event_loop_lag_s is None:
            return []
        return [Observation(s.event_loop_lag_s)]


_FANOUTS: dict[str, ObservableFanout] = {
    spec.name: ObservableFanout(spec)
    for spec in (
        SYSTEM_CPU_UTILIZATION, SYSTEM_MEMORY_UTILIZATION, SYSTEM_FILESYSTEM_UTILIZATION,
        SYSTEM_NETWORK_IO, PROCESS_CPU_UTILIZATION, PROCESS_MEMORY_USAGE, EVENT_LOOP_LAG,
    )
}
