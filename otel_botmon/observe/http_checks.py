"""HTTP health checks: the exchange REST API and the web UI, through ``httpx``.

Without an injected ``client`` every run opens and closes its own ``httpx.AsyncClient``
(a client is bound to the event loop it first ran in), sharing one TLS context.
Messages name the URL without credentials or query string.
"""

from __future__ import annotations

import functools
import ssl
import time
from collections.abc import Callable
from typing import Any

import certifi
import httpx

from otel_botmon.observe.health import HealthComponent, HealthStatus
from otel_botmon.observe.levels import (
    CheckResult,
    check_levels,
    http_url,
    level_for,
    positive,
    result,
    safe_url,
)
from otel_botmon.redaction import redact_text


@functools.lru_cache(maxsize=1)
def _tls_context() -> ssl.SSLContext:
    """httpx's default verification (certifi's CA bundle), built once.

    Loading the CA bundle costs ~25 ms of CPU; doing it for every client of every
    check run would dominate the monitor's own CPU use.
    """
    return ssl.create_default_context(cafile=certifi.where())


class _HttpCheck:
    """Shared HTTP plumbing: one GET with its latency and a failure message."""

    def __init__(self, request_timeout_s: float, client: httpx.AsyncClient | None) -> None:
        self.request_timeout_s = positive("request_timeout_s", request_timeout_s)
        # A client bound to one event loop cannot serve another, so without an injected
        # client every run opens (and closes) its own.
        self._client = client

    async def __call__(self, component: HealthComponent) -> CheckResult:
        if self._client is not None:
            return await self._check(self._client)
        async with self._new_client() as client:
            return await self._check(client)

    async def _check(self, client: httpx.AsyncClient) -> CheckResult:
        raise NotImplementedError

    async def _get(self, client: httpx.AsyncClient, url: str) -> tuple[httpx.Response, float]:
        started = time.perf_counter()
        response = await client.get(url, timeout=self.request_timeout_s)
        return response, time.perf_counter() - started

    def _new_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=self.request_timeout_s, verify=_tls_context())

    def _failure(self, what: str, url: str, exc: Exception) -> CheckResult:
        if isinstance(exc, httpx.TimeoutException):
            why = f"timed out after {self.request_timeout_s:g} s"
        else:
            text = redact_text(str(exc))
            why = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
        return result(HealthStatus.CRITICAL, f"{what} {safe_url(url)} failed: {why}")


class ExchangeApiCheck(_HttpCheck):
    """Exchange REST API reachability, latency and clock drift (Binance paths by default).

    GETs ``base_url + ping_path``; then, unless ``time_path`` is None, reads the
    server time (milliseconds in the JSON field ``server_time_field``) and compares it
    with this host's clock. CRITICAL on a connection error, a timeout, HTTP 5xx or any
    other non-2xx except 429 (rate limited: DEGRADED), latency above
    ``latency_critical_s`` or drift above ``drift_critical_s``; DEGRADED above the
    warning levels. Binance rejects signed requests whose timestamp is off by more than
    ``recvWindow`` (5 s by default), hence the default critical drift.
    """

    def __init__(
        self,
        base_url: str = "https://api.binance.com",
        *,
        ping_path: str = "/api/v3/ping",
        time_path: str | None = "/api/v3/time",
        server_time_field: str = "serverTime",
        latency_warning_s: float = 1.0,
        latency_critical_s: float = 5.0,
        drift_warning_s: float = 1.0,
        drift_critical_s: float = 5.0,
        request_timeout_s: float = 10.0,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(request_timeout_s, client)
        self.base_url = http_url("base_url", base_url).rstrip("/")
        check_levels("latency", latency_warning_s, latency_critical_s)
        check_levels("drift", drift_warning_s, drift_critical_s)
        self.ping_path, self.time_path = ping_path, time_path
        self.server_time_field = server_time_field
        self.latency_warning_s, self.latency_critical_s = latency_warning_s, latency_critical_s
        self.drift_warning_s, self.drift_critical_s = drift_warning_s, drift_critical_s
        self._clock = clock

    async def _check(self, client: httpx.AsyncClient) -> CheckResult:
        url = self.base_url + self.ping_path
        try:
            response, latency = await self._get(client, url)
        except httpx.HTTPError as exc:
            return self._failure("exchange API ping", url, exc)
        code = response.status_code
        if code == 429:
            return result(HealthStatus.DEGRADED, "exchange API is rate limiting (HTTP 429)",
                          latency_s=latency, status_code=code)
        if not response.is_success:
            return result(HealthStatus.CRITICAL,
                          f"exchange API ping {safe_url(url)} returned HTTP {code}",
                          latency_s=latency, status_code=code)
        status = level_for(latency, self.latency_warning_s, self.latency_critical_s)
        notes = [f"ping {latency * 1000:.0f} ms"]
        metrics: dict[str, Any] = {"latency_s": latency, "status_code": code}
        if self.time_path is not None:
            drift_status, note, drift = await self._drift(client)
            status = HealthStatus.worst([status, drift_status])
            notes.append(note)
            if drift is not None:
                metrics["clock_drift_s"] = drift
        if status is not HealthStatus.HEALTHY and latency > self.latency_warning_s:
            notes[0] += f" (above {self.latency_warning_s * 1000:.0f} ms)"
        return {"status": status, "message": "exchange API " + ", ".join(notes),
                "metrics": metrics}

    async def _drift(self, client: httpx.AsyncClient) -> tuple[HealthStatus, str, float | None]:
        url = self.base_url + (self.time_path or "")
        before = self._clock()
        try:
            response, _ = await self._get(client, url)
        except httpx.HTTPError as exc:
            return HealthStatus.CRITICAL, self._failure("server time", url, exc)["message"], None
        after = self._clock()
        if not response.is_success:
            return (HealthStatus.CRITICAL,
                    f"server time {safe_url(url)} returned HTTP {response.status_code}", None)
        try:
            server_s = float(response.json()[self.server_time_field]) / 1000.0
        except (ValueError, KeyError, TypeError):
            return (HealthStatus.DEGRADED,
                    f"server time response has no numeric {self.server_time_field!r}", None)
        # The server stamped its time somewhere between our two readings: use the middle.
        drift = server_s - (before + after) / 2.0
        level = level_for(abs(drift), self.drift_warning_s, self.drift_critical_s)
        note = f"clock drift {drift * 1000:+.0f} ms"
        if level is not HealthStatus.HEALTHY:
            critical = level is HealthStatus.CRITICAL
            limit = self.drift_critical_s if critical else self.drift_warning_s
            note += f" (beyond {limit:g} s)"
        return level, note, drift


class WebUICheck(_HttpCheck):
    """A web page answers: 2xx/3xx is HEALTHY (DEGRADED when slow), else CRITICAL."""

    def __init__(
        self,
        url: str,
        *,
        latency_warning_s: float = 1.0,
        latency_critical_s: float = 5.0,
        request_timeout_s: float = 10.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(request_timeout_s, client)
        self.url = http_url("url", url)
        check_levels("latency", latency_warning_s, latency_critical_s)
        self.latency_warning_s, self.latency_critical_s = latency_warning_s, latency_critical_s

    async def _check(self, client: httpx.AsyncClient) -> CheckResult:
        try:
            response, latency = await self._get(client, self.url)
        except httpx.HTTPError as exc:
            return self._failure("web UI", self.url, exc)
        code = response.status_code
        if code >= 400:
            return result(HealthStatus.CRITICAL,
                          f"web UI {safe_url(self.url)} returned HTTP {code}",
                          latency_s=latency, status_code=code)
        status = level_for(latency, self.latency_warning_s, self.latency_critical_s)
        message = f"web UI answered HTTP {code} in {latency * 1000:.0f} ms"
        if status is not HealthStatus.HEALTHY:
            message += f" (slower than {self.latency_warning_s:g} s)"
        return result(status, message, latency_s=latency, status_code=code)
