"""A real OTLP/HTTP receiver and the rotel collector, for integration tests.

``OtlpReceiver`` is an HTTP server on 127.0.0.1 that accepts OTLP/HTTP (protobuf or JSON,
optionally gzip-compressed) on ``/v1/traces``, ``/v1/metrics`` and ``/v1/logs``, decodes
each body with opentelemetry-proto and keeps the decoded requests. ``rotel_collector()``
starts the rotel OpenTelemetry collector (PyPI ``rotel``) receiving OTLP on grpc and http
and forwarding everything to a receiver::

    with OtlpReceiver() as receiver, rotel_collector(receiver.endpoint, tmp_path) as rotel:
        telemetry.configure("bot", otlp_endpoint=rotel.http_endpoint)
        ...
        receiver.wait_for(lambda r: "trade BTCUSDT" in r.span_names())

Both bind loopback only, on free ports.
"""

from __future__ import annotations

import contextlib
import gzip
import re
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from tests.services import LOOPBACK, ManagedProcess, free_port, require_binary, wait_for_tcp

__all__ = [
    "OtlpReceiver",
    "RotelCollector",
    "any_value",
    "attributes",
    "rotel_binary",
    "rotel_collector",
]

_ROUTES: dict[str, tuple[type[Message], type[Message]]] = {
    "/v1/traces": (ExportTraceServiceRequest, ExportTraceServiceResponse),
    "/v1/metrics": (ExportMetricsServiceRequest, ExportMetricsServiceResponse),
    "/v1/logs": (ExportLogsServiceRequest, ExportLogsServiceResponse),
}


def any_value(value: AnyValue) -> Any:
    """The Python value of an OTLP AnyValue (lists and maps recursively)."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return attributes(value.kvlist_value.values)
    return getattr(value, kind)


def attributes(kvs: Any) -> dict[str, Any]:
    """OTLP ``repeated KeyValue`` as a dict."""
    return {kv.key: any_value(kv.value) for kv in kvs if isinstance(kv, KeyValue)}


def _decompress(body: bytes, encoding: str) -> bytes:
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding in ("gzip", "x-gzip"):
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    raise ValueError(f"unsupported Content-Encoding {encoding!r}")


class OtlpReceiver:
    """An OTLP/HTTP server that decodes and keeps every export request it receives.

    ``endpoint`` is the base URL (``http://127.0.0.1:P``) to give an OTLP/HTTP exporter
    (which appends ``/v1/traces`` ...). ``raw_bodies`` keeps every decompressed body, so a
    test can assert that a byte string appears nowhere in what was exported.
    ``fail_next(n, status)`` makes the next ``n`` requests fail (retry tests);
    ``partial_success = (rejected, message)`` makes every accepted request answer with an
    OTLP partial success.
    """

    def __init__(self, host: str = LOOPBACK, port: int = 0) -> None:
        self.trace_requests: list[ExportTraceServiceRequest] = []
        self.metric_requests: list[ExportMetricsServiceRequest] = []
        self.log_requests: list[ExportLogsServiceRequest] = []
        self.raw_bodies: list[bytes] = []
        self.request_headers: list[dict[str, str]] = []
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._fail_remaining = 0
        self._fail_status = 503
        self.partial_success: tuple[int, str] | None = None
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------------

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def endpoint(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> OtlpReceiver:
        # A short poll interval makes stop() take milliseconds, not 0.5 s.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
            name="otlp-receiver", daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> OtlpReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def fail_next(self, count: int, status: int = 503) -> None:
        with self._lock:
            self._fail_remaining = count
            self._fail_status = status

    def reset(self) -> None:
        with self._lock:
            self.trace_requests.clear()
            self.metric_requests.clear()
            self.log_requests.clear()
            self.raw_bodies.clear()
            self.request_headers.clear()
            self.errors.clear()

    # --- reading what arrived ----------------------------------------------------------

    def spans(self) -> list[tuple[dict[str, Any], str, Span]]:
        """Every received span as (resource attributes, scope name, span)."""
        found = []
        with self._lock:
            requests = list(self.trace_requests)
        for request in requests:
            for rs in request.resource_spans:
                resource = attributes(rs.resource.attributes)
                for ss in rs.scope_spans:
                    found.extend((resource, ss.scope.name, span) for span in ss.spans)
        return found

    def span_names(self) -> list[str]:
        return [span.name for _, _, span in self.spans()]

    def metrics(self) -> list[tuple[dict[str, Any], str, Metric]]:
        """Every received metric as (resource attributes, scope name, metric)."""
        found = []
        with self._lock:
            requests = list(self.metric_requests)
        for request in requests:
            for rm in request.resource_metrics:
                resource = attributes(rm.resource.attributes)
                for sm in rm.scope_metrics:
                    found.extend((resource, sm.scope.name, metric) for metric in sm.metrics)
        return found

    def metric_names(self) -> set[str]:
        return {metric.name for _, _, metric in self.metrics()}

    def data_points(self, name: str) -> list[Any]:
        """All data points of metric ``name`` across requests (sum, gauge or histogram)."""
        points: list[Any] = []
        for _, _, metric in self.metrics():
            if metric.name != name:
                continue
            kind = metric.WhichOneof("data")
            if kind is not None:
                points.extend(getattr(metric, kind).data_points)
        return points

    def contains_bytes(self, needle: bytes) -> bool:
        """Whether ``needle`` occurs in any decompressed body received so far."""
        with self._lock:
            return any(needle in body for body in self.raw_bodies)

    def matches(self, pattern: re.Pattern[bytes]) -> bool:
        """Whether ``pattern`` matches in any decompressed body received so far."""
        with self._lock:
            return any(pattern.search(body) for body in self.raw_bodies)

    def wait_for(
        self, predicate: Callable[[OtlpReceiver], bool], timeout: float = 15.0
    ) -> None:
        """Poll ``predicate(self)`` until it holds; AssertionError after ``timeout``."""
        deadline = time.monotonic() + timeout
        while not predicate(self):
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"OTLP receiver: condition not met within {timeout}s; got spans "
                    f"{self.span_names()} and metrics {sorted(self.metric_names())}; "
                    f"errors {self.errors}"
                )
            time.sleep(0.05)

    # --- HTTP --------------------------------------------------------------------------

    def _accept(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        route = _ROUTES.get(path.split("?", 1)[0])
        if route is None:
            return 404, b""
        with self._lock:
            if self._fail_remaining > 0:
                self._fail_remaining -= 1
                return self._fail_status, b""
        request_type, response_type = route
        try:
            raw = _decompress(body, headers.get("content-encoding", ""))
            message = request_type()
            if "json" in headers.get("content-type", ""):
                json_format.Parse(raw.decode("utf-8"), message)
            else:
                message.ParseFromString(raw)
        except (DecodeError, ValueError, OSError, json_format.ParseError) as exc:
            with self._lock:
                self.errors.append(f"{path}: {type(exc).__name__}: {exc}")
            return 400, b""
        with self._lock:
            self.raw_bodies.append(raw)
            self.request_headers.append(headers)
            if isinstance(message, ExportTraceServiceRequest):
                self.trace_requests.append(message)
            elif isinstance(message, ExportMetricsServiceRequest):
                self.metric_requests.append(message)
            elif isinstance(message, ExportLogsServiceRequest):
                self.log_requests.append(message)
        answer = response_type()
        if self.partial_success is not None:
            rejected, message = self.partial_success
            field = answer.partial_success.DESCRIPTOR.fields_by_number[1].name
            setattr(answer.partial_success, field, rejected)
            answer.partial_success.error_message = message
        return 200, answer.SerializeToString()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, payload = receiver._accept(self.path, headers, body)
                self.send_response(status)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:  # quiet test output
                return

        return Handler


def rotel_binary() -> str:
    """Path of ``rotel-agent`` from the installed ``rotel`` package (skip/fail if absent)."""
    try:
        import rotel
    except ImportError:
        candidates: tuple[str, ...] = ()
    else:
        candidates = (str(Path(rotel.__file__).parent / "rotel-agent"),)
    return require_binary("rotel-agent", *candidates)


@dataclass
class RotelCollector:
    """A running rotel collector: where to send OTLP, and its process and log."""

    grpc_endpoint: str  # http://127.0.0.1:P, for the grpc exporters
    http_endpoint: str  # http://127.0.0.1:P, base URL for the http/protobuf exporters
    process: ManagedProcess

    def log(self) -> str:
        return self.process.log()

    def endpoint(self, protocol: str) -> str:
        """The endpoint for ``otlp_protocol`` ``"grpc"`` or ``"http/protobuf"``."""
        return self.grpc_endpoint if protocol == "grpc" else self.http_endpoint


@contextlib.contextmanager
def rotel_collector(
    forward_to: str, workdir: Path, *, extra_args: tuple[str, ...] = ()
) -> Iterator[RotelCollector]:
    """Run rotel receiving OTLP (grpc + http) and exporting OTLP/HTTP to ``forward_to``.

    ``workdir`` holds its pid and log files (so parallel runs never share /tmp files).
    Waits until both receiver ports accept connections; stops the process on exit.
    """
    binary = rotel_binary()
    grpc_port, http_port = free_port(), free_port()
    while http_port == grpc_port:
        http_port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    args = [
        binary, "start",
        "--otlp-grpc-endpoint", f"{LOOPBACK}:{grpc_port}",
        "--otlp-http-endpoint", f"{LOOPBACK}:{http_port}",
        "--exporter", "otlp",
        "--otlp-exporter-endpoint", forward_to,
        "--otlp-exporter-protocol", "http",
        "--pid-file", str(workdir / "rotel-agent.pid"),
        "--log-file", str(workdir / "rotel-agent.log"),
        *extra_args,
    ]
    process = ManagedProcess(args, workdir / "rotel-stdout.log").start()
    try:
        try:
            wait_for_tcp(LOOPBACK, grpc_port, timeout=15)
            wait_for_tcp(LOOPBACK, http_port, timeout=15)
        except TimeoutError as exc:
            raise AssertionError(f"rotel did not start: {exc}\n{process.log()}") from exc
        yield RotelCollector(
            grpc_endpoint=f"http://{LOOPBACK}:{grpc_port}",
            http_endpoint=f"http://{LOOPBACK}:{http_port}",
            process=process,
        )
    finally:
        process.stop()
