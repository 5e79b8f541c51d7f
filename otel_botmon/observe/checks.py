"""Built-in health checks for what the seed guide monitors.

Every check is an object with ``async def __call__(component)`` returning the seed's
``{'status', 'message', 'metrics'}`` dict, so it registers like a custom check::

    checker.register_health_check("exchange_api", ExchangeApiCheck(), interval_s=30)

Checks report DEGRADED before CRITICAL wherever there is a warning level. The HTTP
checks live in ``http_checks`` and are re-exported here. Thresholds are validated at
construction (``ValueError`` naming the argument). Messages never contain URL
credentials, query strings or tokens.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Sequence
from typing import Any

from otel_botmon.observe.health import HealthComponent, HealthStatus
from otel_botmon.observe.host import HostObserver, HostSample
from otel_botmon.observe.http_checks import ExchangeApiCheck, WebUICheck
from otel_botmon.observe.levels import (
    CheckResult,
    check_levels,
    http_url,
    positive,
    result,
    safe_url,
)

__all__ = [
    "ExchangeApiCheck",
    "InfluxDBCheck",
    "NetworkCheck",
    "SystemResourcesCheck",
    "TradingEngineCheck",
    "WebUICheck",
]


class InfluxDBCheck:
    """InfluxDB answers ``/ping`` (influxdb-client's ``InfluxDBClient.ping()``).

    HEALTHY when it answers within ``latency_warning_s``, DEGRADED when slower,
    CRITICAL when it does not answer. ``token`` is only handed to the client.
    """

    def __init__(
        self,
        url: str = "http://localhost:8086",
        *,
        token: str | None = None,
        org: str | None = None,
        latency_warning_s: float = 1.0,
        request_timeout_s: float = 5.0,
    ) -> None:
        self.url = http_url("url", url)
        self.latency_warning_s = positive("latency_warning_s", latency_warning_s)
        self.request_timeout_s = positive("request_timeout_s", request_timeout_s)
        self._token, self._org = token, org
        self._client: Any = None

    def __repr__(self) -> str:
        return f"InfluxDBCheck(url={safe_url(self.url)!r})"

    async def __call__(self, component: HealthComponent) -> CheckResult:
        # influxdb-client is synchronous: keep its socket I/O off the event loop.
        return await asyncio.to_thread(self._ping)

    def _ping(self) -> CheckResult:
        # Imported here: the client library is heavy and only this check needs it.
        from influxdb_client.client.influxdb_client import InfluxDBClient

        if self._client is None:
            options: dict[str, Any] = {
                "url": self.url, "token": self._token, "org": self._org,
                "timeout": int(self.request_timeout_s * 1000),
            }
            self._client = InfluxDBClient(**options)
        started = time.perf_counter()
        ok = self._client.ping()
        latency = time.perf_counter() - started
        if not ok:
            return result(HealthStatus.CRITICAL,
                          f"InfluxDB at {safe_url(self.url)} did not answer /ping: "
                          f"{self._why_not()}", latency_s=latency)
        if latency > self.latency_warning_s:
            return result(HealthStatus.DEGRADED,
                          f"InfluxDB answered /ping in {latency * 1000:.0f} ms "
                          f"(slower than {self.latency_warning_s:g} s)", latency_s=latency)
        return result(HealthStatus.HEALTHY,
                      f"InfluxDB answered /ping in {latency * 1000:.0f} ms", latency_s=latency)

    def _why_not(self) -> str:
        # ping() swallows the reason; version() hits the same endpoint and raises it.
        try:
            self._client.version()
        except Exception as exc:
            return type(exc).__name__ + _errno_text(exc)
        return "unexpected answer"

    def close(self) -> None:
        """Close the underlying client (a later run opens a new one)."""
        if self._client is not None:
            self._client.close()
            self._client = None


def _errno_text(exc: Exception) -> str:
    text = str(exc)
    marker = text.find("[Errno")
    return f" ({text[marker:]})" if marker >= 0 else ""


class NetworkCheck:
    """DNS resolution and a TCP connect to each ``host:port`` target, concurrently.

    HEALTHY when every target connects within ``latency_warning_s``; DEGRADED when some
    fail or are slow; CRITICAL when all fail.
    """

    def __init__(
        self,
        targets: Sequence[tuple[str, int]] = (("api.binance.com", 443),),
        *,
        latency_warning_s: float = 1.0,
        connect_timeout_s: float = 5.0,
    ) -> None:
        pairs: list[tuple[str, int]] = []
        for target in targets:
            if not isinstance(target, tuple) or len(target) != 2:
                raise ValueError(f"each target must be a (host, port) pair, got {target!r}")
            host, port = target
            if not isinstance(host, str) or not host:
                raise ValueError(f"target host must be a non-empty string, got {host!r}")
            if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
                raise ValueError(f"target port of {host!r} must be 1..65535, got {port!r}")
            pairs.append((host, port))
        if not pairs:
            raise ValueError("targets must name at least one (host, port) pair")
        self.targets = tuple(pairs)
        self.latency_warning_s = positive("latency_warning_s", latency_warning_s)
        self.connect_timeout_s = positive("connect_timeout_s", connect_timeout_s)

    async def __call__(self, component: HealthComponent) -> CheckResult:
        outcomes = await asyncio.gather(*(self._probe(h, p) for h, p in self.targets))
        failed = [f"{t}: {why}" for t, _, why in outcomes if why]
        slow = [t for t, secs, why in outcomes if not why and secs > self.latency_warning_s]
        metrics: dict[str, Any] = {"targets": len(outcomes),
                                   "reachable": len(outcomes) - len(failed)}
        for target, secs, why in outcomes:
            if not why:
                metrics[f"{target}.connect_s"] = secs
        if len(failed) == len(outcomes):
            return result(HealthStatus.CRITICAL, "no target reachable: " + "; ".join(failed),
                          **metrics)
        if failed:
            return result(HealthStatus.DEGRADED, "unreachable: " + "; ".join(failed), **metrics)
        if slow:
            return result(HealthStatus.DEGRADED, "slow to connect: " + ", ".join(slow),
                          **metrics)
        return result(HealthStatus.HEALTHY, f"{len(outcomes)} target(s) reachable", **metrics)

    async def _probe(self, host: str, port: int) -> tuple[str, float, str]:
        """(target, seconds for DNS + connect, failure reason or "")."""
        target = f"{host}:{port}"
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        try:
            infos = await asyncio.wait_for(
                loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), self.connect_timeout_s
            )
        except (TimeoutError, OSError) as exc:
            return target, 0.0, f"DNS resolution failed ({_os_reason(exc)})"
        address = str(infos[0][4][0])
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(address, port), self.connect_timeout_s
            )
        except (TimeoutError, OSError) as exc:
            return target, 0.0, f"TCP connect to {address} failed ({_os_reason(exc)})"
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass
        return target, time.perf_counter() - started, ""


def _os_reason(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return type(exc).__name__


class TradingEngineCheck:
    """A dead-man's switch: the bot calls ``heartbeat()``; silence turns the check red.

    Older than ``max_age_s`` is CRITICAL, older than half of it DEGRADED. Before the
    first heartbeat the check is UNKNOWN until ``max_age_s`` has passed since it was
    created, then CRITICAL. ``clock`` (monotonic seconds) is injectable for tests.
    """

    def __init__(self, max_age_s: float = 60.0, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_age_s = positive("max_age_s", max_age_s)
        self._clock = clock
        self._created = clock()
        self._last: float | None = None
        self._beats = 0

    def heartbeat(self) -> None:
        """Record that the trading loop is alive. Cheap and thread-safe; call it often."""
        self._last = self._clock()
        self._beats += 1

    def age_s(self) -> float | None:
        """Seconds since the last heartbeat, None before the first one."""
        last = self._last
        return None if last is None else self._clock() - last

    async def __call__(self, component: HealthComponent) -> CheckResult:
        return self.evaluate()

    def evaluate(self) -> CheckResult:
        """The check's result now, without an event loop (what ``await check(c)`` gives)."""
        age = self.age_s()
        if age is None:
            waited = self._clock() - self._created
            if waited > self.max_age_s:
                return result(HealthStatus.CRITICAL,
                              f"no heartbeat from the trading engine in {waited:.0f} s "
                              f"(limit {self.max_age_s:g} s)", heartbeats=0)
            return result(HealthStatus.UNKNOWN, "waiting for the first heartbeat",
                          heartbeats=0)
        metrics = {"heartbeat_age_s": age, "heartbeats": self._beats}
        if age > self.max_age_s:
            return result(HealthStatus.CRITICAL,
                          f"trading engine heartbeat is stale: {age:.1f} s old "
                          f"(limit {self.max_age_s:g} s)", **metrics)
        if age > self.max_age_s / 2:
            return result(HealthStatus.DEGRADED,
                          f"trading engine heartbeat is late: {age:.1f} s old "
                          f"(limit {self.max_age_s:g} s)", **metrics)
        return result(HealthStatus.HEALTHY, f"last heartbeat {age:.1f} s ago", **metrics)


class SystemResourcesCheck:
    """CPU, memory and disk usage against warning and critical percentages.

    Defaults are the seed's ``MonitoringConfig`` thresholds. Reads ``observer``'s cached
    sample when given (sharing its psutil reading), else its own ``HostObserver``.
    Above a warning level is DEGRADED, above a critical one CRITICAL.
    """

    def __init__(
        self,
        *,
        cpu_warning: float = 75.0,
        cpu_critical: float = 90.0,
        memory_warning: float = 80.0,
        memory_critical: float = 95.0,
        disk_warning: float = 85.0,
        disk_critical: float = 95.0,
        observer: HostObserver | None = None,
    ) -> None:
        check_levels("cpu", cpu_warning, cpu_critical, percent=True)
        check_levels("memory", memory_warning, memory_critical, percent=True)
        check_levels("disk", disk_warning, disk_critical, percent=True)
        self.levels = {
            "cpu": (float(cpu_warning), float(cpu_critical)),
            "memory": (float(memory_warning), float(memory_critical)),
            "disk": (float(disk_warning), float(disk_critical)),
        }
        self._observer = observer or HostObserver(interval_s=1.0)

    async def __call__(self, component: HealthComponent) -> CheckResult:
        sample = await asyncio.to_thread(self._observer.latest)
        return self.evaluate(sample)

    def evaluate(self, sample: HostSample) -> CheckResult:
        """The verdict for one sample (what ``__call__`` returns)."""
        readings = [("cpu", "cpu", sample.cpu_percent),
                    ("memory", "memory", sample.memory_percent)]
        readings += [("disk", f"disk {mp}", pct) for mp, pct in sample.disk_percent.items()]
        status, problems = HealthStatus.HEALTHY, []
        for kind, label, value in readings:
            warning, critical = self.levels[kind]
            if value > critical:
                status = HealthStatus.CRITICAL
                problems.append(f"{label} {value:.1f}% > critical {critical:g}%")
            elif value > warning:
                status = HealthStatus.worst([status, HealthStatus.DEGRADED])
                problems.append(f"{label} {value:.1f}% > warning {warning:g}%")
        metrics = {"cpu_percent": sample.cpu_percent, "memory_percent": sample.memory_percent}
        metrics.update({f"disk_percent {mp}": pct for mp, pct in sample.disk_percent.items()})
        if problems:
            return result(status, "; ".join(problems), **metrics)
        summary = ", ".join(f"{label} {value:.0f}%" for _, label, value in readings)
        return result(HealthStatus.HEALTHY, summary, **metrics)
