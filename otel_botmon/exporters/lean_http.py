"""A blocking HTTP/1.1 transport for the OTLP/HTTP exporters over plain ``http://``.

The exporters post from a background thread, and every system call that thread makes
releases the GIL. Taking it back means taking it from the bot's thread, whose call in
flight then waits for the exporter's next stretch of Python: the bot's latency tail
counts such interruptions. The SDK's urllib3 transport makes nine system calls per
export on a kept-alive connection (four ``poll`` for its timeouts and its check that
the connection is still up, two ``ioctl`` to switch blocking mode, two sends, a
receive). :class:`LeanHTTPTransport` makes the fewest a request can:

- the socket stays blocking, with the timeout set in the kernel (``SO_SNDTIMEO`` and
  ``SO_RCVTIMEO``, Linux), so no ``poll`` precedes each call; the whole exchange is
  bounded by the request's timeout, checked between calls;
- head and body leave in one ``sendmsg`` (more only while the kernel takes part of
  the body), the answer (OTLP's is small) in one ``recv``;
- ``h11`` speaks the protocol, on one kept-alive connection; a reused connection the
  server closed while it was idle (nothing answered) is replaced and the request sent
  once more, as urllib3 does.

A 307 or 308 to the same origin is followed (at most three times, within the
request's timeout); any other redirect is an error, never a success (the SDK's client
takes every 3xx for delivered). An answer body is read up to 1 MiB, then the
connection is dropped: an endless body costs no more than a short one.

Errors hold no URL. Connection failures (refused, reset, closed before an answer,
timed out connecting) are connection errors: the SDK's client retries them with
backoff, as with urllib3; a read timeout is not (the server may be working on it).
HTTPS, proxies and credential providers keep the SDK's transports
(:func:`otel_botmon.exporters.otlp_http.lean_transport` decides).
"""

from __future__ import annotations

import socket
import struct
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urljoin, urlsplit

import h11
from opentelemetry.exporter.http.transport._base import BaseHTTPResult, BaseHTTPTransport

from otel_botmon import _fork

__all__ = ["LeanHTTPTransport"]

_READ: Final = 65536
_MAX_BODY: Final = 1 << 20  # an OTLP answer is a status and maybe a partial success
_USER_AGENT: Final = b"otel-botmon"
_MAX_REDIRECTS: Final = 3
_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})
_KERNEL_TIMEOUTS: Final = sys.platform.startswith("linux")
_TIMEVAL: Final = struct.Struct("@ll")


class LeanConnectionError(ConnectionError):
    """No answer: the connection could not be opened or broke before the answer."""


class LeanTimeout(TimeoutError):
    """The answer took longer than the request's timeout."""


class LeanRedirectRefused(Exception):
    """A redirect the transport does not follow (see :meth:`LeanHTTPTransport.request`)."""


class _Headers(Mapping[str, str]):
    """Response headers, case-insensitive (names kept lower-case)."""

    __slots__ = ("_items",)

    def __init__(self, items: dict[str, str]) -> None:
        self._items = items

    def __getitem__(self, key: str) -> str:
        return self._items[key.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


@dataclass(frozen=True, slots=True)
class LeanHTTPResult(BaseHTTPResult):
    body: bytes = field(default=b"", repr=False)
    header_items: Mapping[str, str] = field(default_factory=dict, repr=False)

    def content(self) -> bytes:
        return self.body

    def headers(self) -> Mapping[str, str]:
        return _Headers(dict(self.header_items))


@dataclass(frozen=True)
class _Target:
    host: str
    port: int
    path: bytes
    host_header: bytes


def _target(url: str) -> _Target:
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError("LeanHTTPTransport speaks plain http:// only")
    port = parts.port or 80
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host = parts.hostname
    shown = f"[{host}]" if ":" in host else host
    return _Target(host, port, path.encode("ascii"),
                   (shown if port == 80 else f"{shown}:{port}").encode("idna"))


class _Stale(Exception):
    """A reused connection closed before any answer byte: send once more, on a new one."""


class LeanHTTPTransport(BaseHTTPTransport):
    """The SDK's transport interface (``request``, ``close``, ``is_connection_error``)
    over one kept-alive blocking socket. Thread-safe (one request at a time)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._h11: h11.Connection | None = None
        self._origin: tuple[str, int] | None = None
        self._kernel_timeout: float | None = None
        self._targets: dict[str, _Target] = {}
        _fork.register(self)

    def _after_fork_in_child(self) -> None:
        """The parent's socket is the parent's: the child opens its own."""
        self._lock = threading.Lock()
        self._drop()

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
        data: bytes | None = None,
    ) -> BaseHTTPResult:
        try:
            deadline = None if timeout is None else time.monotonic() + timeout
            for _ in range(_MAX_REDIRECTS + 1):
                target = self._targets.get(url)
                if target is None:
                    target = _target(url)
                    if len(self._targets) < 16:
                        self._targets[url] = target
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                with self._lock:
                    result = self._request(method, target, headers or {}, left, data or b"")
                if result.status_code not in _REDIRECTS:
                    return result
                url = _redirect(result, target, url)
            raise LeanRedirectRefused(f"more than {_MAX_REDIRECTS} redirects")
        except Exception as error:  # the SDK's transports return errors, never raise
            return LeanHTTPResult(error=error)

    def _request(self, method: str, target: _Target, headers: dict[str, str],
                 timeout: float | None, body: bytes) -> LeanHTTPResult:
        deadline = None if timeout is None else time.monotonic() + timeout
        fields = [(b"Host", target.host_header), (b"User-Agent", _USER_AGENT),
                  (b"Content-Length", str(len(body)).encode("ascii"))]
        for name, value in headers.items():
            if name.lower() not in ("host", "content-length", "user-agent"):
                fields.append((name.encode("latin-1"), value.encode("latin-1")))
            elif name.lower() == "user-agent":
                fields[1] = (b"User-Agent", value.encode("latin-1"))
        while True:
            reused = self._sock is not None and self._origin == (target.host, target.port)
            if not reused:
                self._drop()
                self._connect(target, deadline)
            try:
                return self._exchange(method, target, fields, body, deadline, reused)
            except _Stale:
                self._drop()
                continue  # once: the fresh connection is not reused
            except BaseException:
                self._drop()
                raise

    def _remaining(self, deadline: float | None) -> float | None:
        if deadline is None:
            return None
        left = deadline - time.monotonic()
        if left <= 0:
            raise LeanTimeout("timed out waiting for the answer")
        return left

    def _connect(self, target: _Target, deadline: float | None) -> None:
        left = self._remaining(deadline)
        try:
            sock = socket.create_connection((target.host, target.port), timeout=left)
        except TimeoutError:
            raise LeanConnectionError("timed out connecting") from None
        except OSError as exc:
            raise LeanConnectionError(_reason(exc)) from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if _KERNEL_TIMEOUTS:
            sock.settimeout(None)  # blocking: the kernel times each call out
        self._sock, self._h11 = sock, h11.Connection(h11.CLIENT)
        self._origin = (target.host, target.port)
        self._kernel_timeout = None

    def _arm(self, sock: socket.socket, left: float | None) -> None:
        """Each send and receive gives up after ``left`` seconds (None: never)."""
        if not _KERNEL_TIMEOUTS:
            sock.settimeout(left)
            return
        # Rounded up to a tenth of a second, set again only when that changes: one
        # setsockopt pair per request at most, usually none.
        wanted = None if left is None else max(0.1, round(left + 0.05, 1))
        if wanted == self._kernel_timeout:
            return
        seconds = 0.0 if wanted is None else wanted  # 0: no timeout
        value = _TIMEVAL.pack(int(seconds), int((seconds % 1) * 1e6))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, value)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, value)
        self._kernel_timeout = wanted

    def _exchange(self, method: str, target: _Target, fields: list[tuple[bytes, bytes]],
                  body: bytes, deadline: float | None, reused: bool) -> LeanHTTPResult:
        sock, conn = self._sock, self._h11
        assert sock is not None and conn is not None
        self._arm(sock, self._remaining(deadline))
        head = conn.send(h11.Request(method=method.encode("ascii"), target=target.path,
                                     headers=fields))
        pieces: list[Any] = [head]
        if body:
            pieces += conn.send_with_data_passthrough(h11.Data(data=body)) or ()
        conn.send(h11.EndOfMessage())
        answered = False
        try:
            _send_all(sock, pieces, deadline)
            status: int | None = None
            reason, size = "", 0
            headers: dict[str, str] = {}
            content: list[bytes] = []
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    self._remaining(deadline)
                    chunk = sock.recv(_READ)
                    if chunk:
                        answered = True
                    conn.receive_data(chunk)
                    continue
                if isinstance(event, h11.Response):
                    status = event.status_code
                    reason = event.reason.decode("latin-1")
                    for name, value in event.headers:
                        key, text = name.decode("latin-1"), value.decode("latin-1")
                        headers[key] = f"{headers[key]}, {text}" if key in headers else text
                elif isinstance(event, h11.Data):
                    content.append(bytes(event.data))
                    size += len(event.data)
                    if size >= _MAX_BODY:  # an answer this long is not OTLP's: stop
                        break  # reading (the connection is dropped below)
                elif isinstance(event, h11.EndOfMessage):
                    break
                elif isinstance(event, h11.ConnectionClosed):
                    raise LeanConnectionError("server closed the connection without an answer")
        except BlockingIOError:  # a kernel timeout (EAGAIN) on a blocking socket
            raise LeanTimeout("timed out waiting for the answer") from None
        except TimeoutError:
            raise LeanTimeout("timed out waiting for the answer") from None
        except (ConnectionError, h11.RemoteProtocolError, LeanConnectionError) as exc:
            if reused and not answered:
                raise _Stale from None
            raise LeanConnectionError(_reason(exc)) from None
        if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
            conn.start_next_cycle()
        else:
            self._drop()
        assert status is not None
        return LeanHTTPResult(status_code=status, reason=reason, body=b"".join(content)[:_MAX_BODY],
                              header_items=headers)

    def _drop(self) -> None:
        sock, self._sock, self._h11, self._origin = self._sock, None, None, None
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass

    def close(self) -> None:
        with self._lock:
            self._drop()

    def is_connection_error(self, exception: Exception | None) -> bool:
        return isinstance(exception, LeanConnectionError)


def _redirect(result: LeanHTTPResult, target: _Target, url: str) -> str:
    """Where a 307 or 308 sends the request again: the same origin only, since the
    request carries the exporter's headers (often an API key). Any other redirect
    raises :class:`LeanRedirectRefused` (a POST turned into a GET delivers nothing).
    The message holds neither URL: a Location may carry a token."""
    status = result.status_code
    location = dict(result.header_items).get("location", "").strip()
    if status not in (307, 308):
        raise LeanRedirectRefused(
            f"the endpoint answered {status} (a redirect that drops the request body); "
            "configure the endpoint it redirects to")
    if not location:
        raise LeanRedirectRefused(f"the endpoint answered {status} without a Location")
    moved = urljoin(url, location)
    try:
        there = _target(moved)
    except ValueError:
        there = None
    if there is None or (there.host, there.port) != (target.host, target.port):
        raise LeanRedirectRefused(
            f"the endpoint answered {status}, redirecting to another origin; not followed "
            "(the request carries the exporter's headers): configure that endpoint instead")
    return moved


def _send_all(sock: socket.socket, pieces: list[Any], deadline: float | None) -> None:
    """Send ``pieces`` in as few system calls as the kernel allows."""
    views = [memoryview(piece) for piece in pieces if len(piece)]
    while views:
        sent = sock.sendmsg(views)
        while sent and views:
            first = len(views[0])
            if sent >= first:
                sent -= first
                views.pop(0)
            else:
                views[0] = views[0][sent:]
                sent = 0
        if views and deadline is not None and time.monotonic() > deadline:
            raise LeanTimeout("timed out sending the request")


def _reason(exc: BaseException) -> str:
    """An error's kind and reason, without the address a message may carry."""
    if isinstance(exc, OSError) and exc.strerror:
        return f"{type(exc).__name__}: {exc.strerror}"
    if isinstance(exc, h11.RemoteProtocolError):
        return f"protocol error: {exc}"
    return str(exc) or type(exc).__name__
