"""``MonitoringDashboard``: the dashboard app served by uvicorn inside the bot's process."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from otel_botmon.monitor import SystemMonitor

if TYPE_CHECKING:  # the dashboard extra may be missing at import time
    from otel_botmon.dashboard.security import ServerLimits

logger = logging.getLogger("otel_botmon.dashboard")


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class MonitoringDashboard:
    """Serves the dashboard at ``http://host:port`` from the running event loop.

    Binds 127.0.0.1 by default. Binding any other address needs an ``access_token``
    (``ValueError`` otherwise): the API can acknowledge and resolve alerts, so it is not
    exposed beyond this machine without one. ``port=0`` picks a free port (see ``url``).

    Requests are accepted for loopback names and ``host`` only; add the names and origins
    the dashboard is reached under (a reverse proxy, the machine's DNS name) with
    ``allowed_hosts``/``allowed_origins``. ``max_body_bytes`` bounds request bodies and
    ``limits`` (a ``ServerLimits``) the connections and their timeouts.
    """

    def __init__(
        self,
        system_monitor: SystemMonitor,
        host: str = "127.0.0.1",
        port: int = 8001,
        access_token: str | Mapping[str, str] | None = None,
        *,
        push_interval_s: float = 2.0,
        allowed_hosts: Iterable[str] = (),
        allowed_origins: Iterable[str] = (),
        max_body_bytes: int = 64 * 1024,
        limits: ServerLimits | None = None,
    ) -> None:
        if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
            raise ValueError(f"port must be an int in 0..65535, got {port!r}")
        if access_token is not None and (
            not isinstance(access_token, (str, Mapping)) or not access_token
        ):  # a mapping is {name: token}: actions are recorded under the token's name
            raise ValueError("access_token must be a non-empty string, a mapping or None")
        if not is_loopback(host) and access_token is None:
            raise ValueError(
                f"refusing to serve the dashboard on non-loopback address {host!r} without "
                "an access_token; pass access_token=... or bind 127.0.0.1"
            )
        self.system_monitor = system_monitor
        self.host = host
        self.port = port
        self._access_token = access_token
        self.push_interval_s = push_interval_s
        self.allowed_hosts = tuple(allowed_hosts)
        self.allowed_origins = tuple(allowed_origins)
        self.max_body_bytes = max_body_bytes
        self.limits = limits
        self._server: Any = None
        self.app: Any = None

    def __repr__(self) -> str:
        return f"MonitoringDashboard(host={self.host!r}, port={self.port!r})"

    @property
    def url(self) -> str:
        host = "localhost" if self.host in ("127.0.0.1", "::1", "localhost") else self.host
        return f"http://{host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None and bool(self._server.running)

    async def start(self) -> None:
        """Start serving; returns once the socket accepts connections.

        Raises ``OSError`` when the port cannot be bound, and ``RuntimeError`` naming
        the missing package when the ``dashboard`` extra is not installed.
        """
        if self.running:
            return
        try:
            from otel_botmon.dashboard.app import create_app
            from otel_botmon.dashboard.embedded import EmbeddedServer
            from otel_botmon.dashboard.security import GuardPolicy, ServerLimits
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise RuntimeError(
                f"the dashboard needs {exc.name!r}: pip install 'otel-botmon[dashboard]'"
            ) from exc
        self.app = create_app(
            self.system_monitor, access_token=self._access_token,
            push_interval_s=self.push_interval_s,
            guard=GuardPolicy(
                bind_host=self.host, allowed_hosts=self.allowed_hosts,
                allowed_origins=self.allowed_origins, max_body_bytes=self.max_body_bytes,
            ),
        )
        server = EmbeddedServer(self.app, self.host, self.port, name="dashboard",
                                limits=self.limits or ServerLimits())
        await server.start()
        self._server = server
        self.port = server.port
        logger.info("otel_botmon dashboard at %s", self.url)

    async def stop(self, timeout_s: float = 5.0) -> None:
        """Stop serving; open WebSockets are closed. Waits at most ``timeout_s``."""
        server, self._server = self._server, None
        if server is not None:
            await server.stop(timeout_s)
        hub = getattr(getattr(self.app, "state", None), "push_hub", None)
        if hub is not None and hub.running:
            # uvicorn skips the app's shutdown when it had to force its exit: the push
            # task and the monitor's listener would outlive the dashboard
            self.system_monitor.remove_update_listener(hub.mark_changed)
            await hub.stop()
