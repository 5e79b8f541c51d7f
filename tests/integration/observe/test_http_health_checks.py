"""Exchange API, web UI and network checks against real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from otel_botmon.conventions import HEALTH_STATUS
from otel_botmon.observe.checks import ExchangeApiCheck, NetworkCheck, WebUICheck
from otel_botmon.observe.health import HealthChecker, HealthStatus
from tests.integration.observe.conftest import HttpServer, Route
from tests.services import free_port

pytestmark = pytest.mark.integration

PING, TIME = "/api/v3/ping", "/api/v3/time"


def binance(server: HttpServer, *, drift_s: float = 0.0, ping: Route | None = None) -> None:
    """Answer like Binance's /api/v3/ping and /api/v3/time, the clock off by ``drift_s``."""
    server.routes[PING] = ping or Route(200, {})
    server.routes[TIME] = Route(
        200, lambda: {"serverTime": int((time.time() + drift_s) * 1000)}
    )


async def run(check: Any) -> dict[str, Any]:
    result: dict[str, Any] = await check(None)
    return result


# --- exchange API ---------------------------------------------------------------------


async def test_exchange_healthy_with_latency_and_drift(http_server: HttpServer) -> None:
    binance(http_server)

    result = await run(ExchangeApiCheck(http_server.url, latency_warning_s=3.0,
                                        latency_critical_s=10.0))

    assert result["status"] is HealthStatus.HEALTHY, result["message"]
    assert result["metrics"]["status_code"] == 200
    assert 0 < result["metrics"]["latency_s"] < 1.0
    assert abs(result["metrics"]["clock_drift_s"]) < 0.5
    assert http_server.hits == {PING: 1, TIME: 1}


async def test_exchange_5xx_is_critical(http_server: HttpServer) -> None:
    binance(http_server, ping=Route(503, {"msg": "maintenance"}))

    result = await run(ExchangeApiCheck(http_server.url))

    assert result["status"] is HealthStatus.CRITICAL
    assert result["message"] == f"exchange API ping {http_server.url}{PING} returned HTTP 503"


async def test_exchange_rate_limited_is_degraded(http_server: HttpServer) -> None:
    binance(http_server, ping=Route(429, {"msg": "too many requests"}))

    result = await run(ExchangeApiCheck(http_server.url))

    assert result["status"] is HealthStatus.DEGRADED
    assert "HTTP 429" in result["message"]


async def test_exchange_slow_ping_is_degraded(http_server: HttpServer) -> None:
    binance(http_server, ping=Route(200, {}, delay_s=0.3))

    result = await run(ExchangeApiCheck(
        http_server.url, latency_warning_s=0.1, latency_critical_s=3.0))

    assert result["status"] is HealthStatus.DEGRADED
    assert "(above 100 ms)" in result["message"]
    assert result["metrics"]["latency_s"] >= 0.3


async def test_exchange_very_slow_ping_is_critical(http_server: HttpServer) -> None:
    binance(http_server, ping=Route(200, {}, delay_s=0.3))

    result = await run(ExchangeApiCheck(
        http_server.url, latency_warning_s=0.05, latency_critical_s=0.2))

    assert result["status"] is HealthStatus.CRITICAL


async def test_exchange_timeout_is_critical(http_server: HttpServer) -> None:
    binance(http_server, ping=Route(200, {}, delay_s=2.0))

    result = await run(ExchangeApiCheck(http_server.url, request_timeout_s=0.2))

    assert result["status"] is HealthStatus.CRITICAL
    assert result["message"].endswith("failed: timed out after 0.2 s")


@pytest.mark.parametrize(
    ("drift_s", "expected", "note"),
    [(2.5, HealthStatus.DEGRADED, "(beyond 1 s)"), (-8.0, HealthStatus.CRITICAL, "(beyond 5 s)")],
)
async def test_exchange_clock_drift(
    http_server: HttpServer, drift_s: float, expected: HealthStatus, note: str
) -> None:
    binance(http_server, drift_s=drift_s)

    result = await run(ExchangeApiCheck(http_server.url))

    assert result["status"] is expected
    assert note in result["message"]
    assert result["metrics"]["clock_drift_s"] == pytest.approx(drift_s, abs=0.5)


async def test_exchange_unreachable_is_critical() -> None:
    url = f"http://127.0.0.1:{free_port()}"

    result = await run(ExchangeApiCheck(url))

    assert result["status"] is HealthStatus.CRITICAL
    assert result["message"].startswith(f"exchange API ping {url}{PING} failed: ConnectError")


async def test_exchange_paths_are_configurable(http_server: HttpServer) -> None:
    http_server.routes["/v5/market/time"] = Route(200, {"ok": True})

    result = await run(ExchangeApiCheck(http_server.url, ping_path="/v5/market/time",
                                        time_path=None, latency_warning_s=3.0,
                                        latency_critical_s=10.0))

    assert result["status"] is HealthStatus.HEALTHY
    assert "clock_drift_s" not in result["metrics"]


async def test_exchange_check_feeds_the_health_gauge(
    http_server: HttpServer, telemetry: Any
) -> None:
    binance(http_server, ping=Route(502, {}))
    checker = HealthChecker()
    checker.register_health_check(
        "exchange-under-test",
        ExchangeApiCheck(http_server.url, latency_warning_s=3.0, latency_critical_s=10.0),
    )

    await checker.force_check()
    assert telemetry.metric_point(
        HEALTH_STATUS.name, health_component="exchange-under-test"
    ).value == 2

    binance(http_server)
    await checker.force_check()
    assert checker.get_component_health("exchange-under-test").status is HealthStatus.HEALTHY
    assert telemetry.metric_point(
        HEALTH_STATUS.name, health_component="exchange-under-test"
    ).value == 0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"base_url": "ftp://example.com"}, "base_url must be an http"),
        ({"latency_warning_s": 5.0, "latency_critical_s": 1.0}, "latency_warning_s"),
        ({"drift_warning_s": -1.0}, "drift_warning_s"),
        ({"request_timeout_s": 0}, "request_timeout_s"),
    ],
)
def test_exchange_invalid_settings_are_rejected(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ExchangeApiCheck(**kwargs)


# --- web UI ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("route", "warning_s", "expected", "text"),
    [
        (Route(200, {}), 3.0, HealthStatus.HEALTHY, "web UI answered HTTP 200"),
        (Route(200, {}, delay_s=0.3), 0.1, HealthStatus.DEGRADED, "(slower than 0.1 s)"),
        (Route(500, {}), 3.0, HealthStatus.CRITICAL, "returned HTTP 500"),
        (Route(404, {}), 3.0, HealthStatus.CRITICAL, "returned HTTP 404"),
    ],
)
async def test_web_ui(
    http_server: HttpServer, route: Route, warning_s: float, expected: HealthStatus, text: str
) -> None:
    http_server.routes["/"] = route

    result = await run(WebUICheck(http_server.url + "/", latency_warning_s=warning_s,
                                  latency_critical_s=10.0))

    assert result["status"] is expected
    assert text in result["message"]


async def test_web_ui_timeout_is_critical(http_server: HttpServer) -> None:
    http_server.routes["/"] = Route(200, {}, delay_s=2.0)

    result = await run(WebUICheck(http_server.url + "/", request_timeout_s=0.2))

    assert result["status"] is HealthStatus.CRITICAL
    assert "timed out after 0.2 s" in result["message"]


async def test_web_ui_message_has_no_credentials(http_server: HttpServer) -> None:
    http_server.routes["/"] = Route(500, {})
    url = f"http://admin:hunter22@127.0.0.1:{http_server.port}/?token=abc123"

    result = await run(WebUICheck(url))

    assert result["status"] is HealthStatus.CRITICAL
    # the message does name the endpoint (so a leak would show), minus its credentials
    assert f"127.0.0.1:{http_server.port}" in result["message"]
    assert "hunter22" not in result["message"]
    assert "abc123" not in result["message"]


# --- network --------------------------------------------------------------------------


@pytest.fixture
async def listening_port() -> AsyncIterator[int]:
    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


async def test_network_all_reachable(listening_port: int) -> None:
    result = await run(NetworkCheck([("localhost", listening_port),
                                     ("127.0.0.1", listening_port)], latency_warning_s=5.0))

    assert result["status"] is HealthStatus.HEALTHY
    assert result["metrics"]["reachable"] == 2


async def test_network_some_unreachable_is_degraded(listening_port: int) -> None:
    closed = free_port()

    result = await run(NetworkCheck([("localhost", listening_port), ("127.0.0.1", closed)]))

    assert result["status"] is HealthStatus.DEGRADED
    assert f"127.0.0.1:{closed}: TCP connect to 127.0.0.1 failed" in result["message"]


async def test_network_nothing_reachable_is_critical() -> None:
    result = await run(NetworkCheck([("127.0.0.1", free_port())]))

    assert result["status"] is HealthStatus.CRITICAL
    assert result["message"].startswith("no target reachable")


async def test_network_dns_failure_is_named(
    listening_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop = asyncio.get_running_loop()
    real = loop.getaddrinfo

    async def resolver(host: str, *args: Any, **kwargs: Any) -> Any:
        if host == "exchange.example":  # a name no test may resolve over the network
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return await real(host, *args, **kwargs)

    monkeypatch.setattr(loop, "getaddrinfo", resolver)

    result = await run(NetworkCheck([("exchange.example", 443), ("127.0.0.1", listening_port)]))

    assert result["status"] is HealthStatus.DEGRADED
    assert ("exchange.example:443: DNS resolution failed (Name or service not known)"
            in result["message"])


@pytest.mark.parametrize(
    "targets", [[], ["localhost:443"], [("", 443)], [("localhost", 0)], [("localhost", "443")]]
)
def test_network_invalid_targets_are_rejected(targets: Any) -> None:
    with pytest.raises(ValueError, match="target"):
        NetworkCheck(targets)
