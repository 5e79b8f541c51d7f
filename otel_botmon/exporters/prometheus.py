"""Serve the bot's metrics on ``/metrics`` for Prometheus to scrape.

The reader comes from ``opentelemetry-exporter-prometheus`` (the ``[prometheus]`` extra);
it translates OpenTelemetry names the Prometheus way: dots become underscores, the unit
becomes a suffix (``s`` -> ``_seconds``, ``By`` -> ``_bytes``, ``bp`` -> ``_bp``; curly
annotations such as ``{trade}`` and the unit ``1`` add nothing), counters end in
``_total``, up-down counters become gauges and histograms expose ``_bucket``, ``_sum`` and
``_count``. ``dashboards/`` and the generated Prometheus rules are written against exactly
that output (``tests/integration/fleet`` scrapes it to make sure).

Resource attributes appear on ``target_info``; the bot's identity (``bot.name``,
``bot.exchange``, ``bot.strategy``) is also copied onto every series as ``bot_name``,
``bot_exchange`` and ``bot_strategy``, as the collector's remote-write exporter does, so
the same dashboards can filter by bot on either path.

Import this module only when the endpoint is wanted: it imports the optional dependency.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

try:
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from prometheus_client import CollectorRegistry, start_http_server
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "the Prometheus endpoint needs opentelemetry-exporter-prometheus; "
        "install it with: pip install 'otel-botmon[prometheus]'"
    ) from exc

from otel_botmon import _fork
from otel_botmon import conventions as conv

__all__ = ["RESOURCE_LABELS", "PrometheusServingReader", "start_prometheus_reader"]

RESOURCE_LABELS: tuple[str, ...] = (conv.BOT_NAME, conv.BOT_EXCHANGE, conv.BOT_STRATEGY)


def start_prometheus_reader(
    port: int, host: str = "127.0.0.1", *, resource_labels: tuple[str, ...] = RESOURCE_LABELS,
    cardinality_limits: dict[type, int] | None = None,
) -> PrometheusServingReader:
    """Start an HTTP server on ``host:port`` serving ``/metrics`` and return its reader.

    Pass the reader to the ``MeterProvider`` (``configure(prometheus_port=...)`` does).
    Every scrape collects the provider's current values, so nothing runs between scrapes.
    ``port=0`` picks a free port; read it back from ``reader.port``. Shutting the reader
    down stops the server. ``cardinality_limits`` caps each instrument class's series
    (the SDK's default, 2,000, unless given).

    Raises ``ValueError`` for a port outside 0..65535 and ``OSError`` naming the address
    when the port cannot be bound (already in use, not permitted).
    """
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"prometheus_port must be an integer in 0..65535, got {port!r}")
    return PrometheusServingReader(port=port, host=host, resource_labels=resource_labels,
                                   cardinality_limits=cardinality_limits)


class PrometheusServingReader(PrometheusMetricReader):
    """A ``PrometheusMetricReader`` that owns the HTTP server exposing it.

    Each reader has its own ``prometheus_client`` registry rather than the global one, so
    configuring telemetry twice in one process neither registers duplicate collectors nor
    exposes a previous configuration's metrics.
    """

    def __init__(
        self,
        *,
        port: int,
        host: str = "127.0.0.1",
        resource_labels: tuple[str, ...] = RESOURCE_LABELS,
        cardinality_limits: dict[type, int] | None = None,
    ) -> None:
        registry = CollectorRegistry()
        copied = frozenset(resource_labels)
        super().__init__(registry=registry, resource_attribute_filter=copied.__contains__,
                         cardinality_limits=cardinality_limits)
        try:
            server, thread = start_http_server(port, addr=host, registry=registry)
        except OSError as exc:
            registry.unregister(self._collector)
            raise OSError(
                exc.errno, f"cannot serve Prometheus metrics on {host}:{port}: {exc.strerror}"
            ) from exc
        self._server = server
        self._thread: threading.Thread = thread
        self._stop_lock = threading.Lock()
        self._stopped = False
        self._serving = True
        self.host: str = host
        self.port: int = int(server.server_address[1])
        _fork.register(self)

    def _after_fork_in_child(self) -> None:
        """The parent serves ``/metrics``, not a forked child: the child lets go of the
        listening socket (while a child held it the port could not be bound again, and
        a scrape after the parent stopped waited for nobody), and its shutdown does not
        wait for a server thread that it does not have."""
        self._stop_lock = threading.Lock()
        self._serving = False
        with contextlib.suppress(OSError):
            self._server.socket.close()

    @property
    def url(self) -> str:
        """The scrape URL, e.g. ``http://127.0.0.1:9464/metrics``."""
        return f"http://{self.host}:{self.port}/metrics"

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        """Stop the HTTP server (freeing the port) and unregister the collector."""
        with self._stop_lock:
            if self._stopped:
                return
            self._stopped = True
        if self._serving:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout_millis / 1000)
        super().shutdown(timeout_millis=timeout_millis, **kwargs)

    def __repr__(self) -> str:
        return f"PrometheusServingReader(host={self.host!r}, port={self.port})"
