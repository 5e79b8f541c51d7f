"""A lean HTTP/1.1 client for the notifiers' JSON POSTs.

The notifiers send small JSON bodies to a handful of origins (Slack, Telegram,
PagerDuty, Alertmanager, webhooks). A general-purpose client spends milliseconds of CPU
per request on machinery they do not use (measured on a local keep-alive server:
httpx ~2,400 us, aiohttp ~970 us per POST); that CPU is taken from the process that
runs the bot. This client is just what they need:

- the protocol state machine is ``h11`` (no parsing of our own), over asyncio streams;
- one keep-alive connection per origin and caller (more only while requests overlap),
  reused across requests; a reused connection the server closed meanwhile is replaced
  and the request sent once more on a fresh one, and only then (nothing was answered);
- TLS through ``ssl.create_default_context()`` (verification on) plus certifi's
  bundle where installed, the CA bundle loaded once per process on a worker thread;
- one timeout for connecting and one for the whole exchange.

Errors carry no URL (Slack and Telegram URLs hold tokens): only the error's kind and
the OS's reason. A proxy configured through the environment (``HTTPS_PROXY``,
``HTTP_PROXY``, ``ALL_PROXY``) is not spoken here: :func:`proxied` tells the caller to
use httpx, which honours it.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import h11

__all__ = [
    "ConnectError",
    "ConnectTimeout",
    "HttpResponse",
    "LeanHttpClient",
    "ReadTimeout",
    "RemoteProtocolError",
    "TransportError",
    "default_ssl_context",
    "proxied",
]

_MAX_BODY = 1 << 20  # a notifier needs the status and a reason, never a megabyte
_USER_AGENT = b"otel-botmon"


class TransportError(Exception):
    """A request got no HTTP answer. The message never holds the URL."""


class ConnectError(TransportError):
    """The connection (TCP or TLS) could not be opened."""


class ConnectTimeout(TransportError):
    """Opening the connection took longer than the timeout."""


class ReadTimeout(TransportError):
    """The answer took longer than the timeout."""


class RemoteProtocolError(TransportError):
    """The server broke HTTP/1.1 or closed the connection before answering."""


class HttpResponse:
    """Status, headers (names lower-case) and body of an answer: what
    :func:`~otel_botmon.notify.base.classify_response` reads."""

    __slots__ = ("content", "headers", "reason_phrase", "status_code")

    def __init__(self, status_code: int, reason_phrase: str, headers: dict[str, str],
                 content: bytes) -> None:
        self.status_code = status_code
        self.reason_phrase = reason_phrase
        self.headers = headers
        self.content = content

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.content)


@dataclass(frozen=True)
class _Target:
    secure: bool
    host: str
    port: int
    path: bytes  # path and query: may hold a token, never put in an error
    host_header: bytes

    @property
    def origin(self) -> tuple[bool, str, int]:
        return self.secure, self.host, self.port


def _target(url: str) -> _Target:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise ConnectError(f"unsupported URL scheme or no host ({scheme or 'none'})")
    secure = scheme == "https"
    default = 443 if secure else 80
    try:
        port = parts.port or default
    except ValueError:
        raise ConnectError("invalid port in URL") from None
    host = parts.hostname
    shown = f"[{host}]" if ":" in host else host
    host_header = shown if port == default else f"{shown}:{port}"
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if not path.isascii():  # as browsers and httpx do: UTF-8, percent-encoded
        path = quote(path, safe="/?&=%:@!$'()*+,;~-._[]")
    return _Target(secure, host, port, path.encode("ascii"),
                   host_header.encode("idna" if not host.isascii() else "ascii"))


_context: ssl.SSLContext | None = None
_context_lock = threading.Lock()


def _build_ssl_context() -> ssl.SSLContext:
    # The system's trust store (and SSL_CERT_FILE / SSL_CERT_DIR), plus certifi's bundle
    # where installed: the anchors httpx trusted, so no destination that worked stops.
    context = ssl.create_default_context()
    try:
        import certifi
    except ImportError:
        return context
    context.load_verify_locations(cafile=certifi.where())
    return context


def default_ssl_context() -> ssl.SSLContext:
    """The process's verifying TLS context, built once (tens of ms of CPU to load the
    CA bundles: call it off the event loop the first time)."""
    global _context
    with _context_lock:
        if _context is None:
            _context = _build_ssl_context()
        return _context


def proxied(url: str) -> bool:
    """Whether the environment routes ``url`` through a proxy (then use httpx)."""
    proxies = urllib.request.getproxies_environment()
    if not proxies:
        return False
    parts = urlsplit(url)
    if not (proxies.get(parts.scheme.lower()) or proxies.get("all")):
        return False
    host = parts.hostname or ""
    bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]
    return not bypass(host, proxies)


class _Connection(asyncio.Protocol):
    """One kept-alive connection: an asyncio protocol feeding ``h11`` as bytes arrive.

    A protocol rather than asyncio streams: a notifier's request is one write and one
    answer, and streams add tasks, buffers and wake-ups around each. A delivery paced
    by a rate limit runs on cold caches, where every layer costs several times its
    warm price (measured: streams took ~0.3 ms of CPU per paced request on top).
    """

    def __init__(self) -> None:
        self.h11 = h11.Connection(h11.CLIENT)
        self.answered = False  # whether an answer byte arrived in this cycle
        self.transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[HttpResponse] | None = None
        self._head: h11.Response | None = None
        self._chunks: list[bytes] = []
        self._size = 0
        self._lost = False
        self._writable: asyncio.Future[None] | None = None
        self._gone = asyncio.Event()

    # ----- asyncio.Protocol -----

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self._waiter is None or self._waiter.done():
            # bytes nobody asked for (between requests): the stream can no longer be
            # trusted to line answers up with requests
            self._lost = True
            if self.transport is not None:
                self.transport.close()
            return
        if data:
            self.answered = True
        self._feed(data)

    def eof_received(self) -> bool | None:
        self._feed(b"")
        return None  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._gone.set()
        if self._writable is not None and not self._writable.done():
            self._writable.set_exception(exc or ConnectionResetError("connection lost"))
        if exc is not None:
            self._fail(exc)
        else:
            self._feed(b"")

    def pause_writing(self) -> None:
        if self._writable is None or self._writable.done():
            self._writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    # ----- one exchange -----

    def _fail(self, exc: BaseException) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def _feed(self, data: bytes) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            return  # nothing asked: the connection is no longer reusable (h11's state)
        conn = self.h11
        try:
            conn.receive_data(data)
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    return
                if isinstance(event, h11.Response):
                    self._head = event
                elif isinstance(event, h11.Data):
                    if self._size < _MAX_BODY:
                        self._chunks.append(bytes(event.data))
                        self._size += len(event.data)
                elif isinstance(event, h11.EndOfMessage):
                    break
                elif isinstance(event, h11.ConnectionClosed):
                    raise RemoteProtocolError("server closed the connection without an answer")
                # h11.InformationalResponse (100 Continue ...): wait for the final answer
        except Exception as exc:  # h11's protocol errors, ours: the caller sorts them
            waiter.set_exception(exc)
            return
        head = self._head
        assert head is not None
        headers: dict[str, str] = {}
        for name, value in head.headers:
            key = name.decode("latin-1")
            text = value.decode("latin-1")
            headers[key] = f"{headers[key]}, {text}" if key in headers else text
        if conn.trailing_data[0]:
            self._lost = True  # bytes past the answer, unasked: never reuse the stream
        elif conn.our_state is h11.DONE and conn.their_state is h11.DONE:
            conn.start_next_cycle()
        waiter.set_result(HttpResponse(head.status_code, head.reason.decode("latin-1"),
                                       headers, b"".join(self._chunks)[:_MAX_BODY]))

    def reusable(self) -> bool:
        return (self.h11.our_state is h11.IDLE and self.h11.their_state is h11.IDLE
                and not self._lost and self.transport is not None
                and not self.transport.is_closing())

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    async def exchange(self, request: bytes, body: bytes) -> HttpResponse:
        """Send one request and read its answer."""
        conn = self.h11
        self.answered = False
        self._head = None
        self._chunks = []
        self._size = 0
        if self._lost or self.transport is None or self.transport.is_closing():
            raise ConnectionResetError("connection closed")
        waiter: asyncio.Future[HttpResponse] = asyncio.get_running_loop().create_future()
        self._waiter = waiter
        self.transport.write(request + conn.send(h11.Data(data=body))
                             + conn.send(h11.EndOfMessage()))
        if self._writable is not None and not self._writable.done():
            await self._writable  # the kernel's buffer is full: wait as drain() would
        try:
            return await waiter
        finally:
            self._waiter = None

    async def wait_closed(self) -> None:
        """Wait until the transport has let go of the socket (after :meth:`close`)."""
        await self._gone.wait()


class LeanHttpClient:
    """POSTs over kept-alive HTTP/1.1 connections (see the module's docstring).

    ``timeout`` bounds connecting, and separately the whole request and answer.
    ``ssl_context`` replaces the default verifying one (tests: a local CA).
    """

    def __init__(self, timeout: float, ssl_context: ssl.SSLContext | None = None) -> None:
        self._timeout = timeout
        self._ssl = ssl_context
        self._idle: dict[tuple[bool, str, int], list[_Connection]] = {}
        self._targets: dict[str, _Target] = {}
        self._closed = False

    async def _context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = _context if _context is not None else await asyncio.to_thread(
                default_ssl_context)
        return self._ssl

    async def _connect(self, target: _Target) -> _Connection:
        context = await self._context() if target.secure else None
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._timeout):
                _, connection = await loop.create_connection(
                    _Connection, target.host, target.port, ssl=context,
                    server_hostname=target.host if context is not None else None)
        except TimeoutError:
            raise ConnectTimeout("timed out connecting") from None
        except ssl.SSLCertVerificationError as exc:
            raise ConnectError(f"certificate verify failed: {exc.verify_message}") from None
        except (OSError, ssl.SSLError) as exc:
            raise ConnectError(_os_reason(exc)) from None
        return connection

    async def post(self, url: str, body: bytes,
                   headers: dict[str, str] | None = None) -> HttpResponse:
        """POST ``body`` to ``url`` and return the answer.

        Raises:
            TransportError: no answer (connect failure, timeout, connection lost,
                protocol error); the message holds no URL.
        """
        if self._closed:
            raise ConnectError("client is closed")
        target = self._targets.get(url)
        if target is None:
            target = _target(url)
            if len(self._targets) < 64:
                self._targets[url] = target
        fields = [(b"Host", target.host_header), (b"User-Agent", _USER_AGENT),
                  (b"Content-Length", str(len(body)).encode())]
        for name, value in (headers or {}).items():
            fields.append((name.encode("latin-1"), value.encode("latin-1")))
        idle = self._idle.setdefault(target.origin, [])
        while True:
            connection = None
            while idle:
                candidate = idle.pop()
                if candidate.reusable():
                    connection = candidate
                    break
                candidate.close()
            reused = connection is not None
            if connection is None:
                connection = await self._connect(target)
            try:
                request = connection.h11.send(
                    h11.Request(method=b"POST", target=target.path, headers=fields))
                async with asyncio.timeout(self._timeout):
                    response = await self._exchange(connection, request, body)
            except TimeoutError:
                connection.close()
                raise ReadTimeout("timed out waiting for the answer") from None
            except _Stale:
                connection.close()
                if reused:
                    continue  # the server closed it while idle: once more, on a new one
                raise RemoteProtocolError(
                    "server closed the connection without an answer") from None
            except BaseException:
                connection.close()
                raise
            if connection.reusable() and not self._closed:
                idle.append(connection)
            else:
                connection.close()
            return response

    @staticmethod
    async def _exchange(connection: _Connection, request: bytes,
                        body: bytes) -> HttpResponse:
        try:
            return await connection.exchange(request, body)
        except (ConnectionError, h11.RemoteProtocolError, RemoteProtocolError) as exc:
            if not connection.answered:
                raise _Stale from None
            raise RemoteProtocolError(_os_reason(exc)) from None
        except h11.LocalProtocolError as exc:
            raise RemoteProtocolError(f"invalid request: {exc}") from None
        except OSError as exc:
            raise RemoteProtocolError(_os_reason(exc)) from None

    async def aclose(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                connection.close()
        for connections in idle.values():
            for connection in connections:
                await connection.wait_closed()


class _Stale(Exception):
    """The connection broke before any answer byte: the request may be sent again."""


def _os_reason(exc: BaseException) -> str:
    """An error's kind and reason, without the address or URL some messages carry."""
    if isinstance(exc, OSError) and exc.strerror:
        return f"{type(exc).__name__}: {exc.strerror}"
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return f"{type(exc).__name__}: {exc.reason}"
    if isinstance(exc, (h11.RemoteProtocolError, RemoteProtocolError)):
        return f"protocol error: {exc}"
    return type(exc).__name__
