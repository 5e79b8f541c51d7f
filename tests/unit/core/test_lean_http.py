"""The OTLP exporters' lean HTTP/1.1 transport against a scripted loopback server.

The server is h11's server side over a real socket: what arrives is parsed by the
reference state machine, and each test scripts the answers (keep-alive, close after
answering, never answer, chunked, 429 with Retry-After).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import h11
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otel_botmon.exporters.lean_http import LeanHTTPTransport

Answer = Callable[[int, bytes], tuple[int, list[tuple[str, str]], bytes, str]]
"""(request number, body) -> (status, headers, body, then): then is "keep", "close"
(close after answering, no Connection header) or "silent" (never answer)."""


def _ok(_n: int, body: bytes) -> tuple[int, list[tuple[str, str]], bytes, str]:
    return 200, [("Content-Type", "application/x-protobuf")], body[:16], "keep"


@dataclass
class Server:
    answer: Answer = _ok
    chunked: bool = False
    connections: int = 0
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/v1/traces"
        self.done = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        machine = h11.Connection(h11.SERVER)
        with conn:
            while True:
                head, body = None, bytearray()
                while True:
                    event = machine.next_event()
                    if event is h11.NEED_DATA:
                        data = conn.recv(65536)
                        machine.receive_data(data)
                        if not data and head is None:
                            return  # closed between requests
                        continue
                    if isinstance(event, h11.Request):
                        head = event
                    elif isinstance(event, h11.Data):
                        body += event.data
                    elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                        break
                if head is None:
                    return
                headers = {k.decode().lower(): v.decode() for k, v in head.headers}
                self.paths.append(head.target.decode())
                self.requests.append((headers, bytes(body)))
                status, extra, content, then = self.answer(len(self.requests), bytes(body))
                if then == "silent":
                    self.done.wait(10)
                    return
                framing = [("Transfer-Encoding", "chunked")] if self.chunked else [
                    ("Content-Length", str(len(content)))]
                out = machine.send(h11.Response(status_code=status, headers=extra + framing))
                if content:
                    # two pieces: a chunked answer has two chunks
                    half = len(content) // 2
                    out += machine.send(h11.Data(data=content[:half]))
                    out += machine.send(h11.Data(data=content[half:]))
                out += machine.send(h11.EndOfMessage())
                conn.sendall(out)
                if then == "close":
                    return
                machine.start_next_cycle()

    def close(self) -> None:
        self.done.set()
        self.sock.close()


@pytest.fixture
def server() -> Iterator[Server]:
    found = Server()
    yield found
    found.close()


def _post(transport: LeanHTTPTransport, url: str, body: bytes, timeout: float = 5.0) -> Any:
    return transport.request("POST", url, headers={"Content-Type": "application/x-protobuf"},
                             data=body, timeout=timeout)


@settings(max_examples=20, deadline=None)
@given(sizes=st.lists(st.integers(0, 1_000_000), min_size=1, max_size=4), chunked=st.booleans())
def test_requests_arrive_whole_on_one_kept_alive_connection(
    sizes: list[int], chunked: bool
) -> None:
    server = Server(chunked=chunked)
    transport = LeanHTTPTransport()
    try:
        for size in sizes:
            body = os.urandom(size)
            result = _post(transport, server.url, body)
            assert result.error is None and result.status_code == 200
            assert result.content() == body[:16]  # the answer, read whole either framing
            assert server.requests[-1][1] == body  # the body, whole, through partial sends
        assert server.connections == 1
        headers = server.requests[-1][0]
        assert headers["host"] == f"127.0.0.1:{server.port}"
        assert headers["content-type"] == "application/x-protobuf"
    finally:
        transport.close()
        server.close()


def test_a_connection_closed_after_an_answer_is_replaced_and_nothing_sent_twice() -> None:
    server = Server(answer=lambda n, body: (200, [], b"", "close"))
    transport = LeanHTTPTransport()
    try:
        for n in range(3):
            result = _post(transport, server.url, f"batch {n}".encode())
            assert result.error is None and result.status_code == 200
        assert [body for _, body in server.requests] == [b"batch 0", b"batch 1", b"batch 2"]
        assert server.connections == 3
    finally:
        transport.close()
        server.close()


def test_an_endpoint_that_never_answers_times_out_and_is_not_a_connection_error(
    server: Server,
) -> None:
    server.answer = lambda n, body: (200, [], b"", "silent")
    transport = LeanHTTPTransport()
    started = time.monotonic()
    result = _post(transport, server.url, b"x" * 1000, timeout=0.3)
    elapsed = time.monotonic() - started
    assert result.status_code is None and result.error is not None
    assert not transport.is_connection_error(result.error)  # as urllib3: no blind resend
    assert elapsed < 2.0
    assert "127.0.0.1" not in str(result.error) and "v1/traces" not in str(result.error)
    transport.close()


def test_a_refused_connection_is_a_connection_error() -> None:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        port = sock.getsockname()[1]
    transport = LeanHTTPTransport()
    result = _post(transport, f"http://127.0.0.1:{port}/v1/traces", b"x")
    assert result.status_code is None
    assert transport.is_connection_error(result.error)
    assert str(port) not in str(result.error)


def test_the_sdk_exporter_honours_retry_after_through_the_lean_transport(
    server: Server,
) -> None:
    from otel_botmon.exporters.compact_spans import EncodedSpans
    from otel_botmon.exporters.otlp_http import OTLPSpanExporter

    server.answer = lambda n, body: (
        (429, [("Retry-After", "0")], b"", "keep") if n == 1 else (200, [], b"", "keep"))
    exporter = OTLPSpanExporter(endpoint=server.url, _transport=LeanHTTPTransport())
    try:
        result = exporter.export(EncodedSpans(b"\x0a\x00", 1))  # type: ignore[arg-type]
        assert result.name == "SUCCESS"
        assert [body for _, body in server.requests] == [b"\x0a\x00", b"\x0a\x00"]
        assert server.connections == 1
    finally:
        exporter.shutdown()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
def test_a_forked_child_never_writes_to_the_parents_connection(server: Server) -> None:
    transport = LeanHTTPTransport()
    assert _post(transport, server.url, b"parent 1").status_code == 200
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its own connection
        try:
            status = _post(transport, server.url, b"child").status_code
            os.write(write, str(status).encode())
        finally:
            os._exit(0)
    os.close(write)
    assert os.read(read, 16) == b"200"
    os.waitpid(pid, 0)
    os.close(read)
    assert _post(transport, server.url, b"parent 2").status_code == 200
    assert sorted(body for _, body in server.requests) == [b"child", b"parent 1", b"parent 2"]
    assert server.connections == 2
    transport.close()


def _sdk_export(url: str) -> str:
    from otel_botmon.exporters.compact_spans import EncodedSpans
    from otel_botmon.exporters.otlp_http import OTLPSpanExporter

    exporter = OTLPSpanExporter(endpoint=url, _transport=LeanHTTPTransport(), timeout=5)
    try:
        return exporter.export(EncodedSpans(b"\x0a\x00", 1)).name  # type: ignore[arg-type]
    finally:
        exporter.shutdown()


@pytest.mark.parametrize("status", [307, 308])
def test_a_same_origin_307_or_308_is_followed_with_the_body_and_headers(
    server: Server, status: int
) -> None:
    server.answer = lambda n, body: (
        (status, [("Location", "/v2/traces?x=1")], b"", "keep") if n == 1
        else (200, [], b"", "keep"))
    assert _sdk_export(server.url) == "SUCCESS"
    assert server.paths == ["/v1/traces", "/v2/traces?x=1"]
    assert [body for _, body in server.requests] == [b"\x0a\x00"] * 2
    assert server.requests[1][0]["content-type"] == "application/x-protobuf"


@settings(max_examples=25, deadline=None)
@given(status=st.sampled_from([301, 302, 303, 307, 308]),
       location=st.sampled_from(["", "http://127.0.0.2:1/v1/traces", "https://elsewhere/v1",
                                 "ftp://x/", "//other.example/v1/traces"]))
def test_a_redirect_not_followed_is_a_failure_never_a_delivery(status: int, location: str) -> None:
    """The SDK's client takes every 3xx for delivered: 301-303 (POST turned into a
    GET), a 307/308 elsewhere (the API key would follow) or without a Location were
    silently lost batches."""
    headers = [("Location", location)] if location else []
    server = Server(answer=lambda n, body: (status, headers, b"", "keep"))
    try:
        transport = LeanHTTPTransport()
        result = _post(transport, server.url, b"batch")
        assert result.status_code is None and result.error is not None
        assert not transport.is_connection_error(result.error)
        assert not any(host in str(result.error)
                       for host in ("127.0.0.2", "elsewhere", "other.example", "ftp"))
        assert len(server.requests) == 1
        transport.close()
        assert _sdk_export(server.url) == "FAILURE"
    finally:
        server.close()


def test_redirects_end_after_three(server: Server) -> None:
    server.answer = lambda n, body: (307, [("Location", f"/v1/traces/{n}")], b"", "keep")
    assert _sdk_export(server.url) == "FAILURE"
    assert len(server.requests) == 4


def _endless_answer(status_line: bytes) -> tuple[str, threading.Event]:
    """A server answering each request with ``status_line`` and a chunked body that
    never ends."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        with listener:
            conn, _ = listener.accept()
            with conn:
                conn.recv(65536)
                conn.sendall(status_line + b"\r\nTransfer-Encoding: chunked\r\n\r\n")
                chunk = b"10000\r\n" + b"x" * 0x10000 + b"\r\n"
                try:
                    while not stop.is_set():
                        conn.sendall(chunk)
                except OSError:
                    pass

    threading.Thread(target=serve, daemon=True).start()
    return f"http://127.0.0.1:{listener.getsockname()[1]}/v1/traces", stop


def test_an_endless_answer_body_is_cut_at_one_mebibyte_and_the_status_kept() -> None:
    url, stop = _endless_answer(b"HTTP/1.1 200 OK")
    transport = LeanHTTPTransport()
    try:
        started = time.monotonic()
        result = _post(transport, url, b"batch", timeout=3.0)
        assert result.error is None and result.status_code == 200
        assert len(result.content()) <= 2 << 20
        assert time.monotonic() - started < 1.5  # not the whole timeout
    finally:
        stop.set()
        transport.close()
