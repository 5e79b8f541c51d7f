"""The notifiers' lean HTTP/1.1 client against real local servers (h11 on asyncio, TLS
with a local CA, a scripted receiver as a forward proxy)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import h11
import pytest

from otel_botmon.notify.base import DeliveryOutcome, HttpClientSlot
from otel_botmon.notify.transport import (
    ConnectError,
    LeanHttpClient,
    ReadTimeout,
    RemoteProtocolError,
)
from tests.integration.notify.receivers import Receiver
from tests.integration.notify.tls_cert import make_cert
from tests.services import free_port

TOKEN = "xoxb-transport-secret-7731"


@dataclass
class Answer:
    """What the server does with one request: answer (status, headers, body) after
    ``delay``, then close the connection if ``close_after``; ``drop`` closes it without
    answering."""

    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b'{"ok":true}'
    delay: float = 0.0
    close_after: bool = False
    drop: bool = False
    extra: bytes = b""  # bytes sent after the answer, unasked


class H11Server:
    """A real HTTP/1.1 server (h11 over asyncio) that counts connections and requests."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.tls = tls
        self.connections = 0
        self.requests: list[tuple[bytes, bytes, dict[bytes, bytes]]] = []  # target, body
        self.script: list[Answer] = []
        self.port = 0
        self._server: asyncio.Server | None = None
        self.extra_sent = asyncio.Event()

    async def start(self) -> H11Server:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()

    def url(self, path: str = "/") -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                request: h11.Request | None = None
                body = b""
                while True:
                    event = conn.next_event()
                    if event is h11.NEED_DATA:
                        conn.receive_data(await reader.read(65536))
                    elif isinstance(event, h11.Request):
                        request = event
                    elif isinstance(event, h11.Data):
                        body += event.data
                    elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                        break
                if request is None:
                    return
                self.requests.append((request.target, body, dict(request.headers)))
                answer = self.script.pop(0) if self.script else Answer()
                if answer.drop:
                    return
                if answer.delay:
                    await asyncio.sleep(answer.delay)
                headers = [(k.encode(), v.encode()) for k, v in answer.headers]
                headers.append((b"Content-Length", str(len(answer.body)).encode()))
                writer.write(conn.send(h11.Response(status_code=answer.status,
                                                    headers=headers)))
                writer.write(conn.send(h11.Data(data=answer.body)))
                writer.write(conn.send(h11.EndOfMessage()))
                writer.write(answer.extra)
                await writer.drain()
                if answer.extra:
                    self.extra_sent.set()
                if answer.close_after or conn.our_state is h11.MUST_CLOSE:
                    return
                conn.start_next_cycle()
        except (ConnectionError, h11.RemoteProtocolError, ssl.SSLError,
                asyncio.CancelledError):
            return
        finally:
            writer.close()


@pytest.fixture
async def server() -> AsyncIterator[H11Server]:
    started = await H11Server().start()
    yield started
    await started.stop()


async def test_keep_alive_reuses_one_connection(server: H11Server) -> None:
    client = LeanHttpClient(timeout=5.0)
    try:
        for n in range(5):
            response = await client.post(server.url(f"/hook/{n}?k=v"), b'{"n":%d}' % n,
                                         {"Content-Type": "application/json"})
            assert response.status_code == 200 and response.json() == {"ok": True}
    finally:
        await client.aclose()
    assert server.connections == 1
    assert [(t, b) for t, b, _ in server.requests] == [
        (f"/hook/{n}?k=v".encode(), b'{"n":%d}' % n) for n in range(5)]
    headers = server.requests[0][2]
    assert headers[b"host"] == f"127.0.0.1:{server.port}".encode()
    assert headers[b"content-type"] == b"application/json"


async def test_server_closing_after_an_answer_gets_a_new_connection(server: H11Server) -> None:
    server.script = [Answer(close_after=True), Answer(headers=[("Connection", "close")]),
                     Answer()]
    client = LeanHttpClient(timeout=5.0)
    try:
        for _ in range(3):
            assert (await client.post(server.url(), b"{}")).status_code == 200
    finally:
        await client.aclose()
    assert server.connections == 3 and len(server.requests) == 3


async def test_kept_connection_dropped_by_the_server_is_retried_once_on_a_new_one(
        server: H11Server) -> None:
    # The second request arrives on the kept connection, which the server then drops
    # without answering (an idle timeout racing the request): sent again, answered.
    server.script = [Answer(), Answer(drop=True), Answer(status=202)]
    client = LeanHttpClient(timeout=5.0)
    try:
        assert (await client.post(server.url(), b"1")).status_code == 200
        assert (await client.post(server.url(), b"2")).status_code == 202
    finally:
        await client.aclose()
    assert [b for _, b, _ in server.requests] == [b"1", b"2", b"2"]
    assert server.connections == 2


async def test_fresh_connection_dropped_without_answer_is_an_error(server: H11Server) -> None:
    server.script = [Answer(drop=True)]
    client = LeanHttpClient(timeout=5.0)
    try:
        with pytest.raises(RemoteProtocolError):
            await client.post(server.url(), b"1")
    finally:
        await client.aclose()
    assert len(server.requests) == 1  # not sent twice


async def test_429_with_retry_after_is_a_retry_after_that_delay(server: H11Server) -> None:
    server.script = [Answer(429, [("Retry-After", "7")], b'{"error":"rate_limited"}'),
                     Answer(500, body=b"boom"), Answer(404, body=b"no_service")]
    slot = HttpClientSlot(5.0)
    try:
        first = await slot.post_json(server.url(f"/services/{TOKEN}"), {"a": 1})
        second = await slot.post_json(server.url(f"/services/{TOKEN}"), {"a": 1})
        third = await slot.post_json(server.url(f"/services/{TOKEN}"), {"a": 1})
    finally:
        await slot.aclose()
    assert first.outcome is DeliveryOutcome.RETRY and first.retry_after == 7.0
    assert first.status_code == 429 and "rate_limited" in first.detail
    assert second.outcome is DeliveryOutcome.RETRY and second.status_code == 500
    assert third.outcome is DeliveryOutcome.FAILED and "no_service" in third.detail
    assert server.requests[0][1] == b'{"a": 1}'
    assert server.connections == 1


async def test_timeout_is_a_retry_without_the_url(server: H11Server) -> None:
    server.script = [Answer(delay=2.0), Answer(delay=2.0)]
    slot = HttpClientSlot(0.3)
    raw = LeanHttpClient(0.3)
    try:
        result = await slot.post_json(server.url(f"/bot{TOKEN}/sendMessage"), {"a": 1})
        with pytest.raises(ReadTimeout):
            await raw.post(server.url(), b"x")  # the same, raw
    finally:
        await slot.aclose()
        await raw.aclose()
    assert result.outcome is DeliveryOutcome.RETRY and "Timeout" in result.detail
    assert TOKEN not in result.detail and "127.0.0.1" not in result.detail


async def test_refused_connection_is_a_retry_without_the_url() -> None:
    slot = HttpClientSlot(2.0)
    try:
        result = await slot.post_json(f"http://127.0.0.1:{free_port()}/hooks/{TOKEN}", {})
    finally:
        await slot.aclose()
    assert result.outcome is DeliveryOutcome.RETRY and "ConnectError" in result.detail
    assert TOKEN not in result.detail


async def test_tls_with_a_local_ca_verifies_and_refuses_an_unknown_one(tmp_path: Path) -> None:
    cert, key = make_cert(tmp_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    server = await H11Server(tls).start()
    trusting = LeanHttpClient(5.0, ssl_context=ssl.create_default_context(cafile=str(cert)))
    default = LeanHttpClient(5.0)  # the system's CAs and certifi's: not our local CA
    try:
        for _ in range(2):
            response = await trusting.post(server.url(f"/x/{TOKEN}"), b"{}")
            assert response.status_code == 200
        with pytest.raises(ConnectError) as refused:
            await default.post(server.url(f"/x/{TOKEN}"), b"{}")
    finally:
        await trusting.aclose()
        await default.aclose()
        await server.stop()
    assert server.connections == 1  # kept alive over TLS (the refused handshake never served)
    assert len(server.requests) == 2
    assert "certificate verify failed" in str(refused.value)
    assert TOKEN not in str(refused.value)


async def test_proxy_from_the_environment_goes_through_httpx(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # The receiver stands in for a forward proxy: a plain-HTTP request through a proxy
    # is sent to it with the absolute URL as target. The origin's name does not
    # resolve, so only a proxied request can arrive.
    proxy = Receiver("webhook").start()
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    slot = HttpClientSlot(5.0)
    try:
        result = await slot.post_json("http://hooks.example.invalid/in/1", {"a": 1})
    finally:
        await slot.aclose()
        proxy.stop()
    assert result.ok, result.detail
    assert proxy.requests[0].path == "http://hooks.example.invalid/in/1"
    assert proxy.requests[0].json() == {"a": 1}


async def test_a_non_ascii_path_is_sent_percent_encoded(server: H11Server) -> None:
    client = LeanHttpClient(timeout=5.0)
    try:
        assert (await client.post(server.url("/hook/é?q=ü"), b"{}")).status_code == 200
    finally:
        await client.aclose()
    assert server.requests[0][0] == b"/hook/%C3%A9?q=%C3%BC"


async def test_bytes_arriving_between_requests_are_never_read_as_the_next_answer(
        server: H11Server) -> None:
    # A server (or something between) sends a second, unasked answer after the first:
    # the next request must not take it for its own; it goes on a fresh connection.
    server.script = [Answer(extra=b"HTTP/1.1 500 Stale\r\nContent-Length: 0\r\n\r\n"),
                     Answer(status=202)]
    client = LeanHttpClient(timeout=5.0)
    try:
        assert (await client.post(server.url(), b"1")).status_code == 200
        await server.extra_sent.wait()
        kept = [c for conns in client._idle.values() for c in conns]
        async with asyncio.timeout(5):  # until the client has seen the unasked bytes
            while any(c.reusable() for c in kept):
                await asyncio.sleep(0.01)
        assert (await client.post(server.url(), b"2")).status_code == 202
    finally:
        await client.aclose()
    assert server.connections == 2
